"""PACT v3 ListFootprints and GetFootprint over HTTPS against a store holding real published
footprints (tests/support/pact_server.py: a1 Deprecated, b1, a2 superseding a1, in that order; valid
2026-03-31T16:00:00Z to 2029-03-31T16:00:00Z, geography CN, board-a classified).

Filters: several values of one filter OR-ed, different filters AND-ed; pagination by ``limit`` and
the ``Link: <...>; rel="next"`` header; what a customer sees is what is shared with it; errors in the
spec's shape with its statuses, never a 500 for a client's mistake.
"""

from __future__ import annotations

import asyncio
import logging
import re
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from carbon.reports.pact import validate_footprint
from tests.support.pact_server import (A_URN, B_URN, CLASSIFICATION_A, COMPANY, FakeClock, client_ssl, get_token,
                                       make_tls, publish_sample, serving)
from twin.pact_api.app import create_app
from twin.pact_api.auth import Client, ClientRegistry
from twin.pact_api.repository import FootprintRepository

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

OWNER = ("owner-erp", "owner-secret-0123456789")  # sees everything (as PACT_CLIENT_ID would)
B_ONLY = ("acme", "acme-secret-0123456789")  # board-b's product id shared with it
COMPANY_WIDE = ("beta", "beta-secret-0123456789")  # the company id shared with it: all three


@pytest.fixture()
def world(tmp_path):
    cert, key = make_tls(tmp_path)
    store = tmp_path / "store.db"
    docs = publish_sample(store)
    registry = ClientRegistry([Client.make(*OWNER, everything=True), Client.make(*B_ONLY, product_ids=[B_URN]),
                               Client.make(*COMPANY_WIDE, company_ids=[COMPANY.upper()])])
    app = create_app(FootprintRepository(store), registry, clock=FakeClock(), burst=1000)
    return cert, key, app, docs, store


def call(world, steps):
    """Run ``steps(get)`` against the served app; ``get(path, who=OWNER)`` -> (status, json, headers)."""
    cert, key, app, _docs, _ = world

    async def scenario():
        async with serving(app, cert, key) as base, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
            tokens = {}

            async def get(path, who=OWNER):
                if who not in tokens:
                    tokens[who] = await get_token(s, base, *who)
                url = path if path.startswith("https://") else base + path
                async with s.get(url, headers={"Authorization": f"Bearer {tokens[who]}"}) as r:
                    return r.status, await r.json(), r.headers

            return await steps(get, base)

    return asyncio.run(scenario())


def ids(docs, *names):
    return [docs[n]["id"] for n in names]


def test_filters_or_within_and_across(world):
    docs = world[3]
    cases = {
        "": ("a1", "b1", "a2"),
        "status=Active": ("b1", "a2"),
        "status=deprecated": ("a1",),  # case-insensitive
        "status=Active&status=Deprecated": ("a1", "b1", "a2"),
        "status=BogusStatus": (),  # conformance test case 37: an empty list, not an error
        f"productId={A_URN}": ("a1", "a2"),
        f"productId={A_URN.upper()}": ("a1", "a2"),
        f"productId={A_URN}&productId={B_URN}": ("a1", "b1", "a2"),
        f"productId={A_URN}&status=Active": ("a2",),
        f"productId={B_URN}&status=Deprecated": (),
        f"companyId={COMPANY}": ("a1", "b1", "a2"),
        "companyId=urn:bogus:company:x&companyId=urn:bogus:company:y": (),
        f"classification={CLASSIFICATION_A}": ("a1", "a2"),
        "geography=cn": ("a1", "b1", "a2"),
        "geography=DE": (),
        "geography=DE&geography=CN&status=Active": ("b1", "a2"),
        # valid from 2026-03-31T16:00:00Z to 2029-03-31T16:00:00Z
        "validOn=2027-01-01T00:00:00Z": ("a1", "b1", "a2"),
        "validOn=2026-03-31T16:00:00Z": ("a1", "b1", "a2"),
        "validOn=2026-03-31T15:59:59Z": (),
        "validOn=2026-01-01T00:00:00Z&validOn=2029-03-31T16:00:00%2B00:00": ("a1", "b1", "a2"),
        "validAfter=2026-03-31T15:59:59Z": ("a1", "b1", "a2"),
        "validAfter=2026-03-31T16:00:00Z": (),  # strictly after
        "validBefore=2029-03-31T16:00:01Z": ("a1", "b1", "a2"),
        "validBefore=2029-03-31T16:00:00Z": (),  # strictly before
    }

    async def steps(get, base):
        for query, want in cases.items():
            status, body, headers = await get(f"/3/footprints?{query}")
            assert (status, [d["id"] for d in body["data"]]) == (200, ids(docs, *want)), query
            assert "Link" not in headers

    call(world, steps)


def test_pagination_by_limit_and_link(world):
    docs = world[3]

    async def steps(get, base):
        status, body, headers = await get("/3/footprints?limit=2")
        assert (status, [d["id"] for d in body["data"]]) == (200, ids(docs, "a1", "b1"))
        link = re.fullmatch(r'<(https://[^>]+)>; rel="next"', headers["Link"])
        assert link, headers["Link"]
        url = urlsplit(link[1])
        assert url.netloc == urlsplit(base).netloc and url.path == "/3/footprints"
        assert dict(parse_qsl(url.query)) == {"limit": "2", "offset": "2"}
        for _ in range(2):  # a pagination link may be called more than once
            status, body, headers = await get(link[1])
            assert (status, [d["id"] for d in body["data"]], headers.get("Link")) == (200, ids(docs, "a2"), None)
        # the filters go along: Active ones one at a time
        status, body, headers = await get("/3/footprints?status=Active&limit=1")
        assert [d["id"] for d in body["data"]] == ids(docs, "b1")
        nxt = re.fullmatch(r'<([^>]+)>; rel="next"', headers["Link"])[1]
        assert dict(parse_qsl(urlsplit(nxt).query)) == {"status": "Active", "limit": "1", "offset": "1"}
        status, body, headers = await get(nxt)
        assert ([d["id"] for d in body["data"]], headers.get("Link")) == (ids(docs, "a2"), None)

    call(world, steps)


def test_get_footprint_and_what_each_customer_sees(world):
    docs = world[3]

    async def steps(get, base):
        status, body, _ = await get("/3/footprints")
        for doc in body["data"]:  # every footprint served is a valid v3 ProductFootprint
            validate_footprint(doc)
            status, one, _ = await get(f"/3/footprints/{doc['id']}")
            assert status == 200 and one["data"] == doc
            validate_footprint(one["data"])
        status, body, _ = await get(f"/3/footprints/{docs['a2']['id']}")
        assert status == 200 and body["data"] == docs["a2"]
        assert body["data"]["precedingPfIds"] == [docs["a1"]["id"]]
        status, body, _ = await get(f"/3/footprints/{docs['a1']['id']}")
        assert (status, body["data"]["status"]) == (200, "Deprecated")  # deprecated ones are still served
        status, body, _ = await get("/3/footprints/00000000-0000-0000-0000-000000000000")
        assert (status, body["code"]) == (404, "NotFound")
        status, body, _ = await get("/3/footprints/non-existent-id")
        assert (status, body["code"]) == (404, "NotFound")
        # acme: board-b only
        status, body, _ = await get("/3/footprints", who=B_ONLY)
        assert [d["id"] for d in body["data"]] == ids(docs, "b1")
        assert (await get(f"/3/footprints/{docs['b1']['id']}", who=B_ONLY))[0] == 200
        status, body, _ = await get(f"/3/footprints/{docs['a2']['id']}", who=B_ONLY)
        assert (status, body) == (403, {"code": "AccessDenied",
                                        "message": "access denied: this footprint is not shared with you"})
        status, body, _ = await get(f"/3/footprints?productId={A_URN}", who=B_ONLY)
        assert (status, body["data"]) == (200, [])
        # beta: the company id (matched case-insensitively)
        status, body, _ = await get("/3/footprints", who=COMPANY_WIDE)
        assert [d["id"] for d in body["data"]] == ids(docs, "a1", "b1", "a2")

    call(world, steps)


def test_wrong_queries_are_the_specs_errors(world):
    async def steps(get, base):
        for query, code in (("validOn=yesterday", "BadRequest"), ("validAfter=2026-01-01", "BadRequest"),
                            ("validBefore=1", "BadRequest"), ("limit=abc", "BadRequest"), ("limit=0", "BadRequest"),
                            ("limit=-1", "BadRequest"), ("limit=1&limit=2", "BadRequest"),
                            ("offset=x", "BadRequest"), ("colour=red", "BadRequest"),
                            ("$filter=companyName%20eq%20'x'", "NotImplemented"),
                            ("x-atq-invoice-id=12345", "NotImplemented")):
            status, body, _ = await get(f"/3/footprints?{query}")
            assert (status, body["code"]) == (400, code), query
            assert set(body) == {"code", "message"} and body["message"]

    call(world, steps)


def test_unknown_routes_methods_and_store_failures_are_spec_errors(world, caplog):
    cert, _key, _app, _docs, store = world
    caplog.set_level(logging.ERROR)

    async def steps(get, base):
        status, body, _ = await get("/3/nothing-here")
        assert (status, body["code"]) == (404, "NotFound")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
            token = await get_token(s, base, *OWNER)
            async with s.delete(f"{base}/3/footprints", headers={"Authorization": f"Bearer {token}"}) as r:
                assert (r.status, (await r.json())["code"]) == (400, "BadRequest")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
            async with s.get(f"{base}/health") as r:
                assert (r.status, await r.json()) == (200, {"status": "ok"})
            store.write_bytes(b"this is no longer an SQLite database" * 200)  # the store breaks under the server
            async with s.get(f"{base}/health") as r:
                assert (r.status, await r.json()) == (503, {"status": "unavailable",
                                                            "store": "DatabaseError: file is not a database"})
        status, body, _ = await get("/3/footprints")
        assert (status, body) == (500, {"code": "InternalError", "message": "internal error"})

    call(world, steps)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert errors[0].getMessage().startswith("GET /3/footprints failed: DatabaseError")


def test_reads_do_not_wait_for_a_writer(world):
    """A report holding the store's write lock (an open write transaction) does not hold up the API:
    with WAL the server reads the last committed footprints at once (a reader that waited would
    wait out the repository's 10 s busy timeout), and the writer commits after it."""
    import sqlite3
    import time

    docs, store = world[3], world[4]
    writer = sqlite3.connect(store, isolation_level=None)
    # EXCLUSIVE: in a rollback-journal store this would lock readers out; in WAL it does not
    writer.execute("BEGIN EXCLUSIVE")
    writer.execute("UPDATE footprint SET status = 'Deprecated'")  # uncommitted: nobody may see it

    async def steps(get, base):
        t0 = time.perf_counter()
        status, body, _ = await get("/3/footprints?status=Active")
        return status, [d["id"] for d in body["data"]], time.perf_counter() - t0

    try:
        status, got, elapsed = call(world, steps)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert (status, got) == (200, ids(docs, "b1", "a2")) and elapsed < 5.0, elapsed


def test_pages_are_capped_whatever_the_limit(world):
    """With pages of at most 2: no limit gives 2 and a link; limit=5 gives 2 too, and the link says 2."""
    cert, key, _app, docs, store = world
    registry = ClientRegistry([Client.make(*OWNER, everything=True)])
    world = (cert, key, create_app(FootprintRepository(store), registry, clock=FakeClock(), page_max=2), docs, store)

    async def steps(get, base):
        out = []
        for query in ("", "?limit=5"):
            status, body, headers = await get(f"/3/footprints{query}")
            nxt = re.fullmatch(r'<([^>]+)>; rel="next"', headers["Link"])[1]
            out.append(([d["id"] for d in body["data"]], dict(parse_qsl(urlsplit(nxt).query))))
            status, body, headers = await get(nxt)
            assert ([d["id"] for d in body["data"]], headers.get("Link")) == (ids(docs, "a2"), None)
        return out

    assert call(world, steps) == [(ids(docs, "a1", "b1"), {"limit": "2", "offset": "2"})] * 2
