"""Parts counted across a connection gap (issue 12, item 6): reported as ``produced_in_gap`` and left
out of performance with the PRODUCING time around the gap. Figures worked by hand."""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from factory_models.schema import Factory
from factory_models.states import State
from twin.kpi import compute_kpis
from twin.kpi.eventlog import Channel, EventLog
from twin.store import MIGRATIONS, Store

P, UNK = State.PRODUCING, State.UNKNOWN
T0 = 1_772_431_200.0  # 2026-03-02T06:00:00Z


def factory() -> Factory:
    return Factory.model_validate({
        "site": {"name": "s"}, "products": [{"name": "p"}],
        "lines": [{"name": "l", "stations": [{"name": "m", "cycle_time_s": {"p": 30}, "power_kw": {
            "producing": 1, "setup": 1, "down": 1, "idle": 1, "planned_stop": 1, "no_shift": 0}}]}]})


def gap_example(f: Factory) -> EventLog:
    """Two hours of production at a true cycle of 40 s (ideal 30 s: true performance 0.75).

    The connection is lost from 3,200 s to 5,000 s (UNKNOWN; in truth the machine kept producing).
    The counter is read every 1,000 s while connected, and first again at 5,600 s.
    """
    log = EventLog(units=f.unit_names(), n_stations=1, products=f.product_names(), t_start=T0, t_end=T0 + 7200)
    for t, s in [(0, P), (3200, UNK), (5000, P)]:
        log.state(T0 + t, 0, int(s))
    # 40 s a part: 25 per 1,000 s; 3,000 -> 5,600 s is 2,600 s = 65 parts
    for t, v in [(0, 0), (1000, 25), (2000, 50), (3000, 75), (5600, 140), (6600, 165), (7200, 180)]:
        log.count(T0 + t, 0, Channel.PRODUCED, v)
    return log


def test_parts_across_a_gap_are_reported_not_credited_to_known_time():
    f = factory()
    report = compute_kpis(gap_example(f), f)
    st = report.stations[0]
    # APT = 3,200 + 2,200 = 5,400 s; UNKNOWN 1,800 s is outside POT: POT = PBT = 5,400 s
    assert (st.apt_s, st.unknown_s, st.pbt_s) == pytest.approx((5400, 1800, 5400))
    assert st.availability == pytest.approx(1.0)
    # every part counted stays in produced (and quality); the 65 read across the gap are named
    assert (st.produced, st.produced_in_gap, st.good) == (180, 65, 180)
    # before: 30 x 180 / 5,400 = 1.0 (the gap's 65 parts credited to known time).
    # now: the readings at 3,000 and 5,600 s bracket the gap; the PRODUCING time between them,
    # 3,000-3,200 and 5,000-5,600 = 800 s, goes with their 65 parts:
    # performance = 30 x (180 - 65) / (5,400 - 800) = 3,450 / 4,600 = 0.75, the truth
    assert st.performance == pytest.approx(0.75)
    assert st.quality == pytest.approx(1.0)
    assert st.oee == pytest.approx(0.75)
    # line and site carry the output station's figure
    assert report.lines[0].produced_in_gap == 65 and report.site.produced_in_gap == 65
    assert report.lines[0].performance == pytest.approx(0.75)
    assert st.to_json()["produced_in_gap"] == 65


def test_gap_parts_per_window():
    f = factory()
    edges = np.array([T0, T0 + 3600, T0 + 7200])
    w0, w1 = [w for w in compute_kpis(gap_example(f), f, edges=edges).windows if w.station]
    # first hour: 75 parts read at 1,000-3,000 s, none across the gap; APT 3,200 s, of which
    # 3,000-3,200 (200 s) lies between the readings that bracket the gap: 30 x 75 / 3,000 = 0.75
    assert (w0.produced, w0.produced_in_gap, w0.apt_s) == (75, 0, pytest.approx(3200))
    assert w0.performance == pytest.approx(0.75)
    # second hour: 65 (at 5,600, across the gap) + 25 + 15; APT 2,200 s, 600 s of it (5,000-5,600)
    # set aside: 30 x 40 / 1,600 = 0.75
    assert (w1.produced, w1.produced_in_gap, w1.apt_s) == (105, 65, pytest.approx(2200))
    assert w1.performance == pytest.approx(0.75)


def test_no_part_across_a_gap_sets_nothing_aside():
    # the counter does not move across the gap (the machine stood still): the known PRODUCING time
    # before and after made no part in that interval either, so it stays in performance:
    # 30 x 75 / 5,400 = 0.416667
    f = factory()
    log = EventLog(units=f.unit_names(), n_stations=1, products=f.product_names(), t_start=T0, t_end=T0 + 7200)
    for t, s in [(0, P), (3200, UNK), (5000, P)]:
        log.state(T0 + t, 0, int(s))
    for t, v in [(0, 0), (3000, 75), (5600, 75), (7200, 75)]:
        log.count(T0 + t, 0, Channel.PRODUCED, v)
    st = compute_kpis(log, f).stations[0]
    assert (st.produced, st.produced_in_gap) == (75, 0)
    assert st.performance == pytest.approx(30 * 75 / 5400)


def test_all_parts_in_a_gap_leave_performance_undefined():
    # the only increment is read across the gap: nothing attributable, performance None, quality kept
    f = factory()
    log = EventLog(units=f.unit_names(), n_stations=1, products=f.product_names(), t_start=T0, t_end=T0 + 3600)
    for t, s in [(0, P), (1000, UNK), (2000, P)]:
        log.state(T0 + t, 0, int(s))
    for t, v in [(0, 0), (3600, 70)]:
        log.count(T0 + t, 0, Channel.PRODUCED, v)
    log.count(T0, 0, Channel.SCRAP, 0)
    log.count(T0 + 3600, 0, Channel.SCRAP, 7)
    st = compute_kpis(log, f).stations[0]
    assert (st.produced, st.produced_in_gap, st.scrap, st.good) == (70, 70, 7, 63)
    assert st.performance is None and st.oee is None
    assert st.quality == pytest.approx(0.9)


def test_store_keeps_produced_in_gap_and_migrates_an_older_file(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)  # a file at schema version 3, before the column existed
    for migration in MIGRATIONS[:3]:
        db.executescript(migration)
    db.execute("PRAGMA user_version=3")
    db.commit()
    db.close()
    f = factory()
    st = compute_kpis(gap_example(f), f).stations[0]
    with Store(path) as store:
        assert store.schema_version == len(MIGRATIONS)
        store.write_windows([st])
        (back,) = store.kpis(station="m")
    assert back.produced_in_gap == 65 and back.performance == pytest.approx(0.75)
