"""``factory-twin pact-api``: HTTPS only (no certificate, no start: exit 2), credentials from the
environment or a clients file with clear one-line errors, and a real process serving the store's
footprints until SIGTERM, its log naming requests but never the secret.

Also the bodies ``POST /3/events`` refuses before any event handling: not JSON, not an object, too
large, not a CloudEvents content type, and an unknown event type: BadRequest 400, never a 500.
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
from typer.testing import CliRunner

from tests.support.pact_server import FakeClock, basic, client_ssl, get_token, make_tls, publish_sample, serving
from twin.cli import app as cli_app
from twin.pact_api.app import MAX_BODY_BYTES, create_app
from twin.pact_api.auth import Client, ClientRegistry
from twin.pact_api.repository import FootprintRepository

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "configs" / "demo_smt.yaml"
CID, SECRET = "owner-erp", "owner-secret-0123456789"
ENV = {"PACT_CLIENT_ID": CID, "PACT_CLIENT_SECRET": SECRET}


@pytest.fixture()
def files(tmp_path):
    cert, key = make_tls(tmp_path)
    store = tmp_path / "store.db"
    docs = publish_sample(store)
    return tmp_path, cert, key, store, docs


def _cli(args, env=None):
    result = CliRunner().invoke(cli_app, ["pact-api", *map(str, args)], env=env)
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def test_refuses_to_start_without_tls_or_credentials(files, monkeypatch):
    tmp, cert, key, store, _ = files
    monkeypatch.delenv("PACT_CLIENT_ID", raising=False)
    monkeypatch.delenv("PACT_CLIENT_SECRET", raising=False)
    base = ["--store", store, "--config", CONFIG]
    code, out = _cli(base, ENV)
    assert code == 2 and "served over HTTPS only: give --tls-cert FILE and --tls-key FILE" in out
    code, out = _cli([*base, "--tls-cert", cert], ENV)
    assert code == 2 and "HTTPS only" in out
    garbage = tmp / "garbage.pem"
    garbage.write_text("not a certificate\n")
    code, out = _cli([*base, "--tls-cert", garbage, "--tls-key", key], ENV)
    assert code == 2 and f"{garbage}, {key}: not a usable TLS certificate and key" in out
    tls = ["--tls-cert", cert, "--tls-key", key]
    code, out = _cli([*base, *tls], {})
    assert code == 2 and "no client credentials: set PACT_CLIENT_ID and PACT_CLIENT_SECRET" in out
    code, out = _cli([*base, *tls], {"PACT_CLIENT_ID": CID})
    assert code == 2 and "PACT_CLIENT_ID and PACT_CLIENT_SECRET go together" in out
    code, out = _cli([*base, *tls], {"PACT_CLIENT_ID": CID, "PACT_CLIENT_SECRET": "short"})
    assert code == 2 and "shorter than 16 characters" in out
    clients = tmp / "clients.yaml"
    clients.write_text("clients:\n  - client_id: acme\n    secret_env: ACME_SECRET\n    product_ids: [urn:x:y:1]\n"
                       "    colour: red\n")
    code, out = _cli([*base, *tls, "--clients", clients], {"ACME_SECRET": "acme-secret-0123456789"})
    assert code == 2 and f"{clients}: clients[0]: unknown field 'colour'" in out
    clients.write_text("clients:\n  - client_id: acme\n    secret_env: ACME_SECRET\n")
    code, out = _cli([*base, *tls, "--clients", clients], {"ACME_SECRET": "acme-secret-0123456789"})
    assert code == 2 and "client 'acme': shares nothing; give product_ids or company_ids" in out
    code, out = _cli([*base, *tls, "--clients", clients], {})
    assert code == 2 and "secret_env: the environment variable 'ACME_SECRET' is not set" in out
    code, out = _cli(["--store", tmp / "none.db", "--config", CONFIG, *tls], ENV)
    assert code == 2 and "no such store" in out


def test_serves_footprints_until_sigterm(files):
    tmp, cert, key, store, docs = files
    clients = tmp / "clients.yaml"
    clients.write_text("clients:\n  - client_id: acme\n    secret_env: ACME_SECRET\n"
                       "    product_ids: [urn:pact:example.com:supplier-id:board-b]\n")
    env = {**os.environ, **ENV, "ACME_SECRET": "acme-secret-0123456789"}
    proc = subprocess.Popen([sys.executable, "-m", "twin.cli", "pact-api", "--store", str(store), "--config",
                             str(CONFIG), "--port", "0", "--tls-cert", str(cert), "--tls-key", str(key),
                             "--clients", str(clients)], env=env, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and not (m := re.search(r"on (https://127\.0\.0\.1:\d+)", line)):
            line = proc.stderr.readline()
            assert line or proc.poll() is None, "pact-api ended before serving"
        assert m, "no serving line"
        base = m[1]
        assert "(2 client(s), 3 footprint(s), 2 active)" in line

        async def scenario():
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
                token = await get_token(s, base, CID, SECRET)
                async with s.get(f"{base}/3/footprints", headers={"Authorization": f"Bearer {token}"}) as r:
                    assert [d["id"] for d in (await r.json())["data"]] == [docs[k]["id"] for k in ("a1", "b1", "a2")]
                token = await get_token(s, base, "acme", "acme-secret-0123456789")
                async with s.get(f"{base}/3/footprints", headers={"Authorization": f"Bearer {token}"}) as r:
                    assert [d["id"] for d in (await r.json())["data"]] == [docs["b1"]["id"]]

        asyncio.run(scenario())
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        log = line + proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "GET /3/footprints 200 client=owner-erp" in log and "GET /3/footprints 200 client=acme" in log
    assert SECRET not in log and "acme-secret" not in log and "Traceback" not in log


def test_event_bodies_refused_before_handling(files):
    _, cert, key, store, _ = files
    app = create_app(FootprintRepository(store), ClientRegistry([Client.make(CID, SECRET, everything=True)]),
                     clock=FakeClock(), burst=1000)
    event = ('{"type": "org.wbcsd.pact.ProductFootprint.SomethingElse.3", "specversion": "1.0", "id": "e1", '
             '"source": "//customer.example/3/events", "time": "2026-04-01T00:00:00Z", "data": {}}')
    cloud = "application/cloudevents+json; charset=UTF-8"

    async def scenario():
        async with serving(app, cert, key) as base, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
            token = await get_token(s, base, CID, SECRET)
            for body, ctype, why in (("{not json", cloud, "the body is not JSON"),
                                     ("[1, 2]", cloud, "not a JSON object"),
                                     ("\xff\xfe", cloud, "the body is not JSON"),
                                     ("{}", "text/plain", "expected Content-Type application/cloudevents+json"),
                                     ("x" * (MAX_BODY_BYTES + 1), cloud, "larger than 1048576 bytes"),
                                     (event, cloud, "unknown event type")):
                async with s.post(f"{base}/3/events", data=body.encode("latin-1"),
                                  headers={"Authorization": f"Bearer {token}", "Content-Type": ctype}) as r:
                    got = await r.json()
                    assert (r.status, got["code"]) == (400, "BadRequest") and why in got["message"], (why, got)
            async with s.post(f"{base}/3/events", data=event, headers={**basic(CID, SECRET), "Content-Type": cloud}) as r:
                assert (r.status, (await r.json())["code"]) == (400, "BadRequest")  # Basic is not a bearer token

    asyncio.run(scenario())
