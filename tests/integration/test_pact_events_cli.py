"""End to end, three processes: ``factory-twin report --format pact`` publishes into the store,
``factory-twin pact-api`` serves it with a clients file whose ``events:`` block names a customer
host (in the test, over HTTPS with a certificate made here, trusted through SSL_CERT_FILE), and a
later report with a different figure reaches the customer as a PublishedEvent naming the deprecated
footprint and its successor, as the running server finds the change in the store.

A day of the demo plant simulated (seed 1): power-board is the product that made good units; its
configured fossil carbon content 0.03 then 0.04 kg C a piece makes the second footprint differ.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.support.pact_receiver import Receiver, ThreadedReceiver
from tests.support.pact_server import client_ssl, get_token, make_tls

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "demo_smt.yaml"
CARBON = """\
carbon:
  pact:
    domain: example.com
    exempted_emissions_percent: 70
    products:
      ctrl-board: {fossil_carbon_content_kg: 0.012}
      power-board: {fossil_carbon_content_kg: %s}
"""
PREFIX = "org.wbcsd.pact.ProductFootprint."


def _ft(*args: str, env=None) -> str:
    out = subprocess.run([sys.executable, "-m", "twin.cli", *args], cwd=ROOT, env=env, capture_output=True,
                         text=True, check=False, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def _report(tmp: Path, store: Path, fossil: str) -> list[dict]:
    import json

    carbon = tmp / f"carbon-{fossil}.yaml"
    carbon.write_text(CARBON % fossil)
    out = tmp / f"pact-{fossil}.json"
    _ft("report", "--store", str(store), "--origin", "simulated", "--from", "2026-01-05", "--to", "2026-01-06",
        "--config", str(CONFIG), "--carbon", str(carbon), "--format", "pact", "--out", str(out))
    return json.loads(out.read_text())["data"]


def test_request_and_published_notices_through_the_command(tmp_path):
    cert, key = make_tls(tmp_path)
    store = tmp_path / "plant.sqlite"
    _ft("simulate", str(CONFIG), "--hours", "24", "--seed", "1", "--store", str(store), "--json")
    (first,) = _report(tmp_path, store, "0.03")
    customer = ThreadedReceiver(Receiver(), cert, key)
    clients = tmp_path / "clients.yaml"
    clients.write_text(f"""\
clients:
  - client_id: acme
    secret_env: ACME_SECRET
    product_ids: [{first["productIds"][0]}]
    events: {{url: {customer.base}/3/events, client_id: plant-1, secret_env: ACME_EVENTS_SECRET}}
""")
    env = {**os.environ, "ACME_SECRET": "acme-secret-0123456789", "SSL_CERT_FILE": str(cert),
           "ACME_EVENTS_SECRET": customer.receiver.secret}
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "pact-api", "--store", str(store), "--config",
                             str(CONFIG), "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key),
                             "--clients", str(clients)], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline, line, m = time.monotonic() + 30, "", None
        while time.monotonic() < deadline and not (m := re.search(r"on (https://127\.0\.0\.1:\d+)", line)):
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "pact-api ended before serving"
        assert m, "no serving line"
        base = m[1]
        # the customer first configured is told of the footprint shared with it
        events = customer.wait_for(lambda evs: any(e["type"] == PREFIX + "PublishedEvent.3" for e in evs))
        assert events[0]["data"]["pfIds"] == [first["id"]]
        assert events[0]["source"] == f"{base}/3/events"

        async def request():
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
                token = await get_token(s, base, "acme", "acme-secret-0123456789")
                body = {"specversion": "1.0", "id": "acme-req-1", "source": customer.base, "time": "2026-01-07T00:00:00Z",
                        "type": PREFIX + "RequestCreatedEvent.3", "data": {"productId": first["productIds"]}}
                async with s.post(f"{base}/3/events", json=body, headers={
                        "Authorization": f"Bearer {token}", "Content-Type": "application/cloudevents+json"}) as r:
                    assert r.status == 200, await r.text()

        asyncio.run(request())
        events = customer.wait_for(lambda evs: any(e["type"] == PREFIX + "RequestFulfilledEvent.3" for e in evs))
        (answer,) = [e for e in events if e["type"] == PREFIX + "RequestFulfilledEvent.3"]
        assert answer["data"] == {"requestEventId": "acme-req-1", "pfs": [first]}
        # another process publishes a different figure: the running server tells the customer
        (second,) = _report(tmp_path, store, "0.04")
        assert second["precedingPfIds"] == [first["id"]]
        events = customer.wait_for(lambda evs: sum(e["type"] == PREFIX + "PublishedEvent.3" for e in evs) == 2)
        assert [e for e in events if e["type"] == PREFIX + "PublishedEvent.3"][1]["data"]["pfIds"] == \
            [first["id"], second["id"]]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        log = line + proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        customer.close()
    assert "Traceback" not in log and customer.receiver.secret not in log
    assert "event RequestFulfilledEvent.3 to client acme delivered" in log.replace(PREFIX, "")
