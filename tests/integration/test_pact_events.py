"""PACT v3 Action Events over HTTPS, both ways: the plant's server (twin/pact_api) and a customer's host
(tests/support/pact_receiver.py), each with a certificate made here.

Footprints (tests/support/pact_server.py publish_sample): a1 (board-a, Deprecated), b1 (board-b),
a2 (board-a, Active, preceded by a1), in publication order; changes recorded: a1 new, b1 new,
a1 deprecated, a2 new.
"""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from carbon.reports.pact import validate_footprint
from tests.support.pact_receiver import Receiver
from tests.support.pact_server import A_URN, B_URN, client_ssl, get_token, make_tls, publish_sample, serving
from twin.pact_api.app import create_app
from twin.pact_api.auth import Client, ClientRegistry
from twin.pact_api.delivery import Courier
from twin.pact_api.events import PUBLISHED, REQUEST_CREATED, REQUEST_FULFILLED, REQUEST_REJECTED, EventHandler
from twin.pact_api.repository import FootprintRepository

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

CID, SECRET = "acme", "acme-secret-0123456789abc"
B_ONLY, B_SECRET = "beta", "beta-secret-0123456789abc"  # sees board-b only, has no events endpoint


def _event(kind: str, data: dict, event_id: str = "req-1") -> dict:
    return {"specversion": "1.0", "id": event_id, "source": "//customer.example/3/events",
            "time": "2026-04-03T08:00:00Z", "type": kind, "data": data}


@pytest.fixture()
def setup(tmp_path):
    cert, key = make_tls(tmp_path)
    store = tmp_path / "store.db"
    return cert, key, store, publish_sample(store)


def _publish_third(repo) -> dict:
    """A third report of the quarter: 150,000 good units of board-a (121,500 kg / 150,000 = 0.81 kg)."""
    from carbon import ProductOutput, Registry, SharedLoad, StationUse, allocate, build_inventory
    from tests.support.carbon_exchange import CFG, PACT, SITE, T0, T1, TZ, records

    alloc = allocate([StationUse("line/press", 259_200.0, machine_time_s={"board-a": 3.0e6, "board-b": 1.0e6})],
                     [ProductOutput("board-a", 150_000, 0.5), ProductOutput("board-b", 20_000, 1.0)],
                     [SharedLoad("gas (Scope 1)", "fuel", 43_200.0)], 118_800.0 / 259_200.0)
    a3 = repo.publish(build_inventory(records(), Registry.default(), (T0, T1), SITE, alloc, CFG, TZ), PACT)[0]
    assert a3["pcf"]["pcfExcludingBiogenicUptake"] == "0.81"
    return a3


class Plant:
    """The plant's server and the customer's host, both running; ``post`` sends an event as ``acme``."""

    def __init__(self, base, session, receiver, handler, repo):
        self.base, self.s, self.receiver, self.handler, self.repo = base, session, receiver, handler, repo
        self.tokens: dict[str, str] = {}

    async def post(self, body, client=CID, secret=SECRET, raw: bytes | None = None):
        if client not in self.tokens:
            self.tokens[client] = await get_token(self.s, self.base, client, secret)
        headers = {"Authorization": f"Bearer {self.tokens[client]}",
                   "Content-Type": "application/cloudevents+json; charset=UTF-8"}
        async with self.s.post(f"{self.base}/3/events", data=raw if raw is not None else json.dumps(body),
                               headers=headers) as r:
            return r.status, await r.read()


async def _running(cert, key, store, scenario, *, discovery=True, poll_s=0.05):
    receiver = Receiver(discovery=discovery)
    repo = FootprintRepository(store)
    registry = ClientRegistry([Client.make(CID, SECRET, product_ids=[A_URN, B_URN]),
                               Client.make(B_ONLY, B_SECRET, product_ids=[B_URN])])
    async with serving(receiver.app(), cert, key) as customer:
        handler = EventHandler(repo, registry, {CID: receiver.recipient(customer, CID)},
                               Courier(client_ssl(cert), first_retry_s=0.05), poll_s=poll_s,
                               source="https://plant.example/3/events")
        app = create_app(repo, registry, handle_event=handler)
        handler.attach(app)
        async with serving(app, cert, key) as base, \
                aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=client_ssl(cert))) as s:
            await scenario(Plant(base, s, receiver, handler, repo))


def test_request_created_is_answered_later_with_the_matching_footprints(setup):
    cert, key, store, docs = setup

    async def scenario(p):
        status, body = await p.post(_event(REQUEST_CREATED, {"productId": [A_URN.upper()], "status": ["Active"],
                                                            "comment": "Please send the Q1 PCF."}))
        assert (status, body) == (200, b"")
        events = await p.receiver.wait_for(lambda evs: any(e["type"] == REQUEST_FULFILLED for e in evs))
        (answer,) = [e for e in events if e["type"] == REQUEST_FULFILLED]
        assert answer["data"]["requestEventId"] == "req-1"
        assert answer["data"]["pfs"] == [docs["a2"]]  # the Active one only, as asked
        assert answer["specversion"] == "1.0" and answer["source"] == "https://plant.example/3/events"
        for pf in answer["data"]["pfs"]:
            validate_footprint(pf)
        # without a status criterion: both revisions of board-a, in publication order; the same
        # request sent twice (same source and id) is answered once
        assert (await p.post(_event(REQUEST_CREATED, {"productId": [A_URN]}, "req-2")))[0] == 200
        assert (await p.post(_event(REQUEST_CREATED, {"productId": [A_URN]}, "req-2")))[0] == 200
        events = await p.receiver.wait_for(lambda evs: len(p.receiver.of_type("RequestFulfilledEvent.3")) == 2)
        assert [pf["id"] for pf in p.receiver.of_type("RequestFulfilledEvent.3")[1]["data"]["pfs"]] == \
            [docs["a1"]["id"], docs["a2"]["id"]]
        deadline = asyncio.get_running_loop().time() + 15
        while p.handler.pending and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)  # polled until no delivery is under way (or the deadline)
        assert p.handler.pending == 0
        assert [e["data"]["requestEventId"] for e in p.receiver.of_type("RequestFulfilledEvent.3")] == ["req-1", "req-2"]

    asyncio.run(_running(cert, key, store, scenario))


def test_a_request_nothing_matches_is_rejected_with_a_reason(setup):
    cert, key, store, _ = setup

    async def scenario(p):
        assert (await p.post(_event(REQUEST_CREATED, {"productId": ["urn:bogus:product:nonexistent123"]})))[0] == 200
        assert (await p.post(_event(REQUEST_CREATED, {"geography": ["DE"]}, "req-de")))[0] == 200
        await p.receiver.wait_for(lambda evs: len(p.receiver.of_type("RequestRejectedEvent.3")) == 2)
        rejected = {e["data"]["requestEventId"]: e["data"]["error"] for e in p.receiver.of_type("RequestRejectedEvent.3")}
        assert set(rejected) == {"req-1", "req-de"}
        assert all(err["code"] == "NotFound" and err["message"] for err in rejected.values())

    asyncio.run(_running(cert, key, store, scenario))


def test_customers_are_told_of_published_and_deprecated_footprints(setup):
    cert, key, store, docs = setup

    async def scenario(p):
        # a customer first configured is told of every footprint shared with it, each id once
        events = await p.receiver.wait_for(lambda evs: any(e["type"] == PUBLISHED for e in evs))
        first = [e for e in events if e["type"] == PUBLISHED][0]
        assert first["data"]["pfIds"] == [docs["a1"]["id"], docs["b1"]["id"], docs["a2"]["id"]]
        # a third report of board-a while the server runs: a2 deprecated, a3 published
        a3 = await asyncio.to_thread(_publish_third, p.repo)
        events = await p.receiver.wait_for(lambda evs: len(p.receiver.of_type("PublishedEvent.3")) == 2)
        assert p.receiver.of_type("PublishedEvent.3")[1]["data"]["pfIds"] == [docs["a2"]["id"], a3["id"]]
        assert a3["precedingPfIds"] == [docs["a2"]["id"], docs["a1"]["id"]]
        # nothing new: no further notice (the cursor is kept in the store)
        assert await p.handler.notify_once() == 0

    asyncio.run(_running(cert, key, store, scenario))


def test_delivery_retries_a_customer_not_reachable_and_renews_a_token(setup):
    cert, key, store, docs = setup

    async def scenario(p):
        await p.receiver.wait_for(lambda evs: len(p.receiver.of_type("PublishedEvent.3")) == 1)
        p.receiver.refuse_next = 2  # 503, 503, then 200
        p.receiver.expire_tokens()  # and the token held is no longer good: 401 first
        assert (await p.post(_event(REQUEST_CREATED, {"productId": [B_URN]})))[0] == 200
        await p.receiver.wait_for(lambda evs: bool(p.receiver.of_type("RequestFulfilledEvent.3")))
        assert p.receiver.statuses[-4:] == [401, 503, 503, 200]
        assert p.receiver.token_requests == 2
        assert [pf["id"] for pf in p.receiver.of_type("RequestFulfilledEvent.3")[0]["data"]["pfs"]] == [docs["b1"]["id"]]

    asyncio.run(_running(cert, key, store, scenario, discovery=False))


def test_events_from_a_supplier_host_are_accepted_when_valid(setup):
    cert, key, store, docs = setup

    async def scenario(p):
        fulfilled = _event(REQUEST_FULFILLED, {"requestEventId": "ours-1", "pfs": [docs["b1"]]}, "sup-1")
        rejected = _event(REQUEST_REJECTED, {"requestEventId": "ours-2",
                                            "error": {"code": "NotFound", "message": "none"}}, "sup-2")
        published = _event(PUBLISHED, {"pfIds": ["079e425a-464f-528d-341d-4a944a1dfd70"]}, "sup-3")
        for body in (fulfilled, rejected, published):
            assert await p.post(body) == (200, b"")
        assert p.handler.received["RequestFulfilledEvent.3"] == 1 and p.handler.received["PublishedEvent.3"] == 1

    asyncio.run(_running(cert, key, store, scenario))


@pytest.mark.parametrize("body, message", [
    (_event("org.wbcsd.pact.ProductFootprint.Unheard.3", {}), "unknown event type"),
    (dict(_event(PUBLISHED, {"pfIds": ["x"]}), specversion="0.3"), "specversion"),
    ({k: v for k, v in _event(PUBLISHED, {"pfIds": ["x"]}).items() if k != "time"}, "time"),
    (dict(_event(PUBLISHED, {"pfIds": ["x"]}), time="yesterday"), "time"),
    ({k: v for k, v in _event(PUBLISHED, {"pfIds": ["x"]}).items() if k != "id"}, "id: expected a non-empty string"),
    (_event(PUBLISHED, []), "data: expected an object"),
    (_event(PUBLISHED, {"pfIds": []}), "data.pfIds"),
    (_event(REQUEST_FULFILLED, {"requestEventId": "r", "pfs": []}), "data.pfs"),
    (_event(REQUEST_REJECTED, {"requestEventId": "r"}), "data.error"),
    (_event(REQUEST_CREATED, {"comment": "anything?"}), "at least one criterion"),
    (_event(REQUEST_CREATED, {"validOn": "soon"}), "data.validOn"),
    (_event(REQUEST_CREATED, {"productId": [7]}), "data.productId: expected a non-empty string"),
    (_event(REQUEST_CREATED, {"pf": {"productIds": [A_URN]}}), "unknown filter 'pf'"),
])
def test_invalid_events_are_bad_requests_naming_the_fault(setup, body, message):
    cert, key, store, _ = setup

    async def scenario(p):
        status, raw = await p.post(body)
        err = json.loads(raw)
        assert status == 400 and err["code"] == "BadRequest" and message in err["message"], err
        assert p.handler.received["rejected"] == 1

    asyncio.run(_running(cert, key, store, scenario, poll_s=60))


def test_a_request_from_a_client_without_an_events_endpoint_is_refused_at_once(setup):
    cert, key, store, _ = setup

    async def scenario(p):
        status, raw = await p.post(_event(REQUEST_CREATED, {"productId": [B_URN]}), B_ONLY, B_SECRET)
        assert status == 400 and b"no events endpoint is configured for client 'beta'" in raw
        status, raw = await p.post(None, raw=b"{not json")
        assert status == 400 and b"BadRequest" in raw

    asyncio.run(_running(cert, key, store, scenario, poll_s=60))


def test_courier_abandons_after_the_give_up_time_and_never_retries_refused_credentials(tmp_path):
    cert, key = make_tls(tmp_path)
    receiver = Receiver(discovery=False)
    event = {"type": PUBLISHED, "specversion": "1.0", "id": "n-1", "source": "urn:test", "time": "2026-04-03T08:00:00Z",
             "data": {"pfIds": ["079e425a-464f-528d-341d-4a944a1dfd70"]}}

    async def scenario():
        async with serving(receiver.app(), cert, key) as customer:
            # not reachable for longer than the give-up time: retried 0.05 s, 0.1 s ... apart, then abandoned
            receiver.refuse_next = 1000
            courier = Courier(client_ssl(cert), first_retry_s=0.05, give_up_s=0.3)
            t0 = asyncio.get_running_loop().time()
            assert await courier.send(receiver.recipient(customer, CID), event) is False
            assert asyncio.get_running_loop().time() - t0 < 5
            assert courier.stats["abandoned"] == 1 and courier.stats["attempts"] >= 2
            assert set(receiver.statuses) == {503} and len(receiver.statuses) == courier.stats["attempts"]
            await courier.close()
            # credentials the customer's token endpoint refuses: one attempt, no event posted
            wrong = Courier(client_ssl(cert), first_retry_s=0.05)
            to = receiver.recipient(customer, CID)
            to = type(to)(to.client_id, to.url, to.auth_base_url, to.token_url, to.login, "not-the-secret")
            before, tokens = len(receiver.statuses), receiver.token_requests
            assert await wrong.send(to, event) is False
            assert wrong.stats == {"delivered": 0, "refused": 1, "abandoned": 0, "attempts": 1}
            assert len(receiver.statuses) == before and receiver.token_requests == tokens + 1
            await wrong.close()

    asyncio.run(scenario())
