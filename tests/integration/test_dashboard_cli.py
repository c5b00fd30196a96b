"""``factory-twin demo`` with a dashboard token, as an operator starts it: the page answers to its
own names and a configured one, a rebinding Host gets 421, and an action from loopback needs the token."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.support.mqtt_broker import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cli-token-7a6b5c4d"


async def wait_until_served(url: str, host: str, proc: subprocess.Popen, deadline_s: float = 60.0) -> None:
    """Poll /health until the page answers (or the demo exits, or the deadline passes)."""
    until = time.monotonic() + deadline_s
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < until:
            if proc.poll() is not None:
                raise AssertionError(f"the demo exited early with {proc.returncode}: {proc.stderr.read()}")
            try:
                async with http.get(url + "/health", headers={"Host": host}) as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientConnectionError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the dashboard did not answer on {url} within {deadline_s} s")


def test_demo_dashboard_hosts_and_token(tmp_path):
    port = free_port()
    env = {**os.environ, "FACTORY_TWIN_DASHBOARD_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "twin.cli", "demo", "--duration", "12", "--speed", "60", "--no-store", "--json",
         "--dashboard-port", str(port), "--dashboard-allowed-host", "twin.plant.example"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    action = url + "/api/actions/force_down"
    body = {"unit": "smt1/printer", "seconds": 30}

    async def go():
        await wait_until_served(url, f"twin.plant.example:{port}", proc)
        out = {}
        async with aiohttp.ClientSession() as http:
            async with http.get(url + "/api/state", headers={"Host": f"evil.example:{port}"}) as r:
                out["evil_get"] = r.status
            async with http.post(action, json=body, headers={"Host": f"evil.example:{port}",
                                                             "Origin": f"http://evil.example:{port}"}) as r:
                out["evil_post"] = r.status
            async with http.post(action, json=body) as r:
                out["post_without_token"] = r.status
            async with http.post(action, json=body, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                out["post_with_token"] = r.status
                out["result"] = await r.json()
        return out

    try:
        out = asyncio.run(go())
    finally:
        stdout, stderr = proc.communicate(timeout=120)
    assert out["evil_get"] == 421 and out["evil_post"] == 421
    assert out["post_without_token"] == 401
    assert out["post_with_token"] == 200 and out["result"]["ok"], out
    assert proc.returncode == 0, stderr
    assert json.loads(stdout)["site"]  # the run's summary, as without the checks
    assert TOKEN not in stdout and TOKEN not in stderr
