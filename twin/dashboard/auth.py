"""Who may see the dashboard, and under which names.

A plant network is not the internet, but it is not private either: a dashboard bound beyond
loopback shows production figures and (in the demo) accepts actions, so it needs a token there.
The token comes from the environment or a file, never from the command line (visible in ``ps``)
or a config file (copied around), and it is never logged, nor put in a cookie: a browser that
showed the token once holds a random session id the server maps to an expiring session.

Loopback peers may read without the token, but with a token configured every state-changing
request (POST) needs it, loopback included: a page in the operator's own browser is a loopback
peer too. And every request must name this server in its Host header (``HostAllowList``): a DNS
rebinding page reaches 127.0.0.1 under the attacker's own name, and is answered 421.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path

TOKEN_ENV = "FACTORY_TWIN_DASHBOARD_TOKEN"
COOKIE_NAME = "factory_twin_session"
#: A session lasts a long shift; then the page must be opened with the token again.
SESSION_TTL_S = 12 * 3600.0
#: Sessions kept at most (the oldest goes first): only a holder of the token can make one.
MAX_SESSIONS = 1024
#: Methods that only read: anything else changes the plant (force_down) and needs the token.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Names that always mean this computer (with the bound port).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
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


def split_host(value: str) -> tuple[str, int | None] | None:
    """``(name, port)`` of a Host header (``name``, ``name:port``, ``[v6]:port``), lower case without
    a trailing dot; None when it cannot be a host name."""
    value = value.strip().lower()
    if value.startswith("["):
        name, sep, rest = value[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            return None
        port_text = rest[1:] if rest else None
    else:
        if value.count(":") > 1:
            return None  # a bare IPv6 literal: invalid in a Host header
        name, sep, port_text = value.partition(":")
        port_text = port_text if sep else None
    name = name.rstrip(".")
    if not name or any(c in name for c in "/@\\ \t"):
        return None
    if port_text is None:
        return name, None
    if not port_text.isdigit() or not 0 < int(port_text) <= 65535:
        return None
    return name, int(port_text)


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _is_wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::", "*")


class HostAllowList:
    """The names a request may address this server by: anything else is answered 421.

    DNS rebinding points the attacker's own name at this server, so the browser's Host header
    carries that name: checking it is what defeats the attack. Allowed, with the bound port: the
    bound address, the loopback names, and under a wildcard bind this computer's host name and
    any IP literal (an address is not a name an attacker can rebind). ``extra`` entries are
    ``name`` (any port) or ``name:port``, for a DNS name or a reverse proxy in front.
    """

    def __init__(self, bind_host: str, port: int, extra: Iterable[str] = ()):
        self.port = int(port)
        self.wildcard = _is_wildcard(bind_host)
        names = set(LOOPBACK_NAMES)
        if not self.wildcard:
            names.add(bind_host.strip("[]").lower().rstrip("."))
        else:
            # not getfqdn(): a reverse DNS lookup can hang for seconds on a plant network without DNS
            name = socket.gethostname()
            if name:
                names.add(name.lower().rstrip("."))
        self._names = names
        self._extra: set[tuple[str, int | None]] = set()
        for entry in extra:
            parsed = split_host(entry)
            if parsed is None:
                raise DashboardAuthError(f"not a host name (or name:port) for the dashboard: {entry!r}")
            self._extra.add(parsed)

    def set_port(self, port: int) -> None:
        """The port the system picked (a server started with ``port=0``)."""
        self.port = int(port)

    def allows(self, host_header: str | None, *, secure: bool = False) -> bool:
        if host_header is None:
            return True  # no browser sends a request without Host, so it cannot be a rebinding page
        parsed = split_host(host_header)
        if parsed is None:
            return False
        name, port = parsed
        if (name, None) in self._extra or (name, port) in self._extra:
            return True
        effective = port if port is not None else (443 if secure else 80)
        if effective != self.port:
            return False
        return name in self._names or (self.wildcard and _is_ip_literal(name))

    def __repr__(self) -> str:
        return f"HostAllowList(port={self.port}, names={sorted(self._names)}, extra={sorted(map(str, self._extra))})"


def served_over_tls(secure: bool, peer: str | None, headers) -> bool:
    """True if the browser's side of the request is HTTPS: served so here, or by a TLS-terminating
    reverse proxy on this host (``X-Forwarded-Proto: https`` from loopback; from elsewhere anyone
    could send that header)."""
    if secure:
        return True
    proto = headers.get("X-Forwarded-Proto", "").split(",")[0].strip().lower()
    return proto == "https" and is_loopback_address(peer)


def cross_origin(headers) -> str | None:
    """Why a state-changing request comes from another site's page, or None.

    Browsers send Origin with every POST (and Sec-Fetch-Site where they support it); tools like
    curl send neither and are judged by the token alone. The Host header was checked before, so an
    Origin naming the same host (and port, when Host gives one) is this server's own page. The
    scheme is not compared: behind a TLS-terminating proxy the page is https and the request http.
    """
    site = headers.get("Sec-Fetch-Site")
    if site is not None and site not in ("same-origin", "none"):
        return f"Sec-Fetch-Site {site[:40]}"
    origin = headers.get("Origin")
    if origin is None:
        return None
    scheme, sep, rest = origin.partition("://")
    theirs = split_host(rest) if sep and scheme.lower() in ("http", "https") else None
    ours = split_host(headers.get("Host", ""))
    if theirs is None or ours is None:
        return f"Origin {origin[:100]}"
    their_port = theirs[1] if theirs[1] is not None else (443 if scheme.lower() == "https" else 80)
    if theirs[0] != ours[0] or (ours[1] is not None and their_port != ours[1]):
        return f"Origin {origin[:100]}"
    return None


class SessionStore:
    """Random session ids, each mapped to its expiry: what the cookie holds instead of the token.

    A stolen cookie is worth one session until it expires, not the token itself; and restarting
    the server ends every session.
    """

    def __init__(self, ttl_s: float = SESSION_TTL_S, *, max_sessions: int = MAX_SESSIONS,
                 clock: Callable[[], float] = time.monotonic):
        if not ttl_s > 0:
            raise ValueError(f"session ttl_s must be > 0 seconds, got {ttl_s!r}")
        self.ttl_s = float(ttl_s)
        self.max_sessions = int(max_sessions)
        self._clock = clock
        self._expiry: dict[str, float] = {}  # insertion order: the oldest first

    def __len__(self) -> int:
        return len(self._expiry)

    def new(self) -> str:
        now = self._clock()
        self._drop_expired(now)
        while len(self._expiry) >= self.max_sessions:
            del self._expiry[next(iter(self._expiry))]
        sid = secrets.token_urlsafe(32)
        self._expiry[sid] = now + self.ttl_s
        return sid

    def valid(self, sid: str | None) -> bool:
        if not sid:
            return False
        expiry = self._expiry.get(sid)
        if expiry is None:
            return False
        if self._clock() >= expiry:
            del self._expiry[sid]
            return False
        return True

    def _drop_expired(self, now: float) -> None:
        for sid in [s for s, e in self._expiry.items() if e <= now]:
            del self._expiry[sid]

    def __repr__(self) -> str:  # never show the ids
        return f"SessionStore(sessions={len(self._expiry)}, ttl_s={self.ttl_s})"


class AccessPolicy:
    """Decides, per request, whether the token is needed and whether the request offers it."""

    def __init__(self, host: str, token: str | None, *, sessions: SessionStore | None = None):
        self.loopback_bound = is_loopback_host(host)
        if not self.loopback_bound and token is None:
            raise DashboardAuthError(
                f"refusing to serve the dashboard on {host or 'every interface'} without a token: set "
                f"{TOKEN_ENV} (or pass a token file), or bind to 127.0.0.1"
            )
        self._token = token
        self.sessions = sessions if sessions is not None else SessionStore()

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def needs_token(self, peer: str | None, headers, method: str = "GET") -> bool:
        """Only a local, unproxied peer that reads is exempt.

        A request relayed by a reverse proxy on this host arrives from loopback but carries a
        forwarding header: it needs the token whenever one is configured (a loopback-bound server
        without a token leaves access control to that proxy). A request that changes something
        needs it from loopback too: any page in a local browser can make one.
        """
        if not is_loopback_address(peer):
            return True
        if self._token is None:
            return False
        return method.upper() not in SAFE_METHODS or any(h in headers for h in FORWARD_HEADERS)

    def allows(self, peer: str | None, headers, query_token: str | None, session_id: str | None,
               method: str = "GET") -> bool:
        if not self.needs_token(peer, headers, method):
            return True
        if self._token is None:
            return False
        if self.sessions.valid(session_id):
            return True
        offered = (bearer_token(headers.get("Authorization")), query_token)
        return any(token_matches(self._token, t) for t in offered)

    def offered_token_matches(self, offered: str | None) -> bool:
        return self._token is not None and token_matches(self._token, offered)

    def new_session(self) -> str:
        """A fresh session id for the cookie (only after the token was offered)."""
        assert self._token is not None
        return self.sessions.new()

    def __repr__(self) -> str:  # never show the token
        return f"AccessPolicy(loopback_bound={self.loopback_bound}, token={'set' if self._token else 'none'})"
