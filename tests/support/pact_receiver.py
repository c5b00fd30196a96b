"""A customer's PACT host for tests: the events endpoint the plant's server answers requests and sends
notices to, over HTTPS, behind its own Action Authenticate (client credentials with HTTP Basic,
OpenID discovery of the token endpoint), as PACT v3 asks of any host.

It records every CloudEvent it accepts; ``wait_for`` waits (with a deadline) until they satisfy a
condition. ``refuse_next`` answers the next event posts 503 (a customer not reachable now), and
``expire_tokens`` forgets the tokens it issued (the next post gets 401).
"""

from __future__ import annotations

import asyncio
import base64
import secrets

from aiohttp import web

from twin.pact_api.delivery import Recipient


class Receiver:
    def __init__(self, login: str = "plant-1", secret: str = "customer-side-secret-0123", discovery: bool = True):
        self.login, self.secret, self.discovery = login, secret, discovery
        self.events: list[dict] = []
        self.statuses: list[int] = []  # the status of every event post, in order
        self.token_requests = 0
        self.refuse_next = 0
        self._tokens: set[str] = set()
        self._changed: asyncio.Condition | None = None

    def expire_tokens(self) -> None:
        self._tokens.clear()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/oauth/token", self._token)
        app.router.add_post("/3/events", self._event)
        if self.discovery:
            app.router.add_get("/.well-known/openid-configuration", self._openid)
        return app

    def recipient(self, base: str, client_id: str) -> Recipient:
        """How the plant reaches this host, as a clients file's ``events:`` block would say."""
        return Recipient(client_id, f"{base}/3/events", base, None if self.discovery else f"{base}/oauth/token",
                         self.login, self.secret)

    async def _openid(self, request: web.Request) -> web.Response:
        return web.json_response({"issuer": f"https://{request.host}",
                                  "token_endpoint": f"https://{request.host}/oauth/token"})

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        expected = "Basic " + base64.b64encode(f"{self.login}:{self.secret}".encode()).decode()
        if request.headers.get("Authorization") != expected or form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "invalid_client", "error_description": "bad credentials"}, status=401)
        token = secrets.token_urlsafe(16)
        self._tokens.add(token)
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    async def _event(self, request: web.Request) -> web.Response:
        status = await self._accept(request)
        self.statuses.append(status)
        return web.Response(status=status)

    async def _accept(self, request: web.Request) -> int:
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer ") or auth[7:] not in self._tokens:
            return 401
        if self.refuse_next > 0:
            self.refuse_next -= 1
            return 503
        if request.content_type != "application/cloudevents+json":
            return 400
        event = await request.json()
        async with self._condition():
            self.events.append(event)
            self._changed.notify_all()
        return 200

    def _condition(self) -> asyncio.Condition:
        if self._changed is None:
            self._changed = asyncio.Condition()
        return self._changed

    async def wait_for(self, predicate, timeout: float = 15.0) -> list[dict]:
        """The events received, once ``predicate(events)`` holds; TimeoutError after ``timeout`` s."""
        cond = self._condition()
        async with cond:
            await asyncio.wait_for(cond.wait_for(lambda: predicate(self.events)), timeout)
            return list(self.events)

    def of_type(self, suffix: str) -> list[dict]:
        return [e for e in self.events if e["type"].endswith(suffix)]


class ThreadedReceiver:
    """A Receiver served over HTTPS from an event loop in a thread of its own, for tests whose plant
    runs in another process: ``base`` is its URL, ``wait_for`` blocks (with a deadline)."""

    def __init__(self, receiver: Receiver, cert, key) -> None:
        import threading

        from twin.pact_api.app import server_ssl, start

        self.receiver = receiver
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

        async def up():
            return await start(receiver.app(), "127.0.0.1", 0, server_ssl(cert, key))

        self._runner, port = asyncio.run_coroutine_threadsafe(up(), self.loop).result(30)
        self.base = f"https://127.0.0.1:{port}"

    def wait_for(self, predicate, timeout: float = 30.0) -> list[dict]:
        return asyncio.run_coroutine_threadsafe(self.receiver.wait_for(predicate, timeout), self.loop).result(timeout + 5)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()
