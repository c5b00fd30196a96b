"""Parts counted across a connection gap (issue 12, item 6): reported as ``produced_in_gap`` and left
out of performance with the PRODUCING time around the gap. Figures worked by hand."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from factory_models.schema import Factory
from factory_models.states import State
from twin.kpi import compute_kpis
from twin.kpi.eventlog import Channel, EventLog
from twin.store import MIGRATIONS, Store

DATA = Path(__file__).parents[1] / "data"
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
    assert "produced_in_gap" in st.flags and "produced_in_gap" in report.site.flags


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
    assert "produced_in_gap" not in st.flags
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


def test_a_lost_connection_in_the_live_twin_sets_its_parts_aside():
    """The issue's case end to end: the PLC's connection drops for 1,800 s while the machine keeps
    producing; the live twin makes the station UNKNOWN and the KPI core sets the 65 parts read across
    the gap aside (same figures as ``gap_example``)."""
    from factory_models import Sample, TsKind, load_factory
    from twin.shadow.live_twin import LiveTwin

    factory = load_factory(DATA / "worked_example.yaml")  # line1/reflow, ideal cycle 30 s
    t0 = 1_772_431_200.0  # 2026-03-02T06:00:00Z, inside its 06:00-14:00 shift
    now = {"t": t0}
    twin = LiveTwin(factory, clock=lambda: now["t"],
                    source_signals={"plc": ["line1/reflow/state", "line1/reflow/produced"]})

    def at(t: float, sample: Sample) -> None:
        now["t"] = t
        twin.add(sample)

    at(t0, Sample("connection/plc", "up", t0, ts_kind=TsKind.RECEIVE))
    at(t0, Sample("line1/reflow/product", "pcb-a", t0))
    at(t0, Sample("line1/reflow/state", "PRODUCING", t0))
    for t, v in [(0, 0), (1000, 25), (2000, 50), (3000, 75)]:
        at(t0 + t, Sample("line1/reflow/produced", float(v), t0 + t))
    at(t0 + 3200, Sample("connection/plc", "down", 0.0, ts_kind=TsKind.RECEIVE))
    at(t0 + 5000, Sample("connection/plc", "up", 0.0, ts_kind=TsKind.RECEIVE))
    at(t0 + 5000, Sample("line1/reflow/state", "PRODUCING", t0 + 5000))
    for t, v in [(5600, 140), (6600, 165), (7200, 180)]:
        at(t0 + t, Sample("line1/reflow/produced", float(v), t0 + t))
    (st,) = twin.report(t0, t0 + 7200).stations
    assert (st.unknown_s, st.apt_s) == (pytest.approx(1800), pytest.approx(5400))
    assert (st.produced, st.produced_in_gap) == (180, 65)
    assert st.performance == pytest.approx(0.75)  # 1.0 before: 30 x 180 / 5,400


def test_replay_reports_produced_in_gap(tmp_path):
    from typer.testing import CliRunner

    from twin.cli import app

    rows = ["ts,signal,value,quality", "2026-03-02T06:00:00Z,line1/reflow/product,pcb-a,good",
            "2026-03-02T06:00:00Z,line1/reflow/state,PRODUCING,good"]
    for ts, v in [("06:00:00", 0), ("06:16:40", 25), ("06:33:20", 50), ("06:50:00", 75)]:
        rows.append(f"2026-03-02T{ts}Z,line1/reflow/produced,{v},good")
    rows += ["2026-03-02T06:53:20Z,line1/reflow/state,UNKNOWN,good",  # 3,200 s: the gap as the data shows it
             "2026-03-02T07:23:20Z,line1/reflow/state,PRODUCING,good"]  # 5,000 s
    for ts, v in [("07:33:20", 140), ("07:50:00", 165), ("08:00:00", 180)]:
        rows.append(f"2026-03-02T{ts}Z,line1/reflow/produced,{v},good")
    csv = tmp_path / "gap.csv"
    csv.write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(app, ["replay", str(DATA / "worked_example.yaml"), str(csv), "--no-store", "--json"])
    assert result.exit_code == 0, result.output
    (st,) = json.loads(result.stdout)["stations"]
    assert (st["produced"], st["produced_in_gap"]) == (180, 65)
    assert st["performance"] == pytest.approx(0.75)
