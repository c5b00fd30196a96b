"""The v3 ListFootprints filters over the worked quarter's two footprints (tests/support/carbon_exchange.py).

Both declare company urn:pact:example.com:company-id:plant1, country CN and the reference period
ending 2026-03-31T16:00Z, so with no validity period given each is valid from 2026-03-31T16:00Z to
2029-03-31T16:00Z (reference end + 3 years, spec/v3/index.md, Validity Period); only board-a has a
classification (urn:pact:example.com:cn-code:85340011).
"""

from __future__ import annotations

import pytest

from tests.support.carbon_exchange import PACT, inventory
from twin.pact_api.filters import FilterError, parse_filters, validity
from twin.pact_api.repository import FootprintRepository

A = "urn:pact:example.com:supplier-id:board-a"
B = "urn:pact:example.com:supplier-id:board-b"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    r = FootprintRepository(tmp_path_factory.mktemp("f") / "store.db")
    r.publish(inventory(), PACT)
    return r


def _products(repo, filters, **kw):
    docs, total = repo.list(None, filters, **kw)
    return [pf["productIds"][0].rsplit(":", 1)[1] for pf in docs], total


@pytest.mark.parametrize("filters, expected", [
    ({}, ["board-a", "board-b"]),
    ({"productId": [A.upper()]}, ["board-a"]),  # case-insensitive
    ({"productId": [A, B]}, ["board-a", "board-b"]),  # OR within a filter
    ({"productId": ["urn:bogus:product:nonexistent123"]}, []),
    ({"companyId": ["urn:pact:example.com:company-id:PLANT1", "urn:uuid:other-company"]}, ["board-a", "board-b"]),
    ({"companyId": ["urn:pact:example.com:company-id:plant1", "aB3xYz12"]}, ["board-a", "board-b"]),  # #29: not URNs
    ({"productId": ["4712345060507"]}, []),  # not a URN: matches nothing, no error
    ({"companyId": ["urn:bogus:company:nonexistent456"]}, []),
    ({"geography": ["cn"]}, ["board-a", "board-b"]),
    ({"geography": ["XX"]}, []),
    ({"classification": ["urn:pact:example.com:cn-code:85340011"]}, ["board-a"]),
    ({"classification": ["urn:bogus:classification:nonexistent789"]}, []),
    ({"productId": [B], "geography": ["CN"]}, ["board-b"]),  # AND across filters
    ({"productId": [B], "classification": ["urn:pact:example.com:cn-code:85340011"]}, []),
    ({"validOn": "2026-03-31T16:00:00Z"}, ["board-a", "board-b"]),  # the start is inclusive
    ({"validOn": "2026-04-01T00:00:00+08:00"}, ["board-a", "board-b"]),  # the same instant
    ({"validOn": "2026-03-31T15:59:59Z"}, []),
    ({"validOn": "2029-03-31T16:00:00Z"}, ["board-a", "board-b"]),  # the end is inclusive for validOn
    ({"validOn": "2029-03-31T16:00:01Z"}, []),
    ({"validOn": "1900-01-01T00:00:00Z"}, []),
    ({"validAfter": "2026-03-31T15:59:59Z"}, ["board-a", "board-b"]),  # start > validAfter
    ({"validAfter": "2026-03-31T16:00:00Z"}, []),
    ({"validAfter": "2099-12-31T23:59:59Z"}, []),
    ({"validBefore": "2029-03-31T16:00:01Z"}, ["board-a", "board-b"]),  # end < validBefore
    ({"validBefore": "2029-03-31T16:00:00Z"}, []),
    ({"validBefore": "1900-01-01T00:00:00Z"}, []),
    ({"status": ["active"]}, ["board-a", "board-b"]),
    ({"status": ["Deprecated"]}, []),
    ({"status": ["BogusStatusValue"]}, []),  # conformance test case #37: an empty list, not an error
    ({"status": ["Active"], "productId": [A]}, ["board-a"]),
])
def test_filters_worked_by_hand(repo, filters, expected):
    assert _products(repo, filters) == (expected, len(expected))


def test_pages_in_publication_order_with_the_total(repo):
    assert _products(repo, {}, limit=1) == (["board-a"], 2)
    assert _products(repo, {}, limit=1, offset=1) == (["board-b"], 2)
    assert _products(repo, {}, limit=5, offset=2) == ([], 2)
    assert _products(repo, {}, limit=0) == ([], 2)


@pytest.mark.parametrize("filters, message", [
    ({"validOn": "yesterday"}, "validOn: 'yesterday' is not an RFC 3339 date-time"),
    ({"validAfter": "2026-01-01T00:00:00"}, "validAfter: '2026-01-01T00:00:00' has no UTC offset"),
    ({"companyId": [""]}, "companyId: expected a non-empty string"),
    ({"geography": [3]}, "geography: expected a non-empty string, got 3"),
    ({"productId": []}, "productId: no value given"),
    ({"productid": [A]}, "unknown filter 'productid'"),
    ({"$filter": "companyName eq 'x'"}, "unknown filter '$filter'"),
])
def test_a_filter_of_the_wrong_type_is_an_error_naming_it(repo, filters, message):
    with pytest.raises(FilterError, match=message.replace("$", r"\$")):
        repo.list(None, filters)


@pytest.mark.parametrize("limit, offset", [(-1, 0), (1, -1), ("2", 0), (True, 0)])
def test_limit_and_offset_must_be_whole_numbers(repo, limit, offset):
    with pytest.raises(FilterError, match="expected a whole number 0 or more"):
        repo.list(None, {}, limit, offset)


def test_given_validity_period_and_a_29_february_reference_end():
    pf = {"pcf": {"referencePeriodEnd": "2028-02-29T00:00:00Z"}}
    start, end = validity(pf)
    assert (start.isoformat(), end.isoformat()) == ("2028-02-29T00:00:00+00:00", "2031-02-28T00:00:00+00:00")
    pf.update(validityPeriodStart="2028-06-01T00:00:00Z", validityPeriodEnd="2029-06-01T00:00:00Z")
    crit = parse_filters({"validOn": ["2028-03-01T00:00:00Z", "2028-07-01T00:00:00Z"]})  # OR: the second is in
    assert crit.matches(pf)
    assert not parse_filters({"validOn": "2028-03-01T00:00:00Z"}).matches(pf)
