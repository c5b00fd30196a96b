"""OPC UA security against a real simulated PLC: certificates, pinning, user names and passwords."""

from __future__ import annotations

import asyncio

import pytest

from connectors.opcua.client import OpcUaClient, OpcUaRefused
from connectors.opcua.plc import APPLICATION_URI, PlcSecurity, SimulatedPlc
from connectors.opcua.security import CertificatePinError, ensure_certificate, fingerprint_sha256, load_der
from factory_models import Quality

from support.opcua_server import FACTORY, FAST, collect, node, write_mapping

pytestmark = pytest.mark.integration

USERS = {"operator": "correct horse battery staple"}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def _secure_source(tmp_path, endpoint, mode="SignAndEncrypt", **extra):
    return {
        "name": "plc1",
        "endpoint": endpoint,
        "security": {
            "policy": "Basic256Sha256",
            "mode": mode,
            "client_cert": str(tmp_path / "pki" / "client.der"),
            "client_key": str(tmp_path / "pki" / "client.pem"),
            "server_cert": str(tmp_path / "pki" / "plc1-server.der"),
        },
        "username_env": "FT_OPCUA_USER",
        "subscription": FAST,
        "nodes": [node("line1/printer/state")],
        **extra,
    }


def _plc(tmp_path) -> SimulatedPlc:
    security = PlcSecurity(cert=tmp_path / "server" / "cert.der", key=tmp_path / "server" / "key.pem", users=USERS)
    return SimulatedPlc(FACTORY, port=0, security=security)


async def _first_state(source) -> list:
    queue: asyncio.Queue = asyncio.Queue()
    task = asyncio.create_task(source.run(queue))
    try:
        return await collect(queue, lambda got: any(s.value == "SETUP" for s in got))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


@pytest.mark.parametrize("mode", ["SignAndEncrypt", "Sign"])
def test_secure_session_with_user_and_pinned_certificate(tmp_path, monkeypatch, mode):
    monkeypatch.setenv("FT_OPCUA_USER", "operator")
    (tmp_path / "password").write_text(USERS["operator"] + "\n")

    async def main():
        async with _plc(tmp_path) as plc:
            await plc.update("line1/printer/state", "SETUP")
            mapping = write_mapping(
                tmp_path, _secure_source(tmp_path, plc.endpoint, mode, password_file=str(tmp_path / "password"))
            )
            got = await _first_state(OpcUaClient(mapping.opcua[0], site=mapping.site))
            first_cert = (tmp_path / "pki" / "client.der").read_bytes()
            # a second start reuses the client certificate and the pin written on first use
            got2 = await _first_state(OpcUaClient(mapping.opcua[0], site=mapping.site))
        assert [s.quality for s in got if s.value == "SETUP"] == [Quality.GOOD]
        assert any(s.value == "SETUP" for s in got2)
        assert (tmp_path / "pki" / "client.der").read_bytes() == first_cert
        assert (tmp_path / "pki" / "plc1-server.der").read_bytes() == load_der(tmp_path / "server" / "cert.der")

    run(main())


def test_wrong_password_is_refused_with_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_OPCUA_USER", "operator")
    monkeypatch.setenv("FT_OPCUA_PASSWORD", "not the password")

    async def main():
        async with _plc(tmp_path) as plc:
            mapping = write_mapping(tmp_path, _secure_source(tmp_path, plc.endpoint, password_env="FT_OPCUA_PASSWORD"))
            source = OpcUaClient(mapping.opcua[0], site=mapping.site)
            with pytest.raises(OpcUaRefused) as err:
                await source.run(asyncio.Queue())
        return source, str(err.value)

    source, message = run(main())
    assert "refused user 'operator'" in message and "BadUserAccessDenied" in message
    assert "not the password" not in message  # secrets never in messages
    assert source.stats()["last_error"] == message and source.stats()["connected"] is False


def test_server_with_another_certificate_than_the_pinned_one_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FT_OPCUA_USER", "operator")
    monkeypatch.setenv("FT_OPCUA_PASSWORD", USERS["operator"])

    async def main():
        # the certificate pinned is that of another server (say, before a rogue swap)
        other, _ = await ensure_certificate(tmp_path / "other" / "cert.der", tmp_path / "other" / "key.pem",
                                            APPLICATION_URI, server=True)
        (tmp_path / "pki").mkdir()
        (tmp_path / "pki" / "plc1-server.der").write_bytes(other.read_bytes())
        async with _plc(tmp_path) as plc:
            await plc.update("line1/printer/state", "SETUP")
            mapping = write_mapping(tmp_path, _secure_source(tmp_path, plc.endpoint, password_env="FT_OPCUA_PASSWORD"))
            queue: asyncio.Queue = asyncio.Queue()
            with pytest.raises(CertificatePinError) as err:
                await OpcUaClient(mapping.opcua[0], site=mapping.site).run(queue)
        return str(err.value), queue, other

    message, queue, other = run(main())
    presented = fingerprint_sha256(load_der(tmp_path / "server" / "cert.der"))
    assert presented in message and fingerprint_sha256(other.read_bytes()) in message
    assert "does not match the pinned" in message
    assert queue.empty()  # not one value read from the unpinned server
    assert (tmp_path / "pki" / "plc1-server.der").read_bytes() == other.read_bytes()  # the pin is untouched


def test_anonymous_client_is_refused_when_the_server_requires_users(tmp_path):
    async def main():
        async with _plc(tmp_path) as plc:
            source = _secure_source(tmp_path, plc.endpoint)
            del source["username_env"]
            mapping = write_mapping(tmp_path, source)
            with pytest.raises(OpcUaRefused, match="anonymous session"):
                await OpcUaClient(mapping.opcua[0], site=mapping.site).run(asyncio.Queue())

    run(main())
