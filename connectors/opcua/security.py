"""OPC UA application certificates: generated once and kept, and the server certificate pinned.

Field tools regenerate the client certificate at every start, so a server administrator has to
trust it again each time (telegraf #11454), and offer no way to pin the server certificate
(telegraf #17608). Here the client key and certificate are created only when missing or no longer
valid (expired, wrong application URI) and reused otherwise; the server certificate is pinned by
file: trusted on first use when the file does not exist yet, and refused (fail closed) when the
server later presents any other certificate. OPC UA Part 6 section 6.2 describes the certificate
fields; Part 2 section 4.10 the trust model.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
from pathlib import Path

from asyncua.crypto import cert_gen
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID

log = logging.getLogger(__name__)

#: Application URI of the factory-twin OPC UA client; it must appear in the client certificate.
CLIENT_APPLICATION_URI = "urn:factory-twin:client"


class CertificatePinError(ConnectionRefusedError):
    """The server presented a certificate other than the pinned one. Never retried: fail closed."""


def fingerprint_sha256(der: bytes) -> str:
    """SHA-256 fingerprint of a DER certificate as colon-separated upper-case hex (as openssl prints it)."""
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def load_der(path: str | Path) -> bytes:
    """A certificate file (DER or PEM) as DER bytes."""
    data = Path(path).read_bytes()
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data).public_bytes(Encoding.DER)
    return data


async def ensure_certificate(
    cert_path: str | Path,
    key_path: str | Path,
    application_uri: str,
    *,
    server: bool = False,
    host_name: str | None = None,
) -> tuple[Path, Path]:
    """Create a self-signed application certificate and RSA key unless valid ones already exist.

    The key is created once and never replaced while its file exists; the certificate (DER, one
    year) is re-issued from the same key only when it is missing, expired, or names another
    application URI or host. ``server`` selects the server-auth extended key usage instead of
    client-auth. Returns ``(cert_path, key_path)``.
    """
    cert_path, key_path = Path(cert_path), Path(key_path)
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.parent.mkdir(parents=True, exist_ok=True)
    existed = cert_path.is_file() and key_path.is_file()
    usage = [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
    await cert_gen.setup_self_signed_certificate(
        key_path, cert_path, application_uri, host_name or socket.gethostname(), usage, {}
    )
    # the key is a secret: readable by its owner only
    os.chmod(key_path, 0o600)
    if not existed:
        log.info(
            "created OPC UA certificate %s (SHA-256 %s) for %s",
            cert_path,
            fingerprint_sha256(load_der(cert_path)),
            application_uri,
        )
    return cert_path, key_path


def check_pinned(presented_der: bytes, pinned_path: str | Path, endpoint: str) -> bytes:
    """The pinned server certificate (DER), after checking the server presented exactly it.

    When ``pinned_path`` does not exist yet the presented certificate is written there (trust on
    first use) and logged with its fingerprint, so an operator can compare it with the server's.
    Raises CertificatePinError, naming both fingerprints, when the certificates differ.
    """
    pinned_path = Path(pinned_path)
    if not presented_der:
        raise CertificatePinError(f"{endpoint}: the server presented no certificate; pinned file is {pinned_path}")
    if not pinned_path.exists():
        pinned_path.parent.mkdir(parents=True, exist_ok=True)
        pinned_path.write_bytes(presented_der)
        log.warning(
            "%s: no pinned server certificate at %s; trusting the presented one on first use (SHA-256 %s)",
            endpoint,
            pinned_path,
            fingerprint_sha256(presented_der),
        )
        return presented_der
    pinned = load_der(pinned_path)
    if pinned != presented_der:
        raise CertificatePinError(
            f"{endpoint}: server certificate does not match the pinned one, refusing to connect. "
            f"presented SHA-256 {fingerprint_sha256(presented_der)}, pinned SHA-256 "
            f"{fingerprint_sha256(pinned)} ({pinned_path}). If the server's certificate was renewed on "
            f"purpose, replace the pinned file with the new certificate."
        )
    return pinned
