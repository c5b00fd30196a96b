"""MQTT over TLS (mqtts://) against a real mosquitto with a TLS listener, with throw-away certificates.

A CA and a server certificate (CN and SAN 127.0.0.1 and localhost) are generated into tmp_path with
the ``cryptography`` package; a second, unrelated CA plays the wrong one. The client's TLS settings
come from the mapping's ``tls: {ca_file, cert_file, key_file}``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import logging
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from paho.mqtt.enums import CallbackAPIVersion

from connectors.mqtt import MqttClient
from factory_models import Quality, TsKind
from factory_models.signals import known_signals
from support.mqtt_broker import Mosquitto, meters_source, next_sample
from support.factories import small_factory

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

TOPIC = "factory/suzhou-smt/line1/printer/power_kw"


# --- throw-away PKI -------------------------------------------------------------------------------


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write(path: Path, cert: x509.Certificate, key) -> tuple[Path, Path]:
    path.with_suffix(".crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    path.with_suffix(".key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path.with_suffix(".crt"), path.with_suffix(".key")


def make_ca(directory: Path, cn: str):
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    crt, _ = _write(directory / cn, cert, key)
    return cert, key, crt


def make_leaf(directory: Path, cn: str, ca_cert, ca_key, *, server: bool) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(ca_cert.subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.ExtendedKeyUsage(
            [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    )
    if server:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
    return _write(directory / cn.replace(".", "_"), builder.sign(ca_key, hashes.SHA256()), key)


@pytest.fixture
def pki(tmp_path):
    directory = tmp_path / "pki"
    directory.mkdir()
    ca_cert, ca_key, ca = make_ca(directory, "test-ca")
    _, _, wrong_ca = make_ca(directory, "wrong-ca")
    server_crt, server_key = make_leaf(directory, "127.0.0.1", ca_cert, ca_key, server=True)
    client_crt, client_key = make_leaf(directory, "factory-twin-client", ca_cert, ca_key, server=False)
    return {"ca": ca, "wrong_ca": wrong_ca, "server": (server_crt, server_key), "client": (client_crt, client_key)}


def tls_broker(tmp_path, pki, require_certificate=False) -> Mosquitto:
    crt, key = pki["server"]
    broker = Mosquitto(tmp_path / "mosquitto", cafile=pki["ca"], certfile=crt, keyfile=key,
                       require_certificate=require_certificate)
    broker.start()
    return broker


def publish_tls(broker: Mosquitto, ca: Path, payload: bytes, client_cert: tuple[Path, Path] | None = None) -> None:
    """One QoS 1 message through the broker's TLS listener, acknowledged before this returns."""
    pub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="tls-test-publisher")
    pub.tls_set(ca_certs=str(ca), certfile=str(client_cert[0]) if client_cert else None,
                keyfile=str(client_cert[1]) if client_cert else None)
    pub.connect(broker.host, broker.port, 30)
    pub.loop_start()
    try:
        info = pub.publish(TOPIC, payload, qos=1)
        info.wait_for_publish(15)
        assert info.is_published()
    finally:
        pub.disconnect()
        pub.loop_stop()


def receive_one(cfg, tmp_path, broker: Mosquitto, ca: Path, client_cert=None):
    """Start the source, wait for "up", publish one QoS 1 message over TLS, return (up, sample, stats)."""
    factory = small_factory()

    async def scenario():
        client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        try:
            up = await next_sample(queue)
            payload = json.dumps({"value": 12.5, "ts": 1767571200250}).encode()
            await asyncio.to_thread(publish_tls, broker, ca, payload, client_cert)
            reading = await next_sample(queue)
            return up, reading, client.stats()
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    return asyncio.run(scenario())


# --- tests ----------------------------------------------------------------------------------------


def test_mqtts_with_the_right_ca_delivers_a_qos1_message(tmp_path, pki):
    broker = tls_broker(tmp_path, pki)
    try:
        assert broker.url.startswith("mqtts://127.0.0.1:")
        cfg = meters_source(broker.url, client_id="tls-twin", tls={"ca_file": str(pki["ca"])})
        up, reading, stats = receive_one(cfg, tmp_path, broker, pki["ca"])
    finally:
        broker.stop()
    assert (up.signal, up.value) == ("connection/meters", "up")
    assert (reading.signal, reading.value, reading.ts, reading.quality, reading.ts_kind) == (
        "line1/printer/power_kw", 12.5, 1767571200.25, Quality.GOOD, TsKind.SOURCE)
    assert stats["connected"] and stats["received"] == 1 and stats["rejected"] == 0
    assert stats["connect_failures"] == 0


def test_mqtts_with_a_wrong_ca_is_refused_with_a_clear_error_and_retried(tmp_path, pki, caplog):
    broker = tls_broker(tmp_path, pki)
    factory = small_factory()
    cfg = meters_source(broker.url, client_id="tls-wrong-ca", reconnect_min_s=0.1, reconnect_max_s=0.2,
                        tls={"ca_file": str(pki["wrong_ca"])})

    async def scenario():
        client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        try:
            # a guard, not a speed check: wait until it has failed (and been retried) at least twice
            for _ in range(300):
                if client.stats()["connect_failures"] >= 2 or task.done():
                    break
                await asyncio.sleep(0.05)
            return client.stats(), task.done(), [queue.get_nowait() for _ in range(queue.qsize())]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        with caplog.at_level(logging.WARNING, logger="connectors.mqtt.client"):
            stats, crashed, samples = asyncio.run(scenario())
    finally:
        broker.stop()
    assert not crashed  # still running, retrying with backoff
    assert stats["connect_failures"] >= 2
    assert stats["connected"] is False and stats["received"] == 0
    assert not [s for s in samples if s.value == "up"]  # never reported up
    error = stats["last_error"]
    assert "certificate" in error and "verify failed" in error and str(pki["wrong_ca"]) in error
    assert any("certificate" in r.getMessage() and str(pki["wrong_ca"]) in r.getMessage() for r in caplog.records)


def test_client_certificate_required_by_the_broker(tmp_path, pki):
    broker = tls_broker(tmp_path, pki, require_certificate=True)
    crt, key = pki["client"]
    try:
        cfg = meters_source(broker.url, client_id="tls-client-cert",
                            tls={"ca_file": str(pki["ca"]), "cert_file": str(crt), "key_file": str(key)})
        up, reading, stats = receive_one(cfg, tmp_path, broker, pki["ca"], client_cert=pki["client"])
    finally:
        broker.stop()
    assert up.value == "up" and (reading.signal, reading.value) == ("line1/printer/power_kw", 12.5)
    assert stats["connect_failures"] == 0


def test_without_a_client_certificate_the_broker_refuses(tmp_path, pki):
    """The same broker refuses a client that has the right CA but no certificate of its own."""
    broker = tls_broker(tmp_path, pki, require_certificate=True)
    factory = small_factory()
    cfg = meters_source(broker.url, client_id="tls-no-client-cert", reconnect_min_s=0.1, reconnect_max_s=0.2,
                        tls={"ca_file": str(pki["ca"])})

    async def scenario():
        client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        try:
            for _ in range(300):
                if client.stats()["connect_failures"] >= 1 or task.done():
                    break
                await asyncio.sleep(0.05)
            return client.stats(), task.done(), [queue.get_nowait() for _ in range(queue.qsize())]
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    try:
        stats, crashed, samples = asyncio.run(scenario())
    finally:
        broker.stop()
    assert not crashed and stats["connected"] is False and stats["connect_failures"] >= 1
    assert not [s for s in samples if s.value == "up"]
    # TLS 1.3 refuses the missing certificate after the handshake: still named, not a silent retry
    assert "certificate" in stats["last_error"] and "tls.cert_file" in stats["last_error"]
