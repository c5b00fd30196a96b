"""The PACT Technical Specifications V3.0 conformance test cases, run against the real server
(twin/pact_api) over HTTPS with a certificate made here.

Each test is one test case of the V3 list of wbcsd/pact-conformance-service (``v3-test-cases-expected-results.md``)
(numbered as there; every case marked "Mandatory: V3.0", 1 to 17 and 20 to 39, plus the optional
OpenID cases 18 and 19), with the requests and the checks that service makes: the expected status
codes, the error ``code``, and the condition on the data (every footprint returned matches the
filter; the negative cases return ``{"data": []}``). Like the service, the filter values come from
the first footprint of the list. Every footprint served is validated against the project's v3
schema (carbon/schemas/pact_v3_product_footprint.json).

The served store holds the worked quarter's footprints (tests/support/pact_server.py
``publish_sample``): a1 (board-a, Deprecated), b1 (board-b), a2 (board-a, preceded by a1). The
"webhook" of the service is a customer host in the test (tests/support/pact_receiver.py), the
events endpoint configured for the conformance client: the RequestCreated of case 12 is answered
there (the service checks it in its listener, cases 13 and 14).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

import pytest

from carbon.reports.pact import validate_footprint
from tests.support.pact_receiver import Receiver
from tests.support.pact_server import A_URN, B_URN, client_ssl, make_tls, publish_sample
from twin.pact_api.app import create_app, server_ssl, start
from twin.pact_api.auth import Client, ClientRegistry
from twin.pact_api.delivery import Courier
from twin.pact_api.events import EventHandler
from twin.pact_api.repository import FootprintRepository

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

CID, SECRET = "pact-conformance", "conformance-secret-0123456789"
CE = "application/cloudevents+json; charset=UTF-8"
PREFIX = "org.wbcsd.pact.ProductFootprint."


class Host:
    """The plant's server and the customer's host in a thread of their own, on free ports."""

    def __init__(self, tmp) -> None:
        self.cert, self.key = make_tls(tmp)
        self.docs = publish_sample(tmp / "store.db")
        self.repo = FootprintRepository(tmp / "store.db")
        self.receiver = Receiver()
        self.ssl = client_ssl(self.cert)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self._up())

    def run(self, coro, timeout: float = 30.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _up(self) -> None:
        tls = server_ssl(self.cert, self.key)
        self._customer, port = await start(self.receiver.app(), "127.0.0.1", 0, tls)
        webhook = f"https://127.0.0.1:{port}"
        registry = ClientRegistry([Client.make(CID, SECRET, product_ids=[A_URN, B_URN])])
        self.handler = EventHandler(self.repo, registry, {CID: self.receiver.recipient(webhook, CID)},
                                    Courier(self.ssl, first_retry_s=0.05), poll_s=0.1,
                                    source="https://127.0.0.1/3/events")
        # the service fires its ~40 requests back to back: the defaults (burst 100) must let them through
        app = create_app(self.repo, registry, handle_event=self.handler)
        self.handler.attach(app)
        self._plant, self.port = await start(app, "127.0.0.1", 0, tls)
        self.base, self.http_base = f"https://127.0.0.1:{self.port}", f"http://127.0.0.1:{self.port}"

    async def _down(self) -> None:
        await self._plant.cleanup()
        await self._customer.cleanup()

    def close(self) -> None:
        self.run(self._down())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def wait_for_webhook(self, predicate) -> list[dict]:
        return self.run(self.receiver.wait_for(predicate), timeout=20.0)


def call(method: str, url: str, *, headers=None, body: bytes | None = None, context=None):
    """(status, headers, JSON body or None); a connection refused or dropped is (None, {}, None)."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, context=context, timeout=10) as resp:
            status, hdrs, raw = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, hdrs, raw = exc.code, exc.headers, exc.read()
    except (urllib.error.URLError, http.client.HTTPException, OSError):
        return None, {}, None
    try:
        return status, hdrs, json.loads(raw) if raw else None
    except ValueError:
        return status, hdrs, None


def basic(cid: str, secret: str) -> dict:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode(),
            "Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    h = Host(tmp_path_factory.mktemp("conformance"))
    yield h
    h.close()


@pytest.fixture(scope="module")
def token(host) -> str:
    status, _, body = call("POST", f"{host.base}/auth/token", headers=basic(CID, SECRET),
                           body=b"grant_type=client_credentials", context=host.ssl)
    assert status == 200, body
    return body["access_token"]


@pytest.fixture(scope="module")
def footprints(host, token):
    """All footprints as the service collects them (pages of 2, following the Link headers), and the
    pagination links seen."""
    collected, links, url = [], [], f"{host.base}/3/footprints?limit=2"
    while url:
        status, headers, body = call("GET", url, headers=_bearer(token), context=host.ssl)
        assert status == 200, body
        collected += body["data"]
        link = headers.get("Link")
        url = link[link.index("<") + 1:link.index(">")] if link else None
        if url:
            links.append(url)
    return collected, links


def _bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def _filters(first: dict) -> dict:
    """The service's filter values, from the first footprint listed (validity by the spec's default)."""
    ref_end = datetime.fromisoformat(first["pcf"]["referencePeriodEnd"])
    end = ref_end.replace(year=ref_end.year + 3)
    text = lambda d: d.isoformat().replace("+00:00", "Z")
    return {"productId": first["productIds"][0], "productIds": first["productIds"], "companyId": first["companyIds"][0],
            "geography": first["pcf"]["geographyCountry"], "classification": first["productClassifications"][0],
            "validOn": first["pcf"]["referencePeriodEnd"], "validAfter": text(ref_end - timedelta(days=1)),
            "validBefore": text(end + timedelta(days=1)), "status": first["status"], "id": first["id"]}


def _list(host, token, query: list[tuple[str, str]]) -> list[dict]:
    status, _, body = call("GET", f"{host.base}/3/footprints?{urlencode(query)}", headers=_bearer(token),
                           context=host.ssl)
    assert status == 200, body
    assert isinstance(body["data"], list)
    for pf in body["data"]:
        validate_footprint(pf)
    return body["data"]


def _event(kind: str, data: dict, event_id: str | None = None) -> bytes:
    return json.dumps({"specversion": "1.0", "id": event_id or str(uuid.uuid4()), "source": "https://webhook.example.com",
                       "time": "2026-05-19T10:30:00Z", "type": PREFIX + kind, "data": data}).encode()


def _post_event(host, token, body: bytes):
    return call("POST", f"{host.base}/3/events", headers={**_bearer(token), "Content-Type": CE}, body=body,
                context=host.ssl)


def test_case_01_obtain_auth_token_with_valid_credentials(host):
    status, _, body = call("POST", f"{host.base}/auth/token", headers=basic(CID, SECRET),
                           body=b"grant_type=client_credentials", context=host.ssl)
    assert status == 200 and body["token_type"] == "Bearer" and body["access_token"] and body["expires_in"] > 0


def test_case_02_obtain_auth_token_with_invalid_credentials(host):
    status, _, body = call("POST", f"{host.base}/auth/token", headers=basic(CID, "wrong-secret-0123456789"),
                           body=b"grant_type=client_credentials", context=host.ssl)
    assert status in (400, 401) and body["error"] == "invalid_client" and "access_token" not in body


def test_case_03_get_pcf_using_getfootprint(host, token, footprints):
    pf_id = _filters(footprints[0][0])["id"]
    status, _, body = call("GET", f"{host.base}/3/footprints/{pf_id}", headers=_bearer(token), context=host.ssl)
    assert status == 200 and body["data"]["id"] == pf_id
    validate_footprint(body["data"])
    assert body["data"] == host.docs["a1"]  # the deprecated one is still served, marked so


def test_case_04_get_all_pcfs_using_listfootprints(host, token, footprints):
    status, _, body = call("GET", f"{host.base}/3/footprints", headers=_bearer(token), context=host.ssl)
    assert status in (200, 202) and len(body["data"]) == len(footprints[0]) == 3
    for pf in body["data"]:
        validate_footprint(pf)
    assert body["data"] == [host.docs["a1"], host.docs["b1"], host.docs["a2"]]


def test_case_05_pagination_link_implementation_of_action_listfootprints(host, token, footprints):
    collected, links = footprints
    assert links, "a list longer than the limit must come with a Link header"
    assert urlsplit(links[0]).scheme == "https" and urlsplit(links[0]).netloc == f"127.0.0.1:{host.port}"
    status, _, body = call("GET", links[0], headers=_bearer(token), context=host.ssl)
    assert status == 200 and body["data"] == [host.docs["a2"]]  # the third of three, pages of 2
    assert [pf["id"] for pf in collected] == [host.docs[k]["id"] for k in ("a1", "b1", "a2")]


def test_case_06_attempt_listfootprints_with_invalid_token(host):
    status, _, body = call("GET", f"{host.base}/3/footprints", headers=_bearer("very-invalid-access-token-x1y2z3"),
                           context=host.ssl)
    assert status == 400 and body["code"] == "BadRequest"


def test_case_07_attempt_getfootprint_with_invalid_token(host, footprints):
    pf_id = footprints[0][0]["id"]
    status, _, body = call("GET", f"{host.base}/3/footprints/{pf_id}",
                           headers=_bearer("very-invalid-access-token-x1y2z3"), context=host.ssl)
    assert status == 400 and body["code"] == "BadRequest" and "data" not in body


def test_case_08_attempt_getfootprint_with_non_existent_pfid(host, token):
    status, _, body = call("GET", f"{host.base}/3/footprints/random-string-as-id-Zq8vT2mL0pX4nB7c",
                           headers=_bearer(token), context=host.ssl)
    assert status in (400, 404) and body["code"] == "NotFound"


def test_case_09_attempt_authentication_through_http(host):
    status, _, body = call("POST", f"{host.http_base}/auth/token", headers=basic(CID, SECRET),
                           body=b"grant_type=client_credentials")
    assert status is None or (status >= 400 and not (body or {}).get("access_token")), (status, body)


def test_case_10_attempt_listfootprints_through_http(host, token):
    status, _, body = call("GET", f"{host.http_base}/3/footprints", headers=_bearer(token))
    assert status is None or (status >= 400 and not (body or {}).get("data")), (status, body)


def test_case_11_attempt_getfootprint_through_http(host, token, footprints):
    status, _, body = call("GET", f"{host.http_base}/3/footprints/{footprints[0][0]['id']}", headers=_bearer(token))
    assert status is None or (status >= 400 and not (body or {}).get("data")), (status, body)


def test_case_12_receive_asynchronous_pcf_request(host, token, footprints):
    f = _filters(footprints[0][0])
    run_id = f"test-run-id-{uuid.uuid4()}"
    status, _, _ = _post_event(host, token, _event("RequestCreatedEvent.3", {
        "productId": f["productIds"], "comment": "Please send PCF data for this year."}, run_id))
    assert status == 200
    # answered later at the requester's events endpoint: both footprints of board-a
    events = host.wait_for_webhook(lambda evs: any(e["data"].get("requestEventId") == run_id for e in evs))
    (answer,) = [e for e in events if e["data"].get("requestEventId") == run_id]
    assert answer["type"] == PREFIX + "RequestFulfilledEvent.3" and answer["specversion"] == "1.0"
    assert [pf["id"] for pf in answer["data"]["pfs"]] == [host.docs["a1"]["id"], host.docs["a2"]["id"]]
    for pf in answer["data"]["pfs"]:
        validate_footprint(pf)
        assert f["productId"] in pf["productIds"]


def test_case_13_respond_to_pcf_request_fulfilled_event(host, token):
    pf = dict(host.docs["b1"], id=str(uuid.uuid4()))  # a supplier's footprint, as the service sends one
    status, _, body = _post_event(host, token, _event("RequestFulfilledEvent.3", {
        "requestEventId": "test-run-id-12345", "pfs": [pf]}, "505e5d-4f9b-4b3b-9c05bc35-68f8"))
    assert status == 200 and body is None


def test_case_14_respond_to_pcf_request_rejected_event(host, token):
    status, _, body = _post_event(host, token, _event("RequestRejectedEvent.3", {
        "requestEventId": "test-run-id-12345",
        "error": {"code": "NotFound", "message": "The requested footprint could not be found."}}))
    assert status == 200 and body is None
    # and the plant rejects, at the requester's endpoint, a request it cannot fulfil
    run_id = f"test-run-id-{uuid.uuid4()}"
    assert _post_event(host, token, _event("RequestCreatedEvent.3", {
        "productId": ["urn:bogus:product:nonexistent123"]}, run_id))[0] == 200
    events = host.wait_for_webhook(lambda evs: any(e["data"].get("requestEventId") == run_id for e in evs))
    (answer,) = [e for e in events if e["data"].get("requestEventId") == run_id]
    assert answer["type"] == PREFIX + "RequestRejectedEvent.3" and answer["data"]["error"]["code"] == "NotFound"


def test_case_15_receive_notification_of_pcf_update_published_event(host, token):
    status, _, body = _post_event(host, token, _event("PublishedEvent.3", {"pfIds": ["urn:gtin:4712345060507"]}))
    assert status == 200 and body is None
    # the plant's own notices: the customer is told of every footprint shared with it
    events = host.wait_for_webhook(lambda evs: any(e["type"] == PREFIX + "PublishedEvent.3" for e in evs))
    notice = [e for e in events if e["type"] == PREFIX + "PublishedEvent.3"][0]
    assert notice["data"]["pfIds"] == [host.docs[k]["id"] for k in ("a1", "b1", "a2")]


def test_case_16_attempt_action_events_with_invalid_token(host):
    status, _, body = _post_event(host, "very-invalid-access-token-x1y2z3",
                                  _event("PublishedEvent.3", {"pfIds": ["urn:gtin:4712345060507"]}))
    assert status == 400 and body["code"] == "BadRequest"


def test_case_17_attempt_action_events_through_http(host, token):
    status, _, body = call("POST", f"{host.http_base}/3/events", headers={**_bearer(token), "Content-Type": CE},
                           body=_event("PublishedEvent.3", {"pfIds": ["urn:gtin:4712345060507"]}))
    assert status is None or (status >= 400 and not (body or {}).get("data")), (status, body)


def test_case_18_openid_connect_based_authentication_flow(host):
    status, _, doc = call("GET", f"{host.base}/.well-known/openid-configuration", context=host.ssl)
    assert status == 200
    status, _, body = call("POST", doc["token_endpoint"], headers=basic(CID, SECRET),
                           body=b"grant_type=client_credentials", context=host.ssl)
    assert status == 200 and body["access_token"]


def test_case_19_openid_connect_based_authentication_flow_with_incorrect_credentials(host):
    doc = call("GET", f"{host.base}/.well-known/openid-configuration", context=host.ssl)[2]
    status, _, body = call("POST", doc["token_endpoint"], headers=basic("nobody", "wrong-secret-0123456789"),
                           body=b"grant_type=client_credentials", context=host.ssl)
    assert status in (400, 401) and "access_token" not in body


def test_case_20_filter_by_productid(host, token, footprints):
    f = _filters(footprints[0][0])
    data = _list(host, token, [("productId", f["productId"])])
    assert data and all(f["productId"] in pf["productIds"] for pf in data) and len(data) == 2


def test_case_21_filter_by_companyid(host, token, footprints):
    f = _filters(footprints[0][0])
    data = _list(host, token, [("companyId", f["companyId"])])
    assert len(data) == 3 and all(f["companyId"] in pf["companyIds"] for pf in data)


def test_case_22_filter_by_geography(host, token, footprints):
    f = _filters(footprints[0][0])
    data = _list(host, token, [("geography", f["geography"])])
    assert len(data) == 3 and all(pf["pcf"]["geographyCountry"] == f["geography"] == "CN" for pf in data)


def test_case_23_filter_by_classification(host, token, footprints):
    f = _filters(footprints[0][0])
    data = _list(host, token, [("classification", f["classification"])])
    assert [pf["id"] for pf in data] == [host.docs["a1"]["id"], host.docs["a2"]["id"]]
    assert all(f["classification"] in pf["productClassifications"] for pf in data)


def test_case_24_filter_by_validon(host, token, footprints):
    f = _filters(footprints[0][0])
    assert f["validOn"] == "2026-03-31T16:00:00.000Z"  # each is valid from its reference end for 3 years
    assert len(_list(host, token, [("validOn", f["validOn"])])) == 3


def test_case_25_filter_by_validafter(host, token, footprints):
    f = _filters(footprints[0][0])
    assert f["validAfter"] == "2026-03-30T16:00:00Z"
    assert len(_list(host, token, [("validAfter", f["validAfter"])])) == 3  # validity starts after it


def test_case_26_filter_by_validbefore(host, token, footprints):
    f = _filters(footprints[0][0])
    assert f["validBefore"] == "2029-04-01T16:00:00Z"
    assert len(_list(host, token, [("validBefore", f["validBefore"])])) == 3  # validity ends 2029-03-31T16:00Z


def test_case_27_filter_by_status(host, token, footprints):
    f = _filters(footprints[0][0])
    data = _list(host, token, [("status", f["status"])])
    assert f["status"] == "Deprecated" and [pf["id"] for pf in data] == [host.docs["a1"]["id"]]
    assert [pf["id"] for pf in _list(host, token, [("status", "Active")])] == [host.docs["b1"]["id"], host.docs["a2"]["id"]]


def test_case_28_filter_by_status_and_productid(host, token, footprints):
    f = _filters(footprints[0][0])
    data = _list(host, token, [("status", f["status"]), ("productId", f["productId"])])
    assert [pf["id"] for pf in data] == [host.docs["a1"]["id"]]
    assert [pf["id"] for pf in _list(host, token, [("status", "Active"), ("productId", A_URN)])] == [host.docs["a2"]["id"]]


def test_case_29_filter_by_several_companyids_or(host, token, footprints):
    f = _filters(footprints[0][0])
    data = _list(host, token, [("companyId", f["companyId"]), ("companyId", "Xk3pQ9wZ"), ("companyId", "aB7mN2rT")])
    assert len(data) == 3 and all(f["companyId"] in pf["companyIds"] for pf in data)


def _empty(host, token, query: list[tuple[str, str]]) -> None:
    status, _, body = call("GET", f"{host.base}/3/footprints?{urlencode(query)}", headers=_bearer(token),
                           context=host.ssl)
    assert status == 200 and body == {"data": []}, body


def test_case_30_filter_by_productid_negative(host, token):
    _empty(host, token, [("productId", "urn:bogus:product:Hq2Lm8Pz4Rt6Vw1Y")])


def test_case_31_filter_by_companyid_negative(host, token):
    _empty(host, token, [("companyId", "urn:bogus:company:Jd5Kf7Gh9Ls2Qa4E")])


def test_case_32_filter_by_geography_negative(host, token):
    _empty(host, token, [("geography", "XX")])


def test_case_33_filter_by_classification_negative(host, token):
    _empty(host, token, [("classification", "urn:bogus:classification:Wm3Nb6Vc8Xz1Pl5K")])


def test_case_34_filter_by_validon_negative(host, token):
    _empty(host, token, [("validOn", "1900-01-01T00:00:00Z")])


def test_case_35_filter_by_validafter_negative(host, token):
    _empty(host, token, [("validAfter", "2099-12-31T23:59:59Z")])


def test_case_36_filter_by_validbefore_negative(host, token):
    _empty(host, token, [("validBefore", "1900-01-01T00:00:00Z")])


def test_case_37_filter_by_status_negative(host, token):
    _empty(host, token, [("status", "BogusStatusTq4Ry7Ui")])


def test_case_38_several_filters_and_negative(host, token):
    _empty(host, token, [("companyId", "urn:bogus:company:5FIi8zS3"), ("productId", "urn:bogus:product:nonexistent123")])


def test_case_39_several_companyids_or_negative(host, token):
    _empty(host, token, [("companyId", "urn:bogus:company:nonexistent1"), ("companyId", "urn:bogus:company:nonexistent2"),
                         ("companyId", "urn:bogus:company:nonexistent3")])
