"""The PACT v3 host system as an aiohttp application, served over HTTPS only.

Routes (PACT Technical Specifications v3.0, ``spec/v3/index.md`` "Authentication Flow" and
``spec/v3/openapi.yaml``): ``POST /auth/token`` (Action Authenticate),
``GET /.well-known/openid-configuration`` (the OpenID Provider Configuration Document the spec asks
hosts to offer, naming the ``token_endpoint``), ``GET /3/footprints`` (ListFootprints),
``GET /3/footprints/{id}`` (GetFootprint), ``POST /3/events`` (Action Events, handled by
twin/pact_api/events.py) and ``GET /health``.

Middlewares, outermost first: one access-log line per request (method, path, status, client id,
milliseconds; never a header, query value or body, so neither secrets nor tokens reach a log), the
spec's error shape for every failure, then bearer authentication of ``/3/...`` and rate limiting
(per client id once authenticated, per peer address before).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

from aiohttp import web

from .auth import CLIENT, CLIENT_ID, ClientRegistry, TokenStore, bearer_token, token_endpoint
from .errors import PactError, bad_request, error_middleware
from .footprints_api import PAGE_MAX, FootprintsApi
from .ratelimit import RateLimiter

access_log = logging.getLogger("twin.pact_api.access")
log = logging.getLogger("twin.pact_api")

MAX_BODY_BYTES = 1 << 20
EVENT_TYPES = ("application/cloudevents+json", "application/json")

REPO = web.AppKey("repo", object)
TOKENS = web.AppKey("tokens", TokenStore)
LIMITER = web.AppKey("limiter", RateLimiter)


def _base_url(request: web.Request) -> str:
    return f"https://{request.headers.get('Host') or request.host}"


@web.middleware
async def _access_log(request: web.Request, handler) -> web.StreamResponse:
    t0 = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    finally:
        access_log.info("%s %s %d client=%s %.1f ms", request.method, request.path[:200], status,
                        request.get(CLIENT_ID, "-"), (time.perf_counter() - t0) * 1000)


def _take(limiter: RateLimiter, key: str) -> None:
    wait = limiter.take(key)
    if wait > 0:
        raise PactError("TooManyRequests", f"rate limit of {limiter.rate:g} requests/s exceeded; retry later",
                        {"Retry-After": limiter.retry_after(wait)})


@web.middleware
async def _guard(request: web.Request, handler) -> web.StreamResponse:
    """Bearer authentication of the API's actions, and the rate limit of every request: the client's
    bucket once authenticated, else the peer's (guessing tokens spends the guesser's own bucket)."""
    limiter = request.app[LIMITER]
    key = f"peer:{request.remote}"
    if request.path.startswith("/3/"):
        try:
            client = request.app[TOKENS].resolve(bearer_token(request.headers.get("Authorization")))
        except PactError:
            _take(limiter, key)
            raise
        request[CLIENT] = client
        request[CLIENT_ID] = key = client.client_id
    _take(limiter, key)
    return await handler(request)


def _store_problem(path: Path) -> str | None:
    """Why the store's footprints cannot be read (None: they can), through a read-only connection."""
    try:
        db = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True, timeout=2.0)
        try:
            db.execute("SELECT 1 FROM footprint LIMIT 1").fetchall()
        finally:
            db.close()
    except sqlite3.Error as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


async def _health(request: web.Request) -> web.Response:
    """Up, and the store's footprints readable (503 naming why not); no figures without a token."""
    path = getattr(request.app[REPO], "path", None)
    problem = None if path is None else await asyncio.to_thread(_store_problem, Path(path))
    if problem:
        return web.json_response({"status": "unavailable", "store": problem}, status=503)
    return web.json_response({"status": "ok"})


async def _openid(request: web.Request) -> web.Response:
    """The discovery document: what a PACT client reads from it is ``token_endpoint``. Only the client
    credentials grant is offered (no authorization endpoint, no ID tokens), so nothing else is claimed."""
    base = _base_url(request)
    return web.json_response({
        "issuer": base,
        "token_endpoint": f"{base}/auth/token",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    })


async def read_json_body(request: web.Request) -> dict:
    """The request's JSON object, or BadRequest (not JSON, not an object, too large)."""
    if request.content_type not in EVENT_TYPES:
        raise bad_request(f"expected Content-Type application/cloudevents+json, got {request.content_type}")
    if (request.content_length or 0) > MAX_BODY_BYTES:
        raise bad_request(f"the body is larger than {MAX_BODY_BYTES} bytes")
    raw = await request.content.read(MAX_BODY_BYTES + 1)
    if len(raw) > MAX_BODY_BYTES:
        raise bad_request(f"the body is larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad_request("the body is not JSON") from None
    if not isinstance(body, dict):
        raise bad_request("the body is not a JSON object (a CloudEvent)")
    return body


def _events_route(handle_event):
    async def events(request: web.Request) -> web.Response:
        body = await read_json_body(request)
        error = await handle_event(body, request[CLIENT], request.app[REPO], None)
        if error is not None:
            raise error
        return web.Response(status=200)
    return events


def create_app(repo, registry: ClientRegistry, *, token_ttl_s: float = 3600.0, rate: float = 20.0, burst: int = 100,
               clock: Callable[[], float] = time.monotonic, handle_event=None,
               page_max: int = PAGE_MAX) -> web.Application:
    """The application over ``repo`` (a FootprintRepository) for the clients of ``registry``.

    ``await handle_event(body, client, repo, post)`` answers ``POST /3/events``: None when the event
    is accepted (200, empty body), else the PactError to answer (default:
    ``events.handle_event``, which has no customer endpoints to answer requests at; the command
    passes an ``events.EventHandler`` with the clients file's ``events:`` blocks)."""
    if handle_event is None:
        from .events import handle_event
    app = web.Application(middlewares=[_access_log, error_middleware, _guard], client_max_size=MAX_BODY_BYTES)
    tokens = TokenStore(registry, token_ttl_s, clock)
    app[REPO], app[TOKENS], app[LIMITER] = repo, tokens, RateLimiter(rate, burst, clock)
    api = FootprintsApi(repo, page_max)
    app.router.add_post("/auth/token", token_endpoint(registry, tokens))
    app.router.add_get("/.well-known/openid-configuration", _openid)
    app.router.add_get("/health", _health)
    app.router.add_get("/3/footprints", api.list)
    app.router.add_get("/3/footprints/{id}", api.get)
    app.router.add_post("/3/events", _events_route(handle_event))
    return app


def server_ssl(cert: Path, key: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context from PEM files; ValueError naming the file that cannot be used."""
    for what, path in (("certificate", cert), ("key", key)):
        if not Path(path).is_file():
            raise ValueError(f"{path}: no such TLS {what} file")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except ssl.SSLError as exc:
        raise ValueError(f"{cert}, {key}: not a usable TLS certificate and key: {exc.reason or exc}") from None
    except OSError as exc:
        raise ValueError(f"{cert}, {key}: cannot read: {exc.strerror or exc}") from None
    return ctx


async def start(app: web.Application, host: str, port: int, ssl_ctx: ssl.SSLContext) -> tuple[web.AppRunner, int]:
    """Serve ``app`` over HTTPS on host:port (0: a free port); returns the runner and the bound port.
    There is no plain-HTTP listener: a request without TLS fails its handshake."""
    if ssl_ctx is None:
        raise ValueError("the PACT API is served over HTTPS only: a TLS certificate and key are required")
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_ctx, reuse_address=True)
    try:
        await site.start()
    except OSError:
        await runner.cleanup()
        raise
    bound = runner.addresses[0][1] if runner.addresses else port
    return runner, bound


async def serve_forever(app: web.Application, host: str, port: int, ssl_ctx: ssl.SSLContext,
                        started: Callable[[int], None], stop: asyncio.Event) -> None:
    runner, bound = await start(app, host, port, ssl_ctx)
    try:
        started(bound)
        await stop.wait()
    finally:
        await runner.cleanup()
