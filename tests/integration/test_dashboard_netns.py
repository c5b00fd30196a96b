"""A request from another host is refused without the token, and served with it.

"Another host" is a network namespace joined to this one by a veth pair with addresses in
10.200.N.0/30 (the project's own test hosts inside this sandbox; nothing leaves the machine). The
dashboard binds the host end; a client in the namespace calls it. Needs root and ``ip netns``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys

import pytest

from support.fake_plant import FakePlant
from twin.dashboard import Dashboard

TOKEN = "netns-token-3b1f0c"

# Runs inside the namespace: each request's status (and what matters of its answer), as JSON.
CLIENT = r"""
import http.client, json, sys
host, port, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def call(method, path, headers=None, body=None):
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return {"status": r.status, "cookie": r.getheader("Set-Cookie") or "", "location": r.getheader("Location"),
            "body": data.decode("utf-8", "replace")}
out = {
  "state_none": call("GET", "/api/state"),
  "state_wrong": call("GET", "/api/state", {"Authorization": "Bearer wrong-" + token}),
  "page_none": call("GET", "/"),
  "events_none": call("GET", "/events"),
  "metrics_none": call("GET", "/metrics"),
  "health_none": call("GET", "/health"),
  "static_none": call("GET", "/static/app.js"),
  "action_none": call("POST", "/api/actions/force_down", {"Content-Type": "application/json"},
                      json.dumps({"unit": "smt1/reflow", "seconds": 60})),
  "state_bearer": call("GET", "/api/state", {"Authorization": "Bearer " + token}),
  "page_query": call("GET", "/?token=" + token),
  "metrics_query": call("GET", "/metrics?token=" + token),
  # a rebinding page's Host, even with the token: this server does not answer to that name
  "state_evil_host": call("GET", "/api/state", {"Authorization": "Bearer " + token,
                                                "Host": "evil.example:%d" % port}),
}
out["state_cookie"] = call("GET", "/api/state", {"Cookie": out["page_query"]["cookie"].split(";")[0]})
out["action_bearer"] = call("POST", "/api/actions/force_down",
                            {"Content-Type": "application/json", "Authorization": "Bearer " + token},
                            json.dumps({"unit": "smt1/printer", "seconds": 30}))
print(json.dumps(out))
"""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


@pytest.fixture
def other_host():
    """(namespace, host-side address, namespace-side address); the pair is removed afterwards."""
    if shutil.which("ip") is None:
        pytest.skip("iproute2's `ip` is not installed")
    if os.geteuid() != 0:
        pytest.skip("creating a network namespace needs root")
    tag = os.getpid() % 10000
    ns, host_if, ns_if = f"ftdash{tag}", f"ftdh{tag}", f"ftdn{tag}"
    subnet = f"10.200.{tag % 250}"
    probe = _ip("netns", "add", ns, check=False)
    if probe.returncode != 0:
        pytest.skip(f"`ip netns add` is not permitted here: {probe.stderr.strip()}")
    try:
        _ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        _ip("link", "set", ns_if, "netns", ns)
        _ip("addr", "add", f"{subnet}.1/30", "dev", host_if)
        _ip("link", "set", host_if, "up")
        _ip("netns", "exec", ns, "ip", "addr", "add", f"{subnet}.2/30", "dev", ns_if)
        _ip("netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        _ip("netns", "exec", ns, "ip", "link", "set", "lo", "up")
        yield ns, f"{subnet}.1", f"{subnet}.2"
    finally:
        _ip("netns", "del", ns, check=False)  # takes the namespace's end of the pair, and so the pair
        _ip("link", "del", host_if, check=False)


def test_a_remote_request_needs_the_token(other_host):
    ns, host_addr, _ = other_host
    plant = FakePlant()

    async def go():
        dash = Dashboard(host=host_addr, port=0, token=TOKEN, state=plant, health=plant.health,
                         actions={"force_down": plant.force_down})
        async with dash:
            proc = await asyncio.create_subprocess_exec(
                "ip", "netns", "exec", ns, sys.executable, "-c", CLIENT, host_addr, str(dash.port), TOKEN,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
            assert proc.returncode == 0, err.decode()
            return json.loads(out), dash.stats()

    res, stats = asyncio.run(go())
    for name in ("state_none", "state_wrong", "page_none", "events_none", "metrics_none", "health_none",
                 "static_none", "action_none"):
        assert res[name]["status"] == 401, (name, res[name])
        assert "valid token is required" in res[name]["body"], name
        assert "suzhou-smt" not in res[name]["body"], name  # nothing of the plant leaks
    assert stats["refused"] == 8 and stats["misdirected"] == 1
    assert res["state_evil_host"]["status"] == 421 and "suzhou-smt" not in res["state_evil_host"]["body"]
    assert ("smt1/reflow", 60) not in plant.forced  # the refused action did not run

    state = json.loads(res["state_bearer"]["body"])
    assert res["state_bearer"]["status"] == 200 and state["site"] == "suzhou-smt"
    assert res["page_query"]["status"] == 303 and res["page_query"]["location"] == "/"
    cookie = res["page_query"]["cookie"]
    assert cookie.startswith("factory_twin_session=") and "HttpOnly" in cookie and TOKEN not in cookie
    assert res["state_cookie"]["status"] == 200
    assert res["metrics_query"]["status"] == 200 and "factory_twin_station_state" in res["metrics_query"]["body"]
    assert res["action_bearer"]["status"] == 200 and plant.forced == [("smt1/printer", 30)]
