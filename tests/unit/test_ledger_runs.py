"""Runs into the hourly ledger (issue 11): the same replay twice, two overlapping runs, a meter
replaced mid-month through `replay`, the stations stand-in, and a run's printed totals = the stored ones."""

from __future__ import annotations

import math
import sqlite3
from datetime import UTC, datetime

import pytest

from tests.support.ledger_cases import (
    HOUR,
    assert_emissions_are_the_stored_ones,
    factory_file,
    held,
    register,
    replay,
    rewrites,
    samples_file,
    station_running,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp() - 8 * HOUR  # 1 January 00:00 in Shanghai
F = 0.5366  # cn-mee-2022-national, kg CO2 per kWh


def sums(records):
    return (math.fsum(r.co2e_kg for r in records if r.scope == "1"),
            math.fsum(r.co2e_kg for r in records if r.method == "location"))


def test_the_same_replay_twice_changes_no_row_but_writes(tmp_path):
    config = factory_file(tmp_path, "grid", "boiler")
    rows = register(T0, [100.0 + h for h in range(10)], "site/grid/energy_kwh", base=5000.0)
    rows += register(T0, [2.0] * 10, "site/boiler/volume_nm3")
    samples = samples_file(tmp_path / "a.csv", rows)
    store = tmp_path / "s.sqlite"
    doc = replay(config, samples, "--store", str(store))
    first = held(store)
    assert len(first) == 20 and rewrites(store) == 0
    db = sqlite3.connect(store)
    rows_before = db.execute("SELECT * FROM emissions ORDER BY start, source").fetchall()
    doc2 = replay(config, samples, "--store", str(store))
    assert held(store) == first
    rows_after = db.execute("SELECT * FROM emissions ORDER BY start, source").fetchall()
    # every column the same but the last (writes), which went from 1 to 2
    assert [r[:-1] for r in rows_after] == [r[:-1] for r in rows_before]
    assert {r[-1] for r in rows_before} == {1} and {r[-1] for r in rows_after} == {2}
    assert rewrites(store) == 10 and rewrites(store, origin="simulated") == 0
    assert doc2["emissions"] == doc["emissions"]
    # the run's printed totals are the stored ones: 1,045 kWh x 0.5366, and 20 Nm3 of gas
    s1, s2 = sums(first)
    assert doc["emissions"]["scope2_location_co2e_kg"] == pytest.approx(s2, rel=1e-9)
    assert s2 == pytest.approx(1045.0 * F, rel=1e-12)
    assert doc["emissions"]["scope1_co2e_kg"] == pytest.approx(s1, rel=1e-9) and s1 > 0
    assert {r.origin for r in first} == {"measured"}
    # and `report --origin measured` over the replay's hours says the same
    assert_emissions_are_the_stored_ones(doc, store, "measured", config, once=False)


def test_two_overlapping_runs_replace_the_hours_they_share(tmp_path):
    """Run A: hours 0-9 at 100 kWh; run B: hours 5-14 at 200 kWh. The store holds hours 0-4 of A
    and 5-14 of B: 5 x 100 + 10 x 200 = 2,500 kWh, never A and B added; five hours written twice."""
    config = factory_file(tmp_path, "grid")
    store = tmp_path / "s.sqlite"
    a = samples_file(tmp_path / "a.csv", register(T0, [100.0] * 10, "site/grid/energy_kwh"))
    b = samples_file(tmp_path / "b.csv", register(T0 + 5 * HOUR, [200.0] * 10, "site/grid/energy_kwh", base=7.0))
    replay(config, a, "--store", str(store))
    replay(config, b, "--store", str(store))
    recs = held(store)
    assert [r.activity for r in recs] == [100.0] * 5 + [200.0] * 10
    assert math.fsum(r.activity for r in recs) == 2500.0
    assert rewrites(store) == 5 and rewrites(store, T0, T0 + 5 * HOUR) == 0


def test_a_meter_replaced_mid_month_through_replay_and_the_store(tmp_path):
    """January in Shanghai, hourly readings: the old meter gains 100 kWh an hour from 52,000 until
    15 January 10:00; at 11:00 the new one reads 12, then gains 100 an hour. 34,600 + 12 + 39,700 =
    74,312 kWh in 744 hours; once, not one segment (the old bug kept only the last one)."""
    config = factory_file(tmp_path, "grid")
    swap = 14 * 24 + 10
    old = register(T0, [100.0] * swap, "site/grid/energy_kwh", base=52_000.0)
    new = register(T0 + (swap + 1) * HOUR, [100.0] * (744 - swap - 1), "site/grid/energy_kwh", base=12.0)
    store = tmp_path / "s.sqlite"
    doc = replay(config, samples_file(tmp_path / "m.csv", old + new), "--store", str(store))
    recs = held(store)
    assert len(recs) == 744
    assert math.fsum(r.activity for r in recs) == pytest.approx(74_312.0, rel=1e-12)
    swap_hour = next(r for r in recs if r.start == T0 + swap * HOUR)
    assert (swap_hour.activity, swap_hour.resets) == (12.0, 1)
    assert doc["emissions"]["scope2_location_co2e_kg"] == pytest.approx(74_312.0 * F, rel=1e-9)
    (grid,) = doc["emissions"]["meters"]
    assert (grid["readings_used"], grid["resets"], grid["estimated_hours"]) == (745, 1, 0)


def test_without_a_grid_meter_the_stations_stand_in_estimated(tmp_path):
    config = factory_file(tmp_path)
    rows = station_running(T0) + register(T0, [10.0, 12.0], "line1/reflow/energy_kwh")
    doc = replay(config, samples_file(tmp_path / "st.csv", rows), "--store", str(tmp_path / "s.sqlite"))
    recs = held(tmp_path / "s.sqlite")
    assert [(r.source, r.activity, r.data_quality, r.estimated_activity) for r in recs] == [
        ("stations", 10.0, "estimated", 10.0), ("stations", 12.0, "estimated", 12.0)]
    assert doc["emissions"]["scope2_location_co2e_kg"] == pytest.approx(22.0 * F, rel=1e-9)
    assert any("sum of station sub-meters" in n for n in doc["emissions"]["notes"])
    (reflow,) = doc["stations"]
    assert reflow["co2e_kg"] == pytest.approx(22.0 * F, rel=1e-9)


def test_bad_meter_readings_are_counted_in_the_summary(tmp_path):
    """A reading of 90 between 100 and 130 (out of order or misread): rejected as a dip, counted."""
    config = factory_file(tmp_path, "grid")
    rows = [(T0, "site/grid/energy_kwh", 0.0), (T0 + 1200, "site/grid/energy_kwh", 100.0),
            (T0 + 2400, "site/grid/energy_kwh", 90.0), (T0 + HOUR, "site/grid/energy_kwh", 130.0)]
    doc = replay(config, samples_file(tmp_path / "bad.csv", rows))
    (grid,) = doc["emissions"]["meters"]
    assert grid["rejected"] == {"dip": 1} and grid["resets"] == 0
    assert doc["emissions"]["scope2_location_co2e_kg"] == pytest.approx(130.0 * F, rel=1e-12)
    assert any("1 dip" in n for n in doc["emissions"]["notes"])


def test_a_configured_rollover_wraps_through_replay(tmp_path):
    """`rollover: 99999` on the grid meter: 99,950, 99,990, 30, 70 are 40 kWh an hour (not a reset)."""
    config = factory_file(tmp_path, "grid_wrap")
    rows = [(T0 + h * HOUR, "site/grid/energy_kwh", v) for h, v in enumerate([99_950.0, 99_990.0, 30.0, 70.0])]
    doc = replay(config, samples_file(tmp_path / "w.csv", rows))
    (grid,) = doc["emissions"]["meters"]
    assert (grid["rollovers"], grid["resets"]) == (1, 0)
    assert doc["emissions"]["scope2_location_co2e_kg"] == pytest.approx(120.0 * F, rel=1e-12)
