"""PACT footprints with a life cycle in the store (twin/pact_api/repository.py), on the worked quarter
of tests/support/carbon_exchange.py: board-a (89,100 + 32,400) kg / 100,000 good units = 1.215 kg
a piece, board-b (29,700 + 10,800) / 20,000 = 2.025 kg a piece.

A second report of the quarter counting 120,000 good units of board-a declares (89,100 + 32,400) /
120,000 = 1.0125 kg a piece: a change, so a new footprint that supersedes the first.
"""

from __future__ import annotations

import json
import sqlite3
import uuid

import pytest

from carbon import ProductOutput, Registry, SharedLoad, StationUse, allocate, build_inventory
from carbon.reports.pact import footprint_id, footprint_series, validate_footprint
from tests.support.carbon_exchange import CFG, PACT, SITE, T0, T1, TZ, inventory, records
from twin.pact_api.repository import FootprintRepository
from twin.store import SCHEMA_VERSION

A_URN = "urn:pact:example.com:supplier-id:board-a"
B_URN = "urn:pact:example.com:supplier-id:board-b"
COMPANY = "urn:pact:example.com:company-id:plant1"
START, END = "2025-12-31T16:00:00.000Z", "2026-03-31T16:00:00.000Z"


def _series(product_urn: str) -> uuid.UUID:
    return footprint_series(COMPANY, product_urn, START, END, "measured")


def _inventory_with_board_a(good_units: int) -> dict:
    alloc = allocate([StationUse("line/press", 259_200.0, machine_time_s={"board-a": 3.0e6, "board-b": 1.0e6})],
                     [ProductOutput("board-a", good_units, 0.5), ProductOutput("board-b", 20_000, 1.0)],
                     [SharedLoad("gas (Scope 1)", "fuel", 43_200.0)], 118_800.0 / 259_200.0)
    return build_inventory(records(), Registry.default(), (T0, T1), SITE, alloc, CFG, TZ)


@pytest.fixture()
def repo(tmp_path):
    return FootprintRepository(tmp_path / "store.db")


def test_first_report_publishes_revision_one_of_each_product(repo):
    result = repo.publish_report(inventory(), PACT, created="2026-04-01T00:00:00Z")
    assert result.summary() == {"footprints": 2, "new": 2, "superseding": 0, "deprecated": 0, "unchanged": 0}
    a, b = result.docs
    assert a["id"] == footprint_id(_series(A_URN), 1) and b["id"] == footprint_id(_series(B_URN), 1)
    assert (a["pcf"]["pcfExcludingBiogenicUptake"], b["pcf"]["pcfExcludingBiogenicUptake"]) == ("1.215", "2.025")
    assert a["status"] == b["status"] == "Active" and "precedingPfIds" not in a
    for pf in result.docs:
        validate_footprint(pf)
        assert repo.get(None, pf["id"]) == pf


def test_the_same_figures_again_change_nothing(repo):
    first = repo.publish(inventory(), PACT, created="2026-04-01T00:00:00Z")
    again = repo.publish_report(inventory(), PACT, created="2026-05-01T00:00:00Z")
    assert again.summary()["unchanged"] == 2 and again.summary()["new"] == 0
    assert again.docs == first  # the stored footprints, made 1 April, not copies made 1 May
    assert repo.list(None)[1] == 2
    assert repo.changes("customer")[0] == [pf["id"] for pf in first]


def test_different_figures_supersede_the_footprint_of_the_product_and_period(repo):
    a1, b1 = repo.publish(inventory(), PACT)
    told = repo.changes("customer")[1]
    repo.mark_told("customer", told)
    result = repo.publish_report(_inventory_with_board_a(120_000), PACT)
    assert result.summary() == {"footprints": 2, "new": 0, "superseding": 1, "deprecated": 1, "unchanged": 1}
    a2, b = result.docs
    assert a2["pcf"]["pcfExcludingBiogenicUptake"] == "1.0125"
    assert a2["id"] == footprint_id(_series(A_URN), 2) != a1["id"]
    assert a2["precedingPfIds"] == [a1["id"]] and a2["status"] == "Active"
    assert b == b1
    old = repo.get(None, a1["id"])
    assert old["status"] == "Deprecated"
    assert {k: v for k, v in old.items() if k != "status"} == {k: v for k, v in a1.items() if k != "status"}
    validate_footprint(old)
    # the customer told of the first two is told of the deprecated one and its successor, once each
    assert repo.changes("customer")[0] == [a1["id"], a2["id"]]
    # a third figure: revision 3 names both before it, newest first; only it is Active
    a3 = repo.publish(_inventory_with_board_a(150_000), PACT)[0]
    assert a3["pcf"]["pcfExcludingBiogenicUptake"] == "0.81"  # 121,500 / 150,000
    assert a3["precedingPfIds"] == [a2["id"], a1["id"]]
    active, n = repo.list(None, {"status": ["Active"]})
    assert n == 2 and [pf["id"] for pf in active] == [b1["id"], a3["id"]]
    assert [pf["id"] for pf in repo.list(None, {"status": "deprecated"})[0]] == [a1["id"], a2["id"]]


def test_ids_are_the_same_in_any_store_that_saw_the_same_reports(tmp_path):
    ids = []
    for name in ("one.db", "two.db"):
        repo = FootprintRepository(tmp_path / name)
        repo.publish(inventory(), PACT)
        ids.append([pf["id"] for pf in repo.publish(_inventory_with_board_a(120_000), PACT)])
    assert ids[0] == ids[1]


def test_footprints_are_seen_only_by_the_clients_they_are_shared_with(repo):
    a, _b = repo.publish(inventory(), PACT, shared_with=["acme"])
    assert repo.list("acme")[1] == 2 and repo.list("globex") == ([], 0)
    assert repo.get("globex", a["id"]) is None and repo.exists(a["id"])
    assert repo.get("acme", a["id"]) == a
    assert repo.get(None, a["id"]) == a  # the data owner sees everything
    assert repo.changes("globex") == ([], 2)
    repo.publish(inventory(), PACT, shared_with=None)  # sharing is set again by every publish
    assert repo.list("globex")[1] == 2
    assert repo.get("acme", str(uuid.uuid4())) is None and not repo.exists("not-an-id")


def test_deprecate_without_a_successor(repo):
    a, _ = repo.publish(inventory(), PACT)
    assert repo.deprecate(a["id"]) and repo.get(None, a["id"])["status"] == "Deprecated"
    assert repo.deprecate(a["id"])  # again: no second change
    assert repo.changes("c")[0] == [a["id"], _["id"]] and repo.changes("c")[1] == 3
    assert not repo.deprecate("no-such-id")


def test_the_store_gets_the_footprint_tables_by_migration(tmp_path):
    FootprintRepository(tmp_path / "s.db")
    db = sqlite3.connect(tmp_path / "s.db")
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"footprint", "footprint_change", "footprint_notice"} <= tables


def test_stored_documents_are_the_published_json(repo):
    docs = repo.publish(inventory(), PACT)
    db = sqlite3.connect(repo.path)
    assert [json.loads(d) for (d,) in db.execute("SELECT doc FROM footprint ORDER BY seq")] == docs


def test_a_list_sees_what_another_process_published_since(tmp_path):
    server, reporter = FootprintRepository(tmp_path / "s.db"), FootprintRepository(tmp_path / "s.db")
    assert server.list(None) == ([], 0)
    _a1, b1 = reporter.publish(inventory(), PACT)
    assert server.list(None)[1] == 2
    a2 = reporter.publish(_inventory_with_board_a(120_000), PACT)[0]
    docs, n = server.list(None)
    assert n == 3 and [d["status"] for d in docs] == ["Deprecated", "Active", "Active"] and docs[2] == a2
    assert reporter.deprecate(b1["id"]) and server.list(None, {"status": "Active"})[0] == [a2]
    server.close()
    assert server.list(None)[1] == 3  # reopens after close
