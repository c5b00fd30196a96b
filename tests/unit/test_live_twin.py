"""The live twin's bookkeeping: late and out-of-order samples, duplicates, counter resets and
connection gaps, checked against the ISO 22400 worked example (docs/kpis.md)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factory_models import Quality, Sample, TsKind, load_factory
from twin.shadow.live_twin import LiveTwin
from twin.shadow.replay import parse_ts, parse_value, read_samples_csv

DATA = Path(__file__).parents[1] / "data"
FACTORY = load_factory(DATA / "worked_example.yaml")
T0 = parse_ts("2026-03-02T06:00:00Z")
T1 = parse_ts("2026-03-02T14:00:00Z")


def worked_example_samples() -> list[Sample]:
    rows = (DATA / "worked_example.csv").read_text().splitlines()[1:]
    out = []
    for row in rows:
        ts, signal, value, quality = row.split(",")
        out.append(Sample(signal, parse_value(value), parse_ts(ts), Quality(quality)))
    return out


def station(twin: LiveTwin):
    (st,) = twin.report(T0, T1).stations
    return st


def test_out_of_order_and_late_samples_give_the_worked_example():
    samples = worked_example_samples()
    random.Random(7).shuffle(samples)
    twin = LiveTwin(FACTORY, clock=lambda: T1)
    for s in samples:
        assert twin.add(s)
    st = station(twin)
    assert st.apt_s == pytest.approx(22_200)
    assert st.pbt_s == pytest.approx(27_000)
    assert (st.produced, st.good) == (700, 665)
    assert st.oee == pytest.approx(0.738889, abs=1e-6)
    # the same figures as replay of the ordered file: one KPI core
    replayed = read_samples_csv(DATA / "worked_example.csv", FACTORY)
    from twin.kpi import compute_kpis

    ref = compute_kpis(replayed.log.freeze(), FACTORY).stations[0]
    for key in ("apt_s", "pbt_s", "adet_s", "produced", "good", "oee", "energy_kwh"):
        assert getattr(st, key) == pytest.approx(getattr(ref, key), rel=1e-12), key


def test_a_late_sample_changes_the_window_it_belongs_to():
    twin = LiveTwin(FACTORY, clock=lambda: T1)
    for s in worked_example_samples():
        twin.add(s)
    before = station(twin)
    # a stop at 07:00-07:10 that the network delivered at the end of the shift
    twin.add(Sample("line1/reflow/state", "DOWN", T0 + 3600))
    twin.add(Sample("line1/reflow/state", "PRODUCING", T0 + 4200))
    after = station(twin)
    assert after.adet_s == pytest.approx(before.adet_s + 600)
    assert after.apt_s == pytest.approx(before.apt_s - 600)
    assert after.failures == before.failures + 1


def test_duplicates_are_counted_and_change_nothing():
    twin = LiveTwin(FACTORY, clock=lambda: T1)
    samples = worked_example_samples()
    for s in samples + samples[:10]:
        twin.add(s)
    assert twin.router.rejected["duplicate"] == 10
    assert twin.router.counts()["used"] == len(samples)
    assert station(twin).oee == pytest.approx(0.738889, abs=1e-6)


def test_a_counter_reset_is_not_negative_production():
    twin = LiveTwin(FACTORY, clock=lambda: T0 + 3000)
    twin.add(Sample("line1/reflow/state", "PRODUCING", T0))
    for i, value in enumerate([0, 40, 100, 0, 15, 20]):  # the PLC restarted after 100
        twin.add(Sample("line1/reflow/produced", float(value), T0 + 100 * i))
    (st,) = twin.report(T0, T0 + 3000).stations
    assert st.produced == 120
    assert twin.report(T0, T0 + 3000).diagnostics["counter_resets"]


def test_a_lost_connection_is_unknown_time_not_the_last_state():
    now = {"t": T0}
    twin = LiveTwin(FACTORY, clock=lambda: now["t"], source_signals={"plc": ["line1/reflow/state"]})

    def at(t: float, sample: Sample) -> None:
        now["t"] = t  # connection samples take the twin's clock when they arrive, not their own stamp
        twin.add(sample)

    at(T0, Sample("connection/plc", "up", T0, ts_kind=TsKind.RECEIVE))
    at(T0, Sample("line1/reflow/state", "PRODUCING", T0))
    at(T0 + 1000, Sample("connection/plc", "down", 0.0, ts_kind=TsKind.RECEIVE))
    at(T0 + 1600, Sample("connection/plc", "up", 0.0, ts_kind=TsKind.RECEIVE))
    at(T0 + 1600, Sample("line1/reflow/state", "PRODUCING", T0 + 1600))
    now["t"] = T0 + 3600
    (st,) = twin.report(T0, T0 + 3600).stations
    assert st.unknown_s == pytest.approx(600)
    assert st.apt_s == pytest.approx(3000)
    assert twin.gaps == [{"source": "plc", "start": T0 + 1000, "end": T0 + 1600, "stations": ["line1/reflow"],
                          "signals": []}]
    assert st.availability == pytest.approx(1.0)  # no data is neither production nor loss


def test_forgetting_old_rows_changes_no_kpi_after_the_horizon():
    twin = LiveTwin(FACTORY, clock=lambda: T1)
    for s in worked_example_samples():
        twin.add(s)
    horizon = T0 + 4 * 3600 + 123.0  # 10:02:03, inside a PRODUCING period
    keys = ("apt_s", "pbt_s", "asut_s", "adet_s", "adot_s", "produced", "good", "scrap", "energy_kwh", "failures")
    (before,) = twin.report(horizon, T1).stations
    rows = len(twin.log)
    dropped = twin.compact(horizon)
    assert dropped > 0 and len(twin.log) == rows - dropped
    (after,) = twin.report(horizon, T1).stations
    for key in keys:
        assert getattr(after, key) == pytest.approx(getattr(before, key), rel=1e-12), key
    # new samples keep flowing into the compacted log
    twin.add(Sample("line1/reflow/state", "DOWN", T1 - 60))
    (later,) = twin.report(horizon, T1).stations
    assert later.adet_s == pytest.approx(before.adet_s + 60)
    assert twin.retained_from == horizon


def test_a_16_bit_rollover_configured_in_the_factory_counts_on(tmp_path):
    cfg = tmp_path / "rollover.yaml"
    cfg.write_text((DATA / "worked_example.yaml").read_text() + "kpi:\n  counter_rollover: {produced: 65536}\n")
    readings = [65_500, 65_530, 4, 30]  # wraps past 65535

    def produced(factory) -> float:
        twin = LiveTwin(factory, clock=lambda: T0 + 1000)
        twin.add(Sample("line1/reflow/state", "PRODUCING", T0))
        for i, value in enumerate(readings):
            twin.add(Sample("line1/reflow/produced", float(value), T0 + 100 * i))
        (st,) = twin.report(T0, T0 + 1000).stations
        return st.produced

    assert produced(load_factory(cfg)) == 30 + (65_536 - 65_530 + 4) + 26
    assert produced(FACTORY) == 30 + 4 + 26  # without the setting the drop is a PLC restart


@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 1), st.floats(0, 100), st.floats(0, 1e3),
                          st.booleans()), max_size=120))
@settings(max_examples=150, deadline=None)
def test_an_incremental_log_freezes_to_what_one_freeze_of_everything_gives(rows):
    """Appending in bursts and freezing between them (the live twin's tick) gives the same sorted
    arrays, arrival order kept at equal (key, t), as appending everything and freezing once."""
    from twin.kpi.eventlog import EventLog

    def new(incremental: bool) -> EventLog:
        return EventLog(units=["a/x", "a/y"], n_stations=2, products=["p"], t_start=0.0, t_end=100.0,
                        incremental=incremental)

    live, once = new(True), new(False)
    for kind, unit, t, value, freeze_now in rows:
        t = round(t, 1)  # equal timestamps happen
        for log_ in (live, once):
            (log_.state, lambda t, u, v: log_.count(t, u, 0, v), log_.power, log_.product)[kind](
                t, unit, int(value) % 9 if kind in (0, 3) else value)
        if freeze_now:
            live.freeze()
    a, b = live.freeze(), once.freeze()
    for name in ("states", "counters", "power", "products_stream"):
        sa, sb = getattr(a, name), getattr(b, name)
        for col in ("t", "key", "value", "offsets"):
            assert np.array_equal(getattr(sa, col), getattr(sb, col)), (name, col)
    assert len(live) == len(once)


def test_subscribers_get_frozen_snapshots_with_each_used_sample_once():
    import dataclasses

    samples = sorted(worked_example_samples(), key=lambda s: s.ts)
    now = {"t": T0}
    twin = LiveTwin(FACTORY, clock=lambda: now["t"])
    got = []
    twin.subscribe(got.append)
    half = len(samples) // 2
    for s in samples[:half]:
        now["t"] = s.ts  # each arrives as it happens: none is ahead of the twin's clock
        twin.add(s)
    first = twin.snapshot()
    twin.add(samples[0])  # a duplicate: not used, so not handed on again
    for s in samples[half:]:
        now["t"] = s.ts
        twin.add(s)
    now["t"] = T1
    second = twin.snapshot()
    assert got == [first, second]
    assert list(first.new_samples) + list(second.new_samples) == samples
    assert second.log is not None and second.log.t_end == T1
    with pytest.raises(dataclasses.FrozenInstanceError):
        second.now = 0.0
    # the twin keeps nothing for the sinks outside the snapshots it hands out
    assert not hasattr(twin, "outbox") and not hasattr(twin, "last_frozen")
    assert twin.snapshot(T1).new_samples == ()


def test_a_twin_without_subscribers_keeps_no_samples_for_them():
    twin = LiveTwin(FACTORY, clock=lambda: T1)
    for s in worked_example_samples():
        twin.add(s)
    assert twin.snapshot().new_samples == ()
