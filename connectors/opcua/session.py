"""One OPC UA connection: opening it with security and credentials, and reading what a
notification carries (quality from the StatusCode, timestamps, node ids by namespace URI).

``client.py`` supervises sessions and subscriptions on top of these; ``browse.py`` opens its
connection here too.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timezone
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies
from asyncua.ua import uaerrors

from factory_models import Quality

from .config import OpcUaSecurity
from .security import CLIENT_APPLICATION_URI, CertificatePinError, check_pinned, ensure_certificate

#: StatusCodes meaning "this user may not connect": retrying with the same credentials cannot help.
_AUTH_REFUSED = (
    uaerrors.BadUserAccessDenied,
    uaerrors.BadIdentityTokenInvalid,
    uaerrors.BadIdentityTokenRejected,
    uaerrors.BadCertificateUntrusted,
    uaerrors.BadCertificateInvalid,
    uaerrors.BadSecurityChecksFailed,
)


#: StatusCode names (prefixes) meaning the session or channel is gone: not a node's fault, so a
#: refused request with one of them ends the connection instead of being split and retried.
SESSION_GONE = (
    "BadSession", "BadSecureChannel", "BadConnection", "BadServer", "BadCommunication", "BadTimeout",
    "BadShutdown", "BadTcp", "BadNotConnected", "BadDisconnect", "BadSubscriptionIdInvalid",
)


def status_name(exc: Exception) -> str:
    code = getattr(exc, "code", None)
    if code is not None:
        with contextlib.suppress(Exception):
            return ua.StatusCode(code).name
    return type(exc).__name__


#: asyncua's loggers that report a dropped connection themselves, with a traceback at ERROR
#: ("Publish iteration crashed" once a second while the server is away) or a warning per teardown
#: call; the client reports the drop in one line of its own (client.py).
ASYNCUA_LOGGERS = (
    "asyncua.client.ua_session.UaSession",
    "asyncua.client.ua_client.UaClient",
    "asyncua.client.ua_client.UASocketProtocol",
    "asyncua.client.client",
)
#: the teardown warnings asyncua writes when the connection is already gone
_TEARDOWN = ("was called but connection is closed",)


def is_connection_loss(exc: BaseException | None) -> bool:
    """True when ``exc`` says the connection or session went away, not that something is wrong."""
    if isinstance(exc, ConnectionError | TimeoutError | EOFError):
        return True
    if isinstance(exc, uaerrors.UaStatusCodeError):
        return status_name(exc).startswith(SESSION_GONE)
    return False


class DropNoise(logging.Filter):
    """Keeps asyncua's reports of a dropped connection out of the log: a record whose exception is a
    connection loss, or a teardown warning of a closed connection. With DEBUG on for
    ``connectors.opcua`` they are kept as one line without the traceback; every other record,
    a real error with its traceback included, passes unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        drop = is_connection_loss(exc) if exc is not None else any(t in record.getMessage() for t in _TEARDOWN)
        if not drop:
            return True
        if not logging.getLogger("connectors.opcua").isEnabledFor(logging.DEBUG):
            return False
        record.msg, record.args = f"{record.getMessage()}: {type(exc).__name__}: {exc}" if exc else record.getMessage(), ()
        record.exc_info = record.exc_text = None
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return True


_DROP_NOISE = DropNoise()


def quiet_asyncua_drops() -> None:
    """Install ``DropNoise`` on asyncua's client loggers (once; idempotent)."""
    for name in ASYNCUA_LOGGERS:
        logger = logging.getLogger(name)
        if _DROP_NOISE not in logger.filters:
            logger.addFilter(_DROP_NOISE)


class OpcUaRefused(ConnectionRefusedError):
    """The server refused us for a reason a retry cannot fix (credentials, security, certificate)."""


def quality_of(status: ua.StatusCode | None) -> Quality:
    """Quality from a StatusCode's severity, its top two bits (OPC UA Part 4 section 7.39)."""
    if status is None:
        return Quality.GOOD
    severity = (status.value >> 30) & 0b11
    return Quality.GOOD if severity == 0 else Quality.UNCERTAIN if severity == 1 else Quality.BAD


def epoch_s(dt: datetime | None) -> float | None:
    """Epoch seconds of an OPC UA DateTime (UTC); None when the server left it out."""
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    ts = dt.timestamp()
    # DateTime.MinValue (1601) means "not set" in OPC UA Part 6 section 5.2.2.5
    return None if ts <= 0 else ts


def resolve_node_id(text: str, namespaces: list[str]) -> ua.NodeId:
    """A NodeId from ``nsu=<uri>;<id>`` (or a plain ``i=``/``s=`` id in namespace 0) against the
    server's current namespace array. KeyError names the URI when the server does not have it."""
    node = ua.NodeId.from_string(text)
    uri = getattr(node, "NamespaceUri", None)
    if not uri:
        return node
    try:
        index = namespaces.index(uri)
    except ValueError:
        raise KeyError(f"namespace {uri!r} is not on the server (it has {namespaces})") from None
    return ua.NodeId(node.Identifier, index, node.NodeIdType)


async def open_client(
    endpoint: str,
    security: OpcUaSecurity,
    *,
    username: str | None = None,
    password: str | None = None,
    source_name: str = "opcua",
    timeout_s: float = 4.0,
    watchdog_s: float = 1.0,
) -> Client:
    """A connected asyncua Client with the configured security, the server certificate pinned.

    With policy Basic256Sha256 the client certificate is created once at ``client_cert`` and kept;
    the server certificate is read from the server's endpoint list over an unsecured discovery
    channel and compared with the pinned file *before* any secure channel is opened. The pinned
    file defaults to ``<client_cert dir>/<source_name>-server.der`` and is written on first use.
    Raises CertificatePinError or OpcUaRefused for refusals, OSError/asyncio.TimeoutError when
    the server cannot be reached.
    """
    quiet_asyncua_drops()
    client = Client(endpoint, timeout=timeout_s, watchdog_intervall=watchdog_s)
    # ten minutes: what asyncua's server grants at most; a session we leave behind expires
    client.session_timeout = 600_000
    client.application_uri = CLIENT_APPLICATION_URI
    client.name = client.description = f"factory-twin {source_name}"
    if username is not None:
        client.set_user(username)
    if password is not None:
        client.set_password(password)
    if security.policy != "None":
        cert, key = await ensure_certificate(security.client_cert, security.client_key, CLIENT_APPLICATION_URI)
        pinned_path = security.server_cert or Path(security.client_cert).parent / f"{source_name}-server.der"
        mode = getattr(ua.MessageSecurityMode, security.mode)
        policy = security_policies.SecurityPolicyBasic256Sha256
        discovery = Client(endpoint, timeout=timeout_s)
        endpoints = await discovery.connect_and_get_server_endpoints()
        chosen = [e for e in endpoints if e.SecurityPolicyUri == policy.URI and e.SecurityMode == mode]
        if not chosen:
            offered = sorted({f"{e.SecurityPolicyUri.rsplit('#', 1)[-1]}/{e.SecurityMode.name}" for e in endpoints})
            raise OpcUaRefused(f"{endpoint}: the server offers no Basic256Sha256 {security.mode} endpoint; it offers {offered}")
        presented = _first_certificate(chosen[0].ServerCertificate)
        pinned = check_pinned(presented, pinned_path, endpoint)
        await client.set_security(policy, str(cert), str(key), server_certificate=pinned, mode=mode)
    try:
        await client.connect()
    except _AUTH_REFUSED as exc:
        who = f"user {username!r}" if username is not None else "an anonymous session"
        raise OpcUaRefused(
            f"{endpoint}: the server refused {who}: {type(exc).__name__} ({exc}). Check the user name and "
            "password variables (or password file) of this source, and that the server trusts our certificate."
        ) from None
    except ua.UaError as exc:
        if "certificate mismatch" in str(exc).lower():
            raise CertificatePinError(f"{endpoint}: server certificate changed during the handshake: {exc}") from None
        raise
    return client


def _first_certificate(der: bytes | None) -> bytes:
    """The leaf certificate of a DER chain (servers may send their chain concatenated)."""
    if not der:
        return b""
    # a DER SEQUENCE: 0x30, then the length in short or long form
    if der[0] == 0x30 and len(der) > 4 and der[1] & 0x80:
        n = der[1] & 0x7F
        length = int.from_bytes(der[2 : 2 + n], "big")
        return der[: 2 + n + length]
    return der
