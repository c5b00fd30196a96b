"""Who may see the dashboard: loopback peers freely, everyone else with the shared token.

A plant network is not the internet, but it is not private either: a dashboard bound beyond
loopback shows production figures and (in the demo) accepts actions, so it needs a token there.
The token comes from the environment or a file, never from the command line (visible in ``ps``)
or a config file (copied around), and it is never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import socket
from pathlib import Path

TOKEN_ENV = "FACTORY_TWIN_DASHBOARD_TOKEN"
COOKIE_NAME = "factory_twin_token"
#: Headers a reverse proxy adds: a request that carries one came from elsewhere, even through loopback.
FORWARD_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


class DashboardAuthError(ValueError):
    """The dashboard's token configuration cannot be used (says what to set)."""


def load_token(*, env: str = TOKEN_ENV, file: str | Path | None = None) -> str | None:
    """The dashboard token from ``file`` (first line) if given, else from the environment variable ``env``.

    Returns None when neither is set. An empty token is an error rather than "no token", so a
    mistyped secret cannot silently open the dashboard.
    """
    if file is not None:
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise DashboardAuthError(f"cannot read the dashboard token file {path}: {exc.strerror}") from None
        token = text.strip().splitlines()[0].strip() if text.strip() else ""
        if not token:
            raise DashboardAuthError(f"the dashboard token file {path} is empty")
        return token
    value = os.environ.get(env)
    if value is None:
        return None
    if not value.strip():
        raise DashboardAuthError(f"the environment variable {env} is set but empty")
    return value.strip()


def is_loopback_address(address: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (::ffff:127.x.y.z); False for anything else."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def is_loopback_host(host: str) -> bool:
    """True if a bind address (an IP literal or a host name) resolves to loopback addresses only.

    An empty host or a wildcard (0.0.0.0, ::) binds every interface, so it is not loopback.
    """
    if host in ("", "0.0.0.0", "::", "*"):
        return False
    if is_loopback_address(host):
        return True
    try:
        ipaddress.ip_address(host)
        return False  # a literal that is not loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror:
        return False
    return bool(infos) and all(is_loopback_address(info[4][0]) for info in infos)


def token_matches(expected: str, offered: str | None) -> bool:
    """Constant-time comparison, so response timing does not reveal how much of a guess was right."""
    if offered is None:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), offered.encode("utf-8"))


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


class AccessPolicy:
    """Decides, per request, whether the token is needed and whether the request offers it."""

    def __init__(self, host: str, token: str | None):
        self.loopback_bound = is_loopback_host(host)
        if not self.loopback_bound and token is None:
            raise DashboardAuthError(
                f"refusing to serve the dashboard on {host or 'every interface'} without a token: set "
                f"{TOKEN_ENV} (or pass a token file), or bind to 127.0.0.1"
            )
        self._token = token

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def needs_token(self, peer: str | None, headers) -> bool:
        """Only a local, unproxied peer is exempt.

        A request relayed by a reverse proxy on this host arrives from loopback but carries a
        forwarding header: it needs the token whenever one is configured (a loopback-bound server
        without a token leaves access control to that proxy).
        """
        if not is_loopback_address(peer):
            return True
        return self._token is not None and any(h in headers for h in FORWARD_HEADERS)

    def allows(self, peer: str | None, headers, query_token: str | None, cookie_token: str | None) -> bool:
        if not self.needs_token(peer, headers):
            return True
        if self._token is None:
            return False
        offered = (bearer_token(headers.get("Authorization")), query_token, cookie_token)
        return any(token_matches(self._token, t) for t in offered)

    def offered_token_matches(self, offered: str | None) -> bool:
        return self._token is not None and token_matches(self._token, offered)

    def cookie_value(self) -> str:
        assert self._token is not None
        return self._token

    def __repr__(self) -> str:  # never show the token
        return f"AccessPolicy(loopback_bound={self.loopback_bound}, token={'set' if self._token else 'none'})"
