"""A PACT v3 API server for tests: a throw-away self-signed certificate (127.0.0.1 and localhost),
the client TLS context that trusts it, a clock the test moves, the app served in-process over HTTPS
on a free port, and a store holding real published footprints.

The footprints (``publish_sample``) are the worked quarter of tests/support/carbon_exchange.py:
board-a and board-b published (revision 1 each), then a second report with 120,000 good units of
board-a, which supersedes it. In publication order: a1 (now Deprecated), b1, a2 (Active, preceded by
a1). No validity period is given, so each is valid from its referencePeriodEnd
(2026-03-31T16:00:00Z) for 3 years (to 2029-03-31T16:00:00Z); geography CN; board-a carries the
classification ``urn:pact:example.com:cn-code:85340011``.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from contextlib import asynccontextmanager
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

A_URN = "urn:pact:example.com:supplier-id:board-a"
B_URN = "urn:pact:example.com:supplier-id:board-b"
COMPANY = "urn:pact:example.com:company-id:plant1"
CLASSIFICATION_A = "urn:pact:example.com:cn-code:85340011"


def make_tls(directory: Path) -> tuple[Path, Path]:
    """A self-signed server certificate for 127.0.0.1 and localhost: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "factory-twin pact-api test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "pact-cert.pem", directory / "pact-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def client_ssl(cert: Path) -> ssl.SSLContext:
    """A client context that trusts only the test's certificate (and checks the host name)."""
    return ssl.create_default_context(cafile=str(cert))


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def serving(app, cert: Path, key: Path, host: str = "127.0.0.1"):
    """Serve ``app`` over HTTPS on a free port; yields its base URL."""
    from twin.pact_api.app import server_ssl, start

    runner, port = await start(app, host, 0, server_ssl(cert, key))
    try:
        yield f"https://{host}:{port}"
    finally:
        await runner.cleanup()


def publish_sample(store: Path) -> dict[str, dict]:
    """Publish the three footprints described above into ``store``: {"a1", "b1", "a2"} -> document."""
    from carbon import ProductOutput, Registry, SharedLoad, StationUse, allocate, build_inventory
    from tests.support.carbon_exchange import CFG, PACT, SITE, T0, T1, TZ, inventory, records
    from twin.pact_api.repository import FootprintRepository

    repo = FootprintRepository(store)
    a1, b1 = repo.publish(inventory(), PACT, created="2026-04-01T00:00:00Z")
    alloc = allocate([StationUse("line/press", 259_200.0, machine_time_s={"board-a": 3.0e6, "board-b": 1.0e6})],
                     [ProductOutput("board-a", 120_000, 0.5), ProductOutput("board-b", 20_000, 1.0)],
                     [SharedLoad("gas (Scope 1)", "fuel", 43_200.0)], 118_800.0 / 259_200.0)
    second = build_inventory(records(), Registry.default(), (T0, T1), SITE, alloc, CFG, TZ)
    a2, _b1 = repo.publish(second, PACT, created="2026-04-02T00:00:00Z")
    return {"a1": dict(a1, status="Deprecated"), "b1": b1, "a2": a2}


async def get_token(session, base: str, client_id: str, secret: str) -> str:
    """An access token by the client credentials grant with HTTP Basic (asserts success)."""
    async with session.post(f"{base}/auth/token", data={"grant_type": "client_credentials"},
                            headers=basic(client_id, secret)) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["access_token"]


def basic(client_id: str, secret: str) -> dict[str, str]:
    """The HTTP Basic ``Authorization`` header of client credentials."""
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}
