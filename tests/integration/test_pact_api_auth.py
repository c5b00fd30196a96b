"""PACT v3 Action Authenticate and the guards around the API, over HTTPS with a certificate made
here: the client credentials grant (RFC 6749 section 4.4) and its OAuth errors, OpenID discovery of
the token endpoint, bearer tokens that expire (TokenExpired 401) or were never issued (BadRequest
400), rate limiting per client (429 + Retry-After), logs without secrets, and no plain HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import logging

import aiohttp
import pytest

from tests.support.pact_server import FakeClock, basic, client_ssl, get_token, make_tls, publish_sample, serving
from twin.pact_api.app import create_app
from twin.pact_api.auth import Client, ClientRegistry
from twin.pact_api.repository import FootprintRepository

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

CID, SECRET = "acme-procurement", "s3cret-for-tests-0123456789"


@pytest.fixture()
def setup(tmp_path):
    cert, key = make_tls(tmp_path)
    store = tmp_path / "store.db"
    docs = publish_sample(store)
    return cert, key, FootprintRepository(store), docs


def _app(repo, clock, **kw):
    registry = ClientRegistry([Client.make(CID, SECRET, everything=True),
                               Client.make("other", "another-secret-0123456789", everything=True)])
    return create_app(repo, registry, clock=clock, **kw)


def run(coro):
    return asyncio.run(coro)


def test_token_by_basic_auth_then_list_and_discovery(setup):
    cert, key, repo, docs = setup

    async def scenario():
        async with serving(_app(repo, FakeClock()), cert, key) as base, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
            async with s.get(f"{base}/.well-known/openid-configuration") as r:
                assert r.status == 200
                discovery = await r.json()
            assert discovery["token_endpoint"] == f"{base}/auth/token"
            async with s.post(discovery["token_endpoint"], data={"grant_type": "client_credentials"},
                              headers=basic(CID, SECRET)) as r:
                assert r.status == 200
                body = await r.json()
                assert r.headers["Cache-Control"] == "no-store"
            assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and len(body["access_token"]) >= 40
            async with s.get(f"{base}/3/footprints", headers={"Authorization": f"Bearer {body['access_token']}"}) as r:
                assert r.status == 200
                assert [d["id"] for d in (await r.json())["data"]] == [docs[k]["id"] for k in ("a1", "b1", "a2")]
            # client_secret_post (the spec lists client_id and client_secret as request parameters)
            async with s.post(f"{base}/auth/token", data={"grant_type": "client_credentials", "client_id": CID,
                                                          "client_secret": SECRET}) as r:
                assert r.status == 200
            async with s.get(f"{base}/health") as r:
                assert r.status == 200 and (await r.json())["status"] == "ok"

    run(scenario())


def test_token_endpoint_errors_are_oauth_errors(setup):
    cert, key, repo, _ = setup
    grant = {"grant_type": "client_credentials"}

    async def scenario():
        async with serving(_app(repo, FakeClock()), cert, key) as base, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
            async def post(data, headers=None):
                async with s.post(f"{base}/auth/token", data=data, headers=headers) as r:
                    return r.status, await r.json(), r.headers

            status, body, headers = await post(grant, headers=basic(CID, "wrong-secret-0123456789"))
            assert (status, body["error"]) == (401, "invalid_client") and headers["WWW-Authenticate"].startswith("Basic")
            assert (await post(grant, headers=basic("nobody", SECRET)))[:2][0] == 401
            assert (await post(grant))[1]["error"] == "invalid_client"  # no credentials at all
            status, body, _ = await post(grant, headers={"Authorization": "Basic !!not-base64!!"})
            assert (status, body["error"]) == (401, "invalid_client")
            status, body, _ = await post({"grant_type": "password"}, headers=basic(CID, SECRET))
            assert (status, body["error"]) == (400, "unsupported_grant_type")
            status, body, _ = await post({}, headers=basic(CID, SECRET))
            assert (status, body["error"]) == (400, "invalid_request")
            status, body, _ = await post('{"grant_type": "client_credentials"}',
                                         headers={**basic(CID, SECRET), "Content-Type": "application/json"})
            assert (status, body["error"]) == (400, "invalid_request")
            status, body, _ = await post({"grant_type": "client_credentials", "client_id": CID, "client_secret": SECRET},
                                         headers=basic(CID, SECRET))
            assert (status, body["error"]) == (400, "invalid_request")  # two ways at once (RFC 6749 2.3)
            status, body, _ = await post("grant_type=client_credentials&" + "x" * 9000,
                                         headers={**basic(CID, SECRET),
                                                  "Content-Type": "application/x-www-form-urlencoded"})
            assert (status, body["error"]) == (400, "invalid_request")

    run(scenario())


def test_bearer_tokens_expire_and_bad_ones_are_bad_requests(setup):
    cert, key, repo, _ = setup
    clock = FakeClock()

    async def scenario():
        async with serving(_app(repo, clock), cert, key) as base, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
            async def get(headers):
                async with s.get(f"{base}/3/footprints", headers=headers) as r:
                    return r.status, await r.json()

            token = await get_token(s, base, CID, SECRET)
            clock.advance(3599.9)  # expires_in 3600: still good 0.1 s before
            assert (await get({"Authorization": f"Bearer {token}"}))[0] == 200
            clock.advance(0.1)
            assert await get({"Authorization": f"Bearer {token}"}) == (
                401, {"code": "TokenExpired", "message": "the access token has expired"})
            for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Bearer a b"},
                            {"Authorization": f"Basic {base64.b64encode(f'{CID}:{SECRET}'.encode()).decode()}"},
                            {"Authorization": "Bearer very-invalid-access-token-0123456789"}):
                status, body = await get(headers)
                assert (status, body["code"]) == (400, "BadRequest"), headers
            async with s.get(f"{base}/3/footprints/x", headers={"Authorization": "Bearer nope"}) as r:
                assert (r.status, (await r.json())["code"]) == (400, "BadRequest")

    run(scenario())


def test_rate_limit_per_client_with_retry_after(setup):
    """burst 3, 0.5 token/s: the 4th request at once is refused, a token is back after 1 / 0.5 = 2 s."""
    cert, key, repo, _ = setup
    clock = FakeClock()

    async def scenario():
        async with serving(_app(repo, clock, rate=0.5, burst=3), cert, key) as base, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
            t1 = await get_token(s, base, CID, SECRET)  # /auth/token spends the peer's bucket, not the client's
            t2 = await get_token(s, base, "other", "another-secret-0123456789")
            h1, h2 = {"Authorization": f"Bearer {t1}"}, {"Authorization": f"Bearer {t2}"}
            for _ in range(3):
                async with s.get(f"{base}/3/footprints", headers=h1) as r:
                    assert r.status == 200
            async with s.get(f"{base}/3/footprints", headers=h1) as r:
                assert (r.status, r.headers["Retry-After"], (await r.json())["code"]) == (429, "2", "TooManyRequests")
            async with s.get(f"{base}/3/footprints", headers=h2) as r:
                assert r.status == 200  # another client has its own bucket
            clock.advance(1.0)  # half a token back: still 1 s to wait
            async with s.get(f"{base}/3/footprints", headers=h1) as r:
                assert (r.status, r.headers["Retry-After"]) == (429, "1")
            clock.advance(1.0)
            async with s.get(f"{base}/3/footprints", headers=h1) as r:
                assert r.status == 200
            # the token endpoint's bucket is the peer's: 2 taken at t=0, 1 + 2 s x 0.5 = 2 tokens now
            await get_token(s, base, CID, SECRET)
            await get_token(s, base, CID, SECRET)
            async with s.post(f"{base}/auth/token", data={"grant_type": "client_credentials"},
                              headers=basic(CID, SECRET)) as r:
                assert (r.status, r.headers["Retry-After"]) == (429, "2")
            # a wrong token spends the same peer bucket: once it is empty, guesses get 429, not an answer
            async with s.get(f"{base}/3/footprints", headers={"Authorization": "Bearer guess-0123456789"}) as r:
                assert (r.status, (await r.json())["code"]) == (429, "TooManyRequests")
            clock.advance(2.0)
            async with s.get(f"{base}/3/footprints", headers={"Authorization": "Bearer guess-0123456789"}) as r:
                assert (r.status, (await r.json())["code"]) == (400, "BadRequest")

    run(scenario())


def test_logs_name_requests_but_never_secrets_or_tokens(setup, caplog):
    cert, key, repo, _ = setup
    caplog.set_level(logging.DEBUG)

    async def scenario():
        async with serving(_app(repo, FakeClock()), cert, key) as base, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
            token = await get_token(s, base, CID, SECRET)
            async with s.get(f"{base}/3/footprints?limit=1", headers={"Authorization": f"Bearer {token}"}) as r:
                assert r.status == 200
            async with s.post(f"{base}/auth/token", data={"grant_type": "client_credentials"},
                              headers=basic(CID, SECRET + "x")) as r:
                assert r.status == 401
            return token

    token = run(scenario())
    text = caplog.text
    encoded = base64.b64encode(f"{CID}:{SECRET}".encode()).decode()
    for secret in (SECRET, token, encoded, "Authorization", "Bearer"):
        assert secret not in text
    assert f"GET /3/footprints 200 client={CID}" in text
    assert f"POST /auth/token 200 client={CID}" in text and "POST /auth/token 401 client=-" in text


def test_plain_http_is_refused(setup):
    cert, key, repo, _ = setup

    async def scenario():
        async with serving(_app(repo, FakeClock()), cert, key) as base, aiohttp.ClientSession() as s:
            plain = base.replace("https://", "http://")
            for method, path in (("POST", "/auth/token"), ("GET", "/3/footprints"), ("POST", "/3/events")):
                with pytest.raises(aiohttp.ClientError):
                    async with s.request(method, plain + path, data={"grant_type": "client_credentials"},
                                         headers=basic(CID, SECRET)) as r:
                        await r.read()

    run(scenario())
