"""twin/rollup.py: the site of the lines' windows, by hand; and what ``run --lines`` owns (twin/runtime/lines.py)."""

from __future__ import annotations

import pytest

from connectors.mapping import Mapping
from factory_models import Factory, Sample
from factory_models.records import KpiWindow, iso_utc
from tests.support.factories import POWER
from twin.rollup import pick_windows, rollup, sum_windows
from twin.runtime.lines import elsewhere, narrow_mapping, notes, owned_factory, partition
from twin.shadow.live_twin import LiveTwin


def w(line, start, end, **kw) -> KpiWindow:
    return KpiWindow(site="s", line=line, station=None, start=float(start), end=float(end), **kw)


def test_sums_time_and_counts_and_recomputes_every_ratio():
    # line a: 60 s, APT 40 of PBT 50, performance 0.75 (ideal 30 s), 10 produced, 9 good, 1 failure of 5 s
    # line b: 60 s, APT 20 of PBT 60, performance 0.5 (ideal 10 s), 4 produced, 4 good, 1 failure of 15 s
    a = w("a", 0, 60, pot_s=60, pbt_s=50, apt_s=40, asut_s=5, adet_s=5, produced=10, good=9, scrap=1, failures=1,
          performance=0.75, mttr_s=5.0, energy_kwh=2.0, co2e_kg=1.0)
    b = w("b", 0, 60, pot_s=60, pbt_s=60, apt_s=20, adet_s=15, adot_s=25, produced=4, good=4, failures=1,
          performance=0.5, mttr_s=15.0, energy_kwh=1.0, co2e_kg=0.5)
    k = sum_windows([a, b])
    assert (k["pot_s"], k["pbt_s"], k["apt_s"], k["asut_s"], k["adet_s"], k["adot_s"]) == (120, 110, 60, 5, 20, 25)
    assert (k["produced"], k["good"], k["scrap"], k["failures"]) == (14, 13, 1, 2)
    assert k["ideal_s"] == 40.0 and k["repair_s"] == 20.0
    assert k["availability"] == pytest.approx(60 / 110)
    assert k["performance"] == pytest.approx(40 / 60)  # not (0.75 + 0.5) / 2 = 0.625
    assert k["quality"] == pytest.approx(13 / 14)
    assert k["oee"] == pytest.approx(60 / 110 * 40 / 60 * 13 / 14)
    assert k["nee"] == pytest.approx(65 / 110 * 40 / 60 * 13 / 14)
    assert k["mtbf_s"] == 32.5 and k["mttr_s"] == 10.0
    assert k["energy_kwh"] == 3.0 and k["kwh_per_good"] == pytest.approx(3 / 13) and k["co2e_kg"] == 1.5
    assert k["flags"] == []


def test_undefined_ratios_stay_none_and_unknown_energy_makes_the_sum_partial():
    idle = w("a", 0, 60, pot_s=60, pbt_s=0, adot_s=60, energy_kwh=None)
    busy = w("b", 0, 60, pot_s=60, pbt_s=60, apt_s=60, energy_kwh=0.5)  # producing, nothing finished yet
    k = sum_windows([idle, busy])
    assert k["availability"] == 1.0 and k["performance"] is None and k["quality"] is None and k["oee"] is None
    assert k["mtbf_s"] is None and k["energy_kwh"] == 0.5 and k["flags"] == ["energy_partial"]
    assert sum_windows([w("a", 0, 60, produced=2, produced_in_gap=1, apt_s=10, pbt_s=60, performance=0.5,
                          good=2)])["flags"] == ["produced_in_gap"]


def test_minutes_are_taken_and_a_window_over_them_is_skipped():
    minutes = [w("a", 60 * i, 60 * (i + 1), apt_s=60) for i in range(3)]
    whole = w("a", 0, 175, apt_s=175)  # a run's whole-run row: the same time again
    taken, skipped = pick_windows([whole, *minutes])
    assert [x.start for x in taken] == [0, 60, 120] and skipped == 1
    assert pick_windows([whole])[0] == [whole]


def test_coverage_names_the_lines_of_each_span_and_the_missing_ones():
    ws = [w("a", 0, 60, apt_s=60), w("a", 60, 120, apt_s=60), w("b", 0, 60, apt_s=30)]
    doc = rollup(ws, 0.0, 120.0, expected_lines=["a", "b", "c"])
    assert doc["site_kpis"]["apt_s"] == 150
    assert doc["coverage"]["spans"] == [
        {"from": iso_utc(0), "to": iso_utc(60), "seconds": 60.0, "lines": ["a", "b"]},
        {"from": iso_utc(60), "to": iso_utc(120), "seconds": 60.0, "lines": ["a"]},
    ]
    assert doc["coverage"]["complete"] is False and doc["coverage"]["missing_lines"] == ["c"]
    assert doc["notes"] == ["no windows of line(s) c in the period: the site figures leave them out"]
    whole = rollup(ws[:2], 0.0, 120.0, expected_lines=["a"])
    assert whole["coverage"]["complete"] is True and whole["lines"]["a"]["windows"] == 2
    with pytest.raises(ValueError, match="several sites"):
        rollup([*ws, KpiWindow(site="t", line="a", station=None, start=0.0, end=60.0)], 0.0, 120.0)


# --- run --lines -------------------------------------------------------------------------------

def three_lines() -> Factory:
    st = {"cycle_time_s": {"p": 10}, "power_kw": POWER}
    return Factory.model_validate({
        "site": {"name": "site1"}, "products": [{"name": "p"}],
        "lines": [{"name": n, "stations": [{"name": "m1", **st}, {"name": "m2", **st}]} for n in ("l1", "l2", "l3")],
        "meters": [{"name": "grid", "kind": "grid_import"}],
    })


def test_partition_names_unknown_lines_and_gives_the_meters_to_the_first_lines_owner():
    f = three_lines()
    with pytest.raises(ValueError, match=r"unknown line\(s\) x, y; the factory has l1, l2, l3"):
        partition(f, "l1,x,y")
    assert partition(f, "l3,l1").lines == ("l1", "l3") and partition(f, "l3,l1").meters is True
    assert partition(f, "l2").meters is False and partition(f, "l2", meters=True).meters is True
    part = partition(f, "l2")
    sub = owned_factory(f, part)
    assert [ln.name for ln in sub.lines] == ["l2"] and sub.meters == []
    assert "l1/m1/state" in elsewhere(f, part) and "site/grid/energy_kwh" in elsewhere(f, part)
    assert "l2/m1/state" not in elsewhere(f, part)
    assert partition(f, "l1,l2").tag() == "l1-l2-site"
    many = Factory.model_validate({**f.model_dump(), "lines": [
        {**f.lines[0].model_dump(), "name": f"line-number-{i:02d}"} for i in range(8)]})
    tag = partition(many, ",".join(ln.name for ln in many.lines)).tag()
    assert len(tag) == 10 and tag == partition(many, ",".join(ln.name for ln in many.lines)).tag()  # a digest
    # the meters' owner of a split site without a grid meter is told what its ledger misses
    assert notes(f, partition(f, "l1")) == []  # three_lines has a grid meter
    bare = Factory.model_validate({**f.model_dump(), "meters": []})
    assert notes(bare, partition(bare, "l1")) == [
        "no grid-import meter: the emissions ledger's station-energy stand-in covers lines l1 only, "
        "not the lines of the other processes"]
    assert notes(bare, partition(bare, "l2")) == [] and notes(bare, partition(bare, "l1,l2,l3")) == []


def test_the_mapping_is_narrowed_to_the_owned_lines_with_a_session_of_their_own():
    f = three_lines()
    m = Mapping.model_validate({"site": "site1", "mqtt": [{
        "name": "broker", "client_id": "ft", "topics": [
            {"pattern": "factory/{site}/{line}/{station}/{signal}"},
            {"pattern": "plant/l3/{station}/power", "signal": "l3/{station}/power_kw"},
            {"pattern": "meters/{meter}/kwh", "signal": "site/{meter}/energy_kwh"}]}],
        "opcua": [{"name": "plc", "endpoint": "opc.tcp://127.0.0.1:4840", "nodes": [
            {"node": "nsu=urn:x;s=a", "signal": "l1/m1/state"}, {"node": "nsu=urn:x;s=b", "signal": "l2/m1/state"},
            {"browse": "Objects/{line}/{station}/{signal}"}]}]})
    n = narrow_mapping(m, partition(f, "l2,l3"))
    src = n.mqtt[0]
    assert src.client_id == "ft-l2-l3"
    assert [(t.pattern, t.signal) for t in src.topics] == [
        ("factory/{site}/l2/{station}/{signal}", "l2/{station}/{signal}"),
        ("factory/{site}/l3/{station}/{signal}", "l3/{station}/{signal}"),
        ("plant/l3/{station}/power", "l3/{station}/power_kw"),
    ]
    assert [(x.node, x.browse, x.signal) for x in n.opcua[0].nodes] == [
        ("nsu=urn:x;s=b", None, "l2/m1/state"),
        (None, "Objects/l2/{station}/{signal}", "l2/{station}/{signal}"),
        (None, "Objects/l3/{station}/{signal}", "l3/{station}/{signal}"),
    ]
    first = narrow_mapping(m, partition(f, "l1"))  # the meters' owner reads the site's meters too
    assert first.mqtt[0].client_id == "ft-l1-site"
    assert [t.pattern for t in first.mqtt[0].topics] == [
        "factory/{site}/l1/{station}/{signal}", "factory/{site}/site/{station}/{signal}", "meters/{meter}/kwh"]
    only_plc = Mapping.model_validate({"site": "site1", "opcua": [{
        "name": "plc", "endpoint": "opc.tcp://127.0.0.1:4840", "nodes": [{"node": "nsu=urn:x;s=a", "signal": "l1/m1/state"}]}]})
    with pytest.raises(ValueError, match="--lines l2: the mapping has no source for these lines"):
        narrow_mapping(only_plc, partition(f, "l2"))


def test_another_process_s_signal_is_counted_as_other_process_not_unknown():
    f = three_lines()
    part = partition(f, "l2")
    twin = LiveTwin(owned_factory(f, part), clock=lambda: 1000.0)
    twin.router.elsewhere = elsewhere(f, part)
    assert twin.add(Sample("l2/m1/state", "PRODUCING", 990.0))
    assert not twin.add(Sample("l1/m1/state", "PRODUCING", 990.0))
    assert not twin.add(Sample("l9/m1/state", "PRODUCING", 990.0))
    assert twin.router.counts()["rejected_by_reason"] == {"other_process": 1, "unknown_signal": 1}
