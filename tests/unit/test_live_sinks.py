"""The live writer: every used sample reaches every sink (the last ones too, at the final snapshot),
closed one-minute windows carry their CO2e, and each sink's block counts what it wrote."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory_models import Sample, load_factory
from factory_models.sink import Sink
from twin.dashboard.feed import DashboardFeed
from twin.emissions.account import carbon_setup
from twin.runtime.sinks import LiveWriter, close_sinks
from twin.runtime.terminal import site_time
from twin.shadow.live_twin import LiveTwin
from twin.shadow.replay import parse_ts
from twin.store import Store

DATA = Path(__file__).parents[1] / "data"
CONFIG = DATA / "worked_example.yaml"
FACTORY = load_factory(CONFIG)
T0 = parse_ts("2026-03-02T06:00:00Z")


def minute_samples(minutes: int) -> list[Sample]:
    """The reflow producing, its energy meter read every 20 s (1 kWh a minute)."""
    out = [Sample("line1/reflow/product", "pcb-a", T0), Sample("line1/reflow/state", "PRODUCING", T0)]
    for k in range(minutes * 3 + 1):
        out.append(Sample("line1/reflow/energy_kwh", k / 3.0, T0 + 20.0 * k))
    return out


def test_live_minutes_carry_co2e_and_the_last_samples_are_written(tmp_path):
    now = {"t": T0}
    twin = LiveTwin(FACTORY, clock=lambda: now["t"])
    store = Store(tmp_path / "live.sqlite")
    feed = DashboardFeed(FACTORY, twin, factors_kg_per_kwh={}, health=dict)
    sinks = [store, feed]
    assert all(isinstance(s, Sink) for s in sinks)
    twin.subscribe(LiveWriter(FACTORY, sinks, carbon_setup(FACTORY, CONFIG)).on_snapshot)
    samples = minute_samples(6)
    for s in samples[:-4]:
        twin.add(s)
    now["t"] = samples[-5].ts
    twin.snapshot()
    for s in samples[-4:]:  # arrive after the last tick: the final snapshot takes them
        twin.add(s)
    now["t"] = T0 + 360.0
    twin.snapshot()
    minutes = [w for w in store.kpis(level="station") if w.start is not None]
    assert {w.start for w in minutes} == {T0 + 60.0 * k for k in range(6)}
    for w in minutes:
        assert w.energy_kwh == pytest.approx(1.0)
        assert w.co2e_kg == pytest.approx(0.5703, rel=1e-3)  # the worked example's grid factor
    blocks = close_sinks(sinks)
    assert blocks["store"]["samples"] == len(samples)
    assert blocks["store"]["windows"] > 0 and blocks["store"]["written"] >= len(samples) + blocks["store"]["windows"]
    assert blocks["dashboard"]["windows"] == blocks["store"]["windows"]
    assert {w.start for w in feed.recent_windows() if w.station} == {w.start for w in minutes}


def test_terminal_times_are_the_sites_wall_clock_with_its_offset():
    assert site_time(parse_ts("2026-03-02T06:00:00Z"), "Asia/Shanghai") == "2026-03-02 14:00:00+08:00"
    assert site_time(parse_ts("2026-07-01T10:00:00Z"), "Europe/Berlin") == "2026-07-01 12:00:00+02:00"
