"""The operators' live dashboard: a web page fed by server-sent events, plus ``/health`` and ``/metrics``.

The server does not know how its figures are produced: it calls ``state()`` for the state document
(see README.md beside this file) and ``health()`` for the health document, and pushes the state to
every open page each ``push_interval_s``. One broadcaster calls ``state()`` once per push for all
pages, and a slow page only ever gets the newest document (older ones are replaced, never queued),
so a stalled browser cannot hold the twin back or make the others lag.

Server-sent events rather than WebSocket: the page only listens, SSE reconnects by itself, and it
passes through the HTTP proxies found on plant networks.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from twin.dashboard import auth
from twin.dashboard.auth import (
    COOKIE_NAME,
    SESSION_TTL_S,
    AccessPolicy,
    HostAllowList,
    SessionStore,
)
from twin.dashboard.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from twin.dashboard.metrics import render_metrics

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
#: The page reconnects this long after a dropped stream (the browser's EventSource does it).
SSE_RETRY_MS = 1000
_SECURITY_HEADERS = {
    # the page loads nothing from elsewhere: plants are often offline, and it keeps a CDN out of the loop
    "Content-Security-Policy": ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
                                "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"),
    "X-Content-Type-Options": "nosniff",
    # the token may sit in the first URL; never hand it on in a Referer
    "Referrer-Policy": "no-referrer",
}


def _finite(obj):
    """The document with NaN and infinities replaced by None: JSON has no such numbers."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_finite(v) for v in obj]
    return obj


def to_json_text(doc: Any) -> str:
    try:
        return json.dumps(doc, separators=(",", ":"), allow_nan=False, default=str)
    except ValueError:
        return json.dumps(_finite(doc), separators=(",", ":"), allow_nan=False, default=str)


class _QuietAccessLogger(AbstractAccessLogger):
    """Access lines without the query string: ``?token=`` must never reach a log."""

    def log(self, request, response, time):  # noqa: A002 (aiohttp's signature)
        self.logger.debug("%s %s %s %s %.1f ms", request.remote, request.method, request.path,
                          response.status, time * 1000.0)


class Dashboard:
    """The live dashboard server.

    ``state`` returns the state document (cheap: it is called once per push), ``health`` the health
    document (connections, spool, sample counts), ``actions`` the demo's operator actions by name,
    e.g. ``{"force_down": f(unit: str, seconds: float)}`` (sync or async). Binding beyond loopback
    needs a ``token`` (``auth.load_token()`` reads it from the environment or a file); with one set,
    actions need it from every peer. ``allowed_hosts`` adds names (``name`` or ``name:port``) the
    page may be addressed by besides the bound address and the loopback names (``HostAllowList``).
    ``ssl_context`` serves HTTPS (the session cookie is then marked Secure).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 8050, token: str | None = None,
                 state: Callable[[], dict], health: Callable[[], dict],
                 actions: dict[str, Callable[..., Any]] | None = None, push_interval_s: float = 0.5,
                 allowed_hosts: Iterable[str] = (), session_ttl_s: float = SESSION_TTL_S,
                 ssl_context: ssl.SSLContext | None = None):
        if not push_interval_s > 0:
            raise ValueError(f"push_interval_s must be > 0 seconds, got {push_interval_s!r}")
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"port must be 0..65535, got {port!r}")
        self.host, self.port = host, int(port)
        # both raise DashboardAuthError: bound beyond loopback without a token, a malformed host name
        self.policy = AccessPolicy(host, token, sessions=SessionStore(session_ttl_s))
        self.hosts = HostAllowList(host, self.port, allowed_hosts)
        self.ssl_context = ssl_context
        self._state, self._health = state, health
        self.actions = dict(actions or {})
        self.push_interval_s = float(push_interval_s)
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._pusher: asyncio.Task | None = None
        self._clients: set[asyncio.Queue] = set()
        self._closing = asyncio.Event()
        self._seq = 0
        self._latest: tuple[int, str] | None = None
        self.events_sent = 0
        self.state_errors = 0
        self.refused = 0
        self.misdirected = 0

    def __repr__(self) -> str:
        return f"Dashboard(url={self.url or None!r}, {self.policy!r})"

    # --- life cycle ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and serve; with ``port=0`` the system picks a free port (see ``url``)."""
        app = web.Application(middlewares=[self._guard])
        app.router.add_get("/", self._index)
        app.router.add_get("/events", self._events)
        app.router.add_get("/api/state", self._api_state)
        app.router.add_get("/health", self._health_route)
        app.router.add_get("/metrics", self._metrics)
        app.router.add_post("/api/actions/{name}", self._action)
        app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
        self._runner = web.AppRunner(app, access_log_class=_QuietAccessLogger, access_log=log,
                                     handle_signals=False, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True, ssl_context=self.ssl_context)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise OSError(exc.errno, f"cannot serve the dashboard on {self.host}:{self.port}: {exc.strerror}") from None
        bound = self._runner.addresses[0]
        self.port = int(bound[1])
        self.hosts.set_port(self.port)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.url = f"{'https' if self.ssl_context else 'http'}://{shown}:{self.port}"
        self._closing.clear()
        self._pusher = asyncio.create_task(self._push_loop(), name="dashboard-push")
        log.info("dashboard on %s (%s)", self.url, "token required off loopback and for actions"
                 if self.policy.has_token else "loopback only")

    async def stop(self) -> None:
        """Close every event stream, then the server."""
        self._closing.set()
        for q in list(self._clients):
            self._offer(q, None)
        if self._pusher is not None:
            self._pusher.cancel()
            await asyncio.gather(self._pusher, return_exceptions=True)
            self._pusher = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Dashboard:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def stats(self) -> dict:
        return {"clients": len(self._clients), "events_sent": self.events_sent,
                "state_errors": self.state_errors, "refused": self.refused, "misdirected": self.misdirected}

    # --- state --------------------------------------------------------------------------------------

    def _call_state(self) -> dict | None:
        try:
            doc = self._state()
        except Exception:
            self.state_errors += 1
            # the first failure with its traceback, then one line per hundred
            if self.state_errors == 1:
                log.exception("dashboard: the state provider failed")
            elif self.state_errors % 100 == 0:
                log.error("dashboard: the state provider failed %d times", self.state_errors)
            return None
        if not isinstance(doc, dict):
            self.state_errors += 1
            log.error("dashboard: the state provider returned %s, not a dict", type(doc).__name__)
            return None
        return doc

    def _call_health(self) -> dict | None:
        try:
            doc = self._health()
        except Exception:
            log.exception("dashboard: the health provider failed")
            return None
        return doc if isinstance(doc, dict) else None

    def _next_event(self) -> tuple[int, str] | None:
        doc = self._call_state()
        if doc is None:
            return None
        self._seq += 1
        self._latest = (self._seq, to_json_text(doc))
        return self._latest

    @staticmethod
    def _offer(q: asyncio.Queue, item) -> None:
        """Put the newest item, replacing one the page has not taken yet."""
        if q.full():
            try:
                q.get_nowait()
            except asyncio.QueueEmpty:
                pass
        q.put_nowait(item)

    async def _push_loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not self._closing.is_set():
            next_at += self.push_interval_s
            if self._clients:
                event = self._next_event()
                if event is not None:
                    for q in list(self._clients):
                        self._offer(q, event)
            # a fixed cadence, not interval + work: the page stays at most one interval behind
            now = loop.time()
            if next_at < now:
                next_at = now
            await asyncio.sleep(next_at - now)

    # --- access ------------------------------------------------------------------------------------

    @web.middleware
    async def _guard(self, request: web.Request, handler):
        refusal = self._refusal(request)
        if refusal is not None:
            resp: web.StreamResponse = refusal
        elif (request.method == "GET" and request.path == "/"
              and self.policy.offered_token_matches(request.query.get("token"))):
            # the token leaves the address bar; the cookie gets a session id, never the token itself
            rest = [(k, v) for k, v in request.query.items() if k != "token"]
            resp = web.Response(status=303, headers={"Location": "/" + ("?" + urlencode(rest) if rest else "")})
            resp.set_cookie(COOKIE_NAME, self.policy.new_session(), httponly=True, samesite="Strict", path="/",
                            secure=auth.served_over_tls(request.secure, request.remote, request.headers),
                            max_age=int(self.policy.sessions.ttl_s))
        else:
            try:
                resp = await handler(request)
            except web.HTTPException as exc:
                resp = exc
        for k, v in _SECURITY_HEADERS.items():
            resp.headers.setdefault(k, v)
        if isinstance(resp, web.HTTPException):
            raise resp
        return resp

    def _refusal(self, request: web.Request) -> web.Response | None:
        """The answer to a request that must not reach a route, or None.

        In this order: a Host that does not name this server (421: a DNS rebinding page gets
        nothing, not even whether a token is needed), a cross-origin action (403), no valid token
        where one is needed (401).
        """
        host = request.headers.get("Host")
        if not self.hosts.allows(host, secure=request.secure):
            self.misdirected += 1
            if self.misdirected <= 10 or self.misdirected % 100 == 0:
                log.warning("dashboard: refused %s %s from %s addressed to Host %r, not a name of this server "
                            "(%d so far; allow a name with --dashboard-allowed-host)", request.method,
                            request.path, request.remote, (host or "")[:100], self.misdirected)
            return web.json_response({"error": "this server does not answer to that Host name (421 Misdirected "
                                               "Request); the operator can allow it with --dashboard-allowed-host"},
                                     status=421)
        if request.method not in auth.SAFE_METHODS:
            why = auth.cross_origin(request.headers)
            if why is not None:
                log.warning("dashboard: refused %s %s from %s: %s", request.method, request.path, request.remote, why)
                return web.json_response({"error": f"cross-origin action refused ({why})"}, status=403)
        if not self.policy.allows(request.remote, request.headers, request.query.get("token"),
                                  request.cookies.get(COOKIE_NAME), request.method):
            self.refused += 1
            if self.refused <= 10 or self.refused % 100 == 0:  # a scanner must not flood the log
                log.warning("dashboard: refused %s %s from %s (no valid token; %d refused so far)",
                            request.method, request.path, request.remote, self.refused)
            return web.json_response({"error": "a valid token is required: send 'Authorization: Bearer <token>' "
                                               "or open the page once with ?token=<token>"},
                                     status=401, headers={"WWW-Authenticate": 'Bearer realm="factory-twin"'})
        return None

    # --- routes ------------------------------------------------------------------------------------

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    async def _api_state(self, request: web.Request) -> web.Response:
        doc = self._call_state()
        if doc is None:
            return web.json_response({"error": "the state provider failed; see the server log"}, status=503)
        return web.Response(text=to_json_text(doc), content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def _health_route(self, request: web.Request) -> web.Response:
        doc = self._call_health()
        if doc is None:
            return web.json_response({"status": "error", "error": "the health provider failed; see the server log",
                                      "dashboard": self.stats()}, status=503)
        # 200 even when a source is down: the twin is doing its job (recording the gap), and a
        # supervisor restarting it would lose the shift so far; "status" tells monitoring the rest
        body = {**doc, "dashboard": self.stats()}
        return web.Response(text=to_json_text(body), content_type="application/json",
                            headers={"Cache-Control": "no-store"})

    async def _metrics(self, request: web.Request) -> web.Response:
        text = render_metrics(self._call_state(), self._call_health(), self.stats())
        return web.Response(body=text.encode("utf-8"), headers={"Content-Type": METRICS_CONTENT_TYPE})

    async def _events(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
        })
        for k, v in _SECURITY_HEADERS.items():
            resp.headers[k] = v
        await resp.prepare(request)
        q: asyncio.Queue = asyncio.Queue(maxsize=1)
        first = self._next_event()  # the page draws at once instead of waiting for the next push
        if first is not None:
            q.put_nowait(first)
        self._clients.add(q)
        try:
            await resp.write(f"retry: {SSE_RETRY_MS}\n\n".encode())
            while True:
                item = await q.get()
                if item is None:
                    break
                seq, text = item
                await resp.write(f"id: {seq}\nevent: state\ndata: {text}\n\n".encode())
                self.events_sent += 1
        except ConnectionResetError:
            pass  # the page went away
        finally:
            self._clients.discard(q)
        return resp

    async def _action(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        action = self.actions.get(name)
        if action is None:
            return web.json_response({"error": f"no action {name!r}; this server offers {sorted(self.actions) or 'none'}"},
                                     status=404)
        # a cross-site form cannot send JSON without a CORS preflight, which this server never grants
        # (and the guard has refused a foreign Origin already)
        if request.content_type != "application/json":
            return web.json_response({"error": "send the arguments as a JSON object (Content-Type: application/json)"},
                                     status=415)
        try:
            args = await request.json()
        except ValueError as exc:
            return web.json_response({"error": f"the body is not JSON: {exc}"}, status=400)
        if not isinstance(args, dict):
            return web.json_response({"error": "the body must be a JSON object of named arguments"}, status=400)
        try:
            inspect.signature(action).bind(**args)
        except TypeError as exc:
            return web.json_response({"error": f"{name}: {exc}"}, status=400)
        try:
            result = action(**args)
            if inspect.isawaitable(result):
                result = await result
        except (ValueError, KeyError) as exc:
            return web.json_response({"error": f"{name}: {exc}"}, status=400)
        log.info("dashboard: action %s(%s) from %s", name, ", ".join(f"{k}={v!r}" for k, v in args.items()),
                 request.remote)
        return web.Response(text=to_json_text({"ok": True, "action": name, "result": result}),
                            content_type="application/json")
