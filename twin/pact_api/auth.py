"""Who may call the PACT API and what each customer sees: client credentials, access tokens.

Action Authenticate is the OAuth 2.0 client credentials grant (RFC 6749 section 4.4, as PACT v3
"Authentication Flow" asks): the client authenticates with HTTP Basic (section 2.3.1; the form body's
``client_id``/``client_secret`` are accepted too, never both) and gets an opaque bearer token
(RFC 6750) that expires after ``ttl_s``. Errors of this action are OAuth's (section 5.2:
``{"error": "invalid_client", ...}``), not the API's ``{"code", "message"}``.

Secrets come from ``PACT_CLIENT_ID``/``PACT_CLIENT_SECRET`` (one client that sees every footprint)
or a clients file (several customers, each seeing the footprints of the product ids or company ids
shared with it). They are kept only as salted PBKDF2 digests, compared in constant time; tokens only
as SHA-256 digests. Neither is ever logged. A token that expired is told apart from one never issued
(TokenExpired 401 versus BadRequest 400) for a day after it expired. A missing, malformed or unknown
token is BadRequest 400: the spec's error table gives 401 to TokenExpired alone, and the official
conformance tool (V3 test cases 6, 7 and 16) expects code BadRequest for an invalid token.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, unquote_plus

import yaml
from aiohttp import web

from .errors import PactError

log = logging.getLogger("twin.pact_api")

ID_ENV, SECRET_ENV = "PACT_CLIENT_ID", "PACT_CLIENT_SECRET"
MIN_SECRET_LEN = 16
_ITERATIONS = 20_000
#: an expired token is remembered this long, to answer TokenExpired rather than BadRequest
REMEMBER_EXPIRED_S = 24 * 3600.0
MAX_TOKENS = 100_000
#: RFC 6750 section 2.1 b64token
_B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
#: ``events`` is the customer's own events endpoint, read by twin/pact_api/delivery.py
_CLIENT_KEYS = {"client_id", "secret", "secret_env", "product_ids", "company_ids", "events"}
#: the authenticated client of a request, and its id for the access log
CLIENT = web.RequestKey("pact_client", object)
CLIENT_ID = web.RequestKey("pact_client_id", str)


class ClientsError(ValueError):
    """The client credentials cannot be used (names the file or variable and the field)."""


def _digest(secret: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", secret.encode("utf-8"), salt, _ITERATIONS)


@dataclass(frozen=True)
class Client:
    client_id: str
    salt: bytes = field(repr=False)
    digest: bytes = field(repr=False)
    product_ids: frozenset[str] = frozenset()  # lower case: URNs match case-insensitively (PACT v3 filters)
    company_ids: frozenset[str] = frozenset()
    everything: bool = False

    @classmethod
    def make(cls, client_id: str, secret: str, product_ids: Iterable[str] = (), company_ids: Iterable[str] = (),
             everything: bool = False) -> Client:
        salt = secrets.token_bytes(16)
        return cls(client_id, salt, _digest(secret, salt), frozenset(p.lower() for p in product_ids),
                   frozenset(c.lower() for c in company_ids), everything)

    def check_secret(self, secret: str) -> bool:
        return hmac.compare_digest(_digest(secret, self.salt), self.digest)

    def may_see(self, footprint: Mapping) -> bool:
        """Whether the data owner shared this footprint with the client (a product or company id in common)."""
        if self.everything:
            return True
        pids = {str(p).lower() for p in footprint.get("productIds") or ()}
        cids = {str(c).lower() for c in footprint.get("companyIds") or ()}
        return bool(pids & self.product_ids or cids & self.company_ids)


_DUMMY = Client.make("", secrets.token_urlsafe(24))


class ClientRegistry:
    def __init__(self, clients: Iterable[Client]) -> None:
        self._clients = {c.client_id: c for c in clients}
        if not self._clients:
            raise ClientsError(f"no client credentials: set {ID_ENV} and {SECRET_ENV}, or give --clients FILE")

    def __len__(self) -> int:
        return len(self._clients)

    def get(self, client_id: str) -> Client | None:
        return self._clients.get(client_id)

    def authenticate(self, client_id: str, secret: str) -> Client | None:
        client = self._clients.get(client_id)
        # an unknown id costs the same digest as a known one: timing does not tell which ids exist
        ok = (client or _DUMMY).check_secret(secret)
        return client if client is not None and ok else None


def _secret_ok(secret: str, where: str) -> str:
    if len(secret) < MIN_SECRET_LEN:
        raise ClientsError(f"{where}: the secret is shorter than {MIN_SECRET_LEN} characters")
    return secret


def _urns(value, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ClientsError(f"{where}: expected a list of ids (URNs)")
    return value


def _file_clients(path: Path, env: Mapping[str, str]) -> list[Client]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ClientsError(f"{path}: cannot read the clients file: {exc.strerror or exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ClientsError(f"{path}: not a YAML clients file: {str(exc).splitlines()[0]}") from None
    entries = doc.get("clients") if isinstance(doc, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ClientsError(f"{path}: expected 'clients:' with a list of clients")
    out = []
    for i, e in enumerate(entries):
        where = f"{path}: clients[{i}]"
        if not isinstance(e, dict):
            raise ClientsError(f"{where}: expected a mapping")
        if unknown := sorted(set(e) - _CLIENT_KEYS):
            raise ClientsError(f"{where}: unknown field {unknown[0]!r} (expected {', '.join(sorted(_CLIENT_KEYS))})")
        cid = e.get("client_id")
        if not isinstance(cid, str) or not cid.strip() or ":" in cid:
            raise ClientsError(f"{where}.client_id: expected a non-empty string without ':'")
        where = f"{path}: client {cid!r}"
        if ("secret" in e) == ("secret_env" in e):
            raise ClientsError(f"{where}: give exactly one of secret or secret_env")
        if "secret_env" in e:
            name = e["secret_env"]
            if not isinstance(name, str) or not env.get(name):
                raise ClientsError(f"{where}.secret_env: the environment variable {name!r} is not set")
            secret = env[name]
        else:
            secret = e["secret"]
            if not isinstance(secret, str):
                raise ClientsError(f"{where}.secret: expected a string")
        pids = _urns(e.get("product_ids"), f"{where}.product_ids")
        cids = _urns(e.get("company_ids"), f"{where}.company_ids")
        if not pids and not cids:
            raise ClientsError(f"{where}: shares nothing; give product_ids or company_ids")
        if any(c.client_id == cid for c in out):
            raise ClientsError(f"{where}: client_id given twice")
        out.append(Client.make(cid, _secret_ok(secret, where), pids, cids))
    if any("secret" in e for e in entries) and path.stat().st_mode & 0o077:
        log.warning("%s holds client secrets and other users may read it: chmod 600 it, or use secret_env", path)
    return out


def load_clients(clients_file: Path | None = None, env: Mapping[str, str] | None = None) -> ClientRegistry:
    """The clients from the environment (one that sees everything) and/or a clients file."""
    env = os.environ if env is None else env
    clients = _file_clients(Path(clients_file), env) if clients_file is not None else []
    cid, secret = env.get(ID_ENV), env.get(SECRET_ENV)
    if bool(cid) != bool(secret):
        raise ClientsError(f"{ID_ENV} and {SECRET_ENV} go together: only {ID_ENV if cid else SECRET_ENV} is set")
    if cid:
        if ":" in cid:
            raise ClientsError(f"{ID_ENV}: a client id cannot contain ':' (HTTP Basic splits on it)")
        if any(c.client_id == cid for c in clients):
            raise ClientsError(f"{ID_ENV}: client {cid!r} is also in {clients_file}")
        clients.append(Client.make(cid, _secret_ok(secret, SECRET_ENV), everything=True))
    return ClientRegistry(clients)


class TokenStore:
    """Opaque bearer tokens: ``issue`` one for a client, ``resolve`` one back (or the spec's error)."""

    def __init__(self, registry: ClientRegistry, ttl_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.registry = registry
        self.ttl_s = float(ttl_s)
        self._clock = clock
        self._tokens: dict[bytes, tuple[str, float]] = {}

    def issue(self, client: Client) -> str:
        now = self._clock()
        if len(self._tokens) >= MAX_TOKENS:
            self._prune(now)
        token = secrets.token_urlsafe(32)
        self._tokens[hashlib.sha256(token.encode()).digest()] = (client.client_id, now + self.ttl_s)
        return token

    def resolve(self, token: str) -> Client:
        entry = self._tokens.get(hashlib.sha256(token.encode()).digest())
        if entry is None:
            raise PactError("BadRequest", "invalid access token",
                            {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        client_id, expires = entry
        if self._clock() >= expires:
            raise PactError("TokenExpired", "the access token has expired",
                            {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="expired"'})
        client = self.registry.get(client_id)
        if client is None:  # pragma: no cover - clients do not change while the server runs
            raise PactError("BadRequest", "invalid access token")
        return client

    def _prune(self, now: float) -> None:
        for key in [k for k, (_, exp) in self._tokens.items() if now - exp > REMEMBER_EXPIRED_S]:
            del self._tokens[key]


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization: Bearer ...`` header, or BadRequest naming what is wrong."""
    if not header:
        raise PactError("BadRequest", "missing Authorization header; get a token at /auth/token",
                        {"WWW-Authenticate": "Bearer"})
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not _B64TOKEN.fullmatch(token):
        raise PactError("BadRequest", "malformed Authorization header; expected 'Bearer <token>'",
                        {"WWW-Authenticate": 'Bearer error="invalid_request"'})
    return token


def basic_credentials(header: str) -> tuple[str, str] | None:
    """(client_id, secret) of an ``Authorization: Basic ...`` header; None when it is not one or malformed."""
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    cid, sep, secret = decoded.partition(":")
    if not sep:
        return None
    # RFC 6749 section 2.3.1: both parts are form-urlencoded before the Basic encoding
    return unquote_plus(cid), unquote_plus(secret)


MAX_FORM_BYTES = 8192


def _oauth_error(status: int, error: str, description: str) -> web.Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="pact", charset="UTF-8"'
    return web.json_response({"error": error, "error_description": description}, status=status, headers=headers)


def _form(raw: bytes) -> dict[str, str] | str:
    """The form body's parameters, or why it is not a usable one (RFC 6749 section 3.2: none repeated)."""
    try:
        pairs = parse_qsl(raw.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(raw))
    except (UnicodeDecodeError, ValueError):
        return "the body is not an application/x-www-form-urlencoded form"
    out: dict[str, str] = {}
    for k, v in pairs:
        if k in out:
            return f"parameter {k} is given more than once"
        out[k] = v
    return out


def token_endpoint(registry: ClientRegistry, tokens: TokenStore):
    """The handler of ``POST /auth/token`` (Action Authenticate)."""

    async def handle(request: web.Request) -> web.Response:
        if request.content_type != "application/x-www-form-urlencoded":
            return _oauth_error(400, "invalid_request", "expected Content-Type application/x-www-form-urlencoded")
        if (request.content_length or 0) > MAX_FORM_BYTES:
            return _oauth_error(400, "invalid_request", f"the body is larger than {MAX_FORM_BYTES} bytes")
        raw = await request.content.read(MAX_FORM_BYTES + 1)
        if len(raw) > MAX_FORM_BYTES:
            return _oauth_error(400, "invalid_request", f"the body is larger than {MAX_FORM_BYTES} bytes")
        form = _form(raw)
        if isinstance(form, str):
            return _oauth_error(400, "invalid_request", form)
        grant = form.get("grant_type")
        if not grant:
            return _oauth_error(400, "invalid_request", "grant_type is missing; expected client_credentials")
        if grant != "client_credentials":
            return _oauth_error(400, "unsupported_grant_type", "only grant_type=client_credentials is supported")
        header = request.headers.get("Authorization")
        if header is not None:
            if "client_secret" in form:
                return _oauth_error(400, "invalid_request", "client credentials given both in the header and the body")
            creds = basic_credentials(header)
            if creds is None:
                return _oauth_error(401, "invalid_client", "malformed HTTP Basic credentials")
        elif "client_id" in form and "client_secret" in form:
            creds = form["client_id"], form["client_secret"]
        else:
            return _oauth_error(401, "invalid_client", "no client authentication; use HTTP Basic")
        # the digest takes milliseconds: off the event loop, so other requests go on meanwhile
        client = await asyncio.to_thread(registry.authenticate, *creds)
        if client is None:
            return _oauth_error(401, "invalid_client", "client authentication failed")
        request[CLIENT_ID] = client.client_id
        token = tokens.issue(client)
        return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": int(tokens.ttl_s)},
                                 headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    return handle
