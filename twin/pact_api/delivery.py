"""Events the plant sends to its customers' host systems: where to, with which credentials, and how
(PACT Technical Specifications v3.0, ``spec/v3/index.md`` "Authentication Flow" and
``spec/v3/openapi.yaml`` ``/3/events``, RequestFulfilledEvent, RequestRejectedEvent, PublishedEvent).

A customer's host system is another PACT host: the plant is its client. For each event the courier
gets an access token the spec's way (the token endpoint from ``$auth-base-url$/.well-known/
openid-configuration``, else ``$auth-base-url$/auth/token``; OAuth 2.0 client credentials with HTTP
Basic), then POSTs the CloudEvent (structured mode, ``application/cloudevents+json``) with the bearer
token. A token is reused until shortly before it expires, dropped on a 401.

Retries follow the spec's SHOULD: exponential backoff (1 s, 2 s, 4 s ... at most an hour apart)
while the customer cannot be reached (connection errors, 5xx, 401/408/429), abandoning after
72 hours; any other 4xx is the customer refusing the event, and a 400 or 401 of its token endpoint
refuses the plant's credentials: neither is retried. Every outcome is logged
as one line (type, client, status), never a token or secret.

The ``events:`` block of a client in the ``--clients`` file::

    events:
      url: https://pact.customer.example/3/events     # HTTPS only
      auth_base_url: https://id.customer.example       # optional: default, the url's scheme and host
      token_url: https://id.customer.example/token     # optional: default, found as above
      client_id: plant-1                               # the plant's credentials at the customer
      secret_env: CUSTOMER_EVENTS_SECRET               # or secret: ... (the environment is better)
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

import aiohttp
import yaml

log = logging.getLogger("twin.pact_api.events")

GIVE_UP_S = 72 * 3600.0
_KEYS = {"url", "auth_base_url", "token_url", "client_id", "secret", "secret_env"}
#: statuses that say "not now" rather than "no": retried
_RETRY = {401, 408, 429}


class RecipientError(ValueError):
    """An ``events:`` block that cannot be used (names the file, the client and the field)."""


@dataclass(frozen=True)
class Recipient:
    """A customer's events endpoint and the plant's credentials at the customer's host."""

    client_id: str  # the customer, as a client of this server
    url: str
    auth_base_url: str
    token_url: str | None
    login: str = field(repr=False)
    secret: str = field(repr=False)


def _https(value, where: str) -> str:
    if not isinstance(value, str) or urlsplit(value).scheme != "https" or not urlsplit(value).hostname:
        raise RecipientError(f"{where}: expected an https:// URL, got {value!r}")
    return value.rstrip("/") if where.endswith("auth_base_url") else value


def parse_recipient(client_id: str, block, where: str, env: Mapping[str, str]) -> Recipient:
    if not isinstance(block, dict):
        raise RecipientError(f"{where}: expected a mapping (url, client_id, secret_env)")
    if unknown := sorted(set(block) - _KEYS):
        raise RecipientError(f"{where}: unknown field {unknown[0]!r} (expected {', '.join(sorted(_KEYS))})")
    url = _https(block.get("url"), f"{where}.url")
    base = _https(block["auth_base_url"], f"{where}.auth_base_url") if "auth_base_url" in block else \
        "https://" + urlsplit(url).netloc
    token_url = _https(block["token_url"], f"{where}.token_url") if "token_url" in block else None
    login = block.get("client_id")
    if not isinstance(login, str) or not login or ":" in login:
        raise RecipientError(f"{where}.client_id: expected the plant's client id at the customer (no ':')")
    if ("secret" in block) == ("secret_env" in block):
        raise RecipientError(f"{where}: give exactly one of secret or secret_env")
    if "secret_env" in block:
        secret = env.get(str(block["secret_env"]))
        if not secret:
            raise RecipientError(f"{where}.secret_env: the environment variable {block['secret_env']!r} is not set")
    else:
        secret = block["secret"]
        if not isinstance(secret, str) or not secret:
            raise RecipientError(f"{where}.secret: expected a non-empty string")
    return Recipient(client_id, url, base, token_url, login, secret)


def load_recipients(clients_file: Path | None, env: Mapping[str, str]) -> dict[str, Recipient]:
    """The ``events:`` blocks of a clients file, by client id ({} without a file)."""
    if clients_file is None:
        return {}
    path = Path(clients_file)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise RecipientError(f"{path}: cannot read the clients file: {exc}") from None
    out = {}
    for entry in ((doc or {}).get("clients") or []) if isinstance(doc, dict) else []:
        if isinstance(entry, dict) and "events" in entry:
            cid = str(entry.get("client_id"))
            out[cid] = parse_recipient(cid, entry["events"], f"{path}: client {cid!r}.events", env)
    return out


class Delivery(Exception):
    """One attempt's failure: ``retry`` tells a customer not reachable now from one refusing."""

    def __init__(self, reason: str, retry: bool) -> None:
        super().__init__(reason)
        self.retry = retry


def _basic(login: str, secret: str) -> str:
    # RFC 6749 section 2.3.1: each part form-urlencoded before the Basic encoding
    raw = f"{quote(login, safe='')}:{quote(secret, safe='')}".encode()
    return "Basic " + base64.b64encode(raw).decode()


class Courier:
    """Sends CloudEvents to recipients, with tokens and retries; ``ssl_ctx`` verifies their TLS
    (None: the system's trusted CAs)."""

    def __init__(self, ssl_ctx: ssl.SSLContext | None = None, *, first_retry_s: float = 1.0,
                 max_retry_s: float = 3600.0, give_up_s: float = GIVE_UP_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ssl_ctx = ssl_ctx if ssl_ctx is not None else ssl.create_default_context()
        self.first_retry_s, self.max_retry_s, self.give_up_s = first_retry_s, max_retry_s, give_up_s
        self._clock = clock
        self._session: aiohttp.ClientSession | None = None
        self._tokens: dict[str, tuple[str, float]] = {}
        self.stats = {"delivered": 0, "refused": 0, "abandoned": 0, "attempts": 0}

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self._session

    async def send(self, to: Recipient, event: dict) -> bool:
        """Deliver ``event``, retrying as the module says; True once the customer accepted it."""
        started, wait = self._clock(), self.first_retry_s
        while True:
            self.stats["attempts"] += 1
            try:
                status = await self._attempt(to, event)
            except Delivery as exc:
                if not exc.retry:
                    self.stats["refused"] += 1
                    log.warning("event %s to client %s refused: %s", event["type"], to.client_id, exc)
                    return False
                if self._clock() - started + wait > self.give_up_s:
                    self.stats["abandoned"] += 1
                    log.warning("event %s to client %s abandoned after %.0f s: %s", event["type"], to.client_id,
                                self._clock() - started, exc)
                    return False
                log.info("event %s to client %s not delivered (%s); retry in %.0f s", event["type"], to.client_id,
                         exc, wait)
                await asyncio.sleep(wait)
                wait = min(wait * 2, self.max_retry_s)
                continue
            self.stats["delivered"] += 1
            log.info("event %s to client %s delivered (%d)", event["type"], to.client_id, status)
            return True

    async def _attempt(self, to: Recipient, event: dict) -> int:
        token = await self._token(to)
        headers = {"Content-Type": "application/cloudevents+json; charset=UTF-8", "Authorization": f"Bearer {token}"}
        try:
            async with self._http().post(to.url, data=json.dumps(event), headers=headers, ssl=self.ssl_ctx) as resp:
                await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Delivery(f"{to.url}: {type(exc).__name__}: {exc}", retry=True) from None
        if 200 <= status < 300:
            return status
        if status == 401:
            self._tokens.pop(to.client_id, None)  # expired or revoked: a new one next time
        raise Delivery(f"{to.url} answered {status}", retry=status in _RETRY or status >= 500)

    async def _token(self, to: Recipient) -> str:
        held = self._tokens.get(to.client_id)
        if held and held[1] > self._clock():
            return held[0]
        url = to.token_url or await self._discover(to)
        try:
            async with self._http().post(url, data="grant_type=client_credentials", ssl=self.ssl_ctx, headers={
                    "Authorization": _basic(to.login, to.secret),
                    "Content-Type": "application/x-www-form-urlencoded"}) as resp:
                status, body = resp.status, await resp.read()
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise Delivery(f"{url}: {type(exc).__name__}: {exc}", retry=True) from None
        if status in (400, 401):  # invalid_client: the customer does not accept the plant's credentials
            raise Delivery(f"token endpoint {url} refused the plant's credentials ({status})", retry=False)
        if status != 200:
            raise Delivery(f"token endpoint {url} answered {status}", retry=status in _RETRY or status >= 500)
        try:
            doc = json.loads(body)
            token, ttl = doc["access_token"], float(doc.get("expires_in") or 300)
        except (ValueError, KeyError, TypeError):
            raise Delivery(f"token endpoint {url}: no access_token in its answer", retry=True) from None
        self._tokens[to.client_id] = (str(token), self._clock() + max(0.0, ttl - 30.0))
        return str(token)

    async def _discover(self, to: Recipient) -> str:
        """The token endpoint from the OpenID Provider Configuration Document, else /auth/token."""
        try:
            async with self._http().get(f"{to.auth_base_url}/.well-known/openid-configuration",
                                        ssl=self.ssl_ctx) as resp:
                if resp.status == 200:
                    endpoint = (await resp.json(content_type=None)).get("token_endpoint")
                    if isinstance(endpoint, str) and urlsplit(endpoint).scheme == "https":
                        return endpoint
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError, AttributeError):
            pass  # no discovery document: the spec's default below
        return f"{to.auth_base_url}/auth/token"
