"""Supervision of the live writer: a sink that raises is counted and skipped while the other sinks
get every record; a site meter silent for two hours leaves a gap its next reading fills, and the tick goes on
writing windows; the loop-lag probe sees a blocked loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from factory_models import Sample, load_factory
from twin.emissions.account import carbon_setup
from twin.runtime.sinks import LiveWriter, close_sinks
from twin.runtime.supervisor import LoopLag, Supervisor, lost_work
from twin.shadow.live_twin import LiveTwin
from twin.shadow.replay import parse_ts
from twin.store import Store

ROOT = Path(__file__).parents[2]
SMT = ROOT / "configs" / "demo_smt.yaml"
FACTORY = load_factory(SMT)
T0 = parse_ts("2026-03-02T02:00:00Z")  # 10:00 in Suzhou: the day shift


class BrokenSink:
    """A sink whose window writes fail (a full disk, a dead server); everything else works."""

    sink_name = "broken"

    def __init__(self) -> None:
        self.samples = 0

    def write_windows(self, records) -> int:
        raise OSError(28, "No space left on device")

    def write_emissions(self, records) -> int:
        return len(list(records))

    def write_samples(self, samples, site) -> int:
        self.samples += len(samples)
        return len(samples)

    def health(self) -> dict:
        return {}

    def close(self) -> dict:
        return {"samples": self.samples}


def minute(twin: LiveTwin, now: dict, k: int, *, boiler: bool) -> None:
    """Minute ``k`` of the run: the printer producing, the grid and (unless silent) the boiler read."""
    t = T0 + 60.0 * k
    if k == 0:
        twin.add(Sample("smt1/printer/product", FACTORY.products[0].name, t))
        twin.add(Sample("smt1/printer/state", "PRODUCING", t))
    twin.add(Sample("smt1/printer/produced", float(k), t))
    twin.add(Sample("smt1/printer/energy_kwh", 0.1 * k, t))
    twin.add(Sample("site/grid/energy_kwh", 1000.0 + 2.0 * k, t))
    if boiler:
        twin.add(Sample("site/boiler/volume_nm3", 50.0 + 0.2 * k, t))
    now["t"] = t
    twin.snapshot()


def live(tmp_path, extra_sinks=()):
    now = {"t": T0}
    twin = LiveTwin(FACTORY, clock=lambda: now["t"])
    store = Store(tmp_path / "live.sqlite")
    sup = Supervisor()
    sinks = [store, *extra_sinks]
    writer = LiveWriter(FACTORY, sinks, carbon_setup(FACTORY, SMT), sup)
    twin.subscribe(writer.on_snapshot)
    return twin, now, store, sup, sinks, writer


def test_a_sink_that_raises_is_counted_and_the_others_get_everything(tmp_path):
    broken = BrokenSink()
    twin, now, store, sup, sinks, writer = live(tmp_path, [broken])
    for k in range(12):
        minute(twin, now, k, boiler=True)
    writer.flush(twin.snapshot(T0 + 11 * 60.0 + 30.0))
    station_minutes = {w.start for w in store.kpis(level="station") if w.station == "printer"}
    # every minute, and the last half minute, reached the store although the other sink failed each time
    assert station_minutes == {T0 + 60.0 * k for k in range(12)}
    assert broken.samples == store.block()["samples"] > 0
    errors = sup.errors()
    assert set(errors) == {"sink:broken"}
    assert errors["sink:broken"]["count"] >= 11
    assert "No space left on device" in errors["sink:broken"]["last"]
    assert "write_windows" in errors["sink:broken"]["last"]
    assert lost_work(errors).startswith("the twin or its sinks stopped working: sink:broken")
    blocks = close_sinks(sinks, sup)
    assert blocks["broken"] == {"samples": broken.samples}


def test_a_meter_silent_for_two_hours_is_a_gap_and_the_windows_go_on(tmp_path):
    """The boiler's meter (0.2 Nm3 a minute) sends nothing from minute 60 to 179: its silent hours
    hold nothing while nobody knows (never zero, never extrapolated); once it speaks again at minute
    180 the gap lies between two readings, and its hours are accounted again, estimated."""
    twin, now, store, sup, sinks, writer = live(tmp_path)
    for k in range(60):
        minute(twin, now, k, boiler=True)
    for k in range(60, 180):
        minute(twin, now, k, boiler=False)
    assert sup.errors() == {}
    minutes = {w.start for w in store.kpis(level="station") if w.station == "printer"}
    assert max(minutes) == T0 + 178 * 60.0  # the tick wrote windows all along
    boiler = {r.start: r for r in store.emissions() if r.scope == "1"}
    assert sorted(boiler) == [T0]  # hour 1 written while the meter was silent: nothing for it
    assert boiler[T0].activity == pytest.approx(0.2 * 59)  # up to its last reading, at minute 59
    for k in range(180, 251):
        minute(twin, now, k, boiler=True)
    writer.flush(twin.snapshot(T0 + 250 * 60.0))
    boiler = {r.start: r for r in store.emissions() if r.scope == "1"}
    assert sorted(boiler) == [T0 + 3600.0 * h for h in range(5)]
    # the gap: 86 - 61.8 = 24.2 Nm3 over minutes 59 to 180, 0.2 a minute, spread over its hours
    assert [boiler[T0 + 3600.0 * h].activity for h in range(5)] == pytest.approx([12.0, 12.0, 12.0, 12.0, 2.0])
    assert [boiler[T0 + 3600.0 * h].estimated_activity for h in range(5)] == pytest.approx([0.2, 12.0, 12.0, 0.0, 0.0])
    assert [boiler[T0 + 3600.0 * h].data_quality for h in range(5)] == ["estimated"] * 3 + ["measured"] * 2
    assert store.emission_rewrites() == 2  # hours 0 and 1, written again once the gap closed
    # each hour once it settled, the last one at the end: the run's emissions without a hole
    grid = sorted((r.start, r.end) for r in store.emissions() if r.source == "grid" and r.method == "location")
    assert grid == [(T0 + 3600.0 * h, T0 + 3600.0 * (h + 1)) for h in range(5)]
    assert sum(r.activity for r in writer.records if r.scope == "1") == pytest.approx(0.2 * 250)
    close_sinks(sinks, sup)


def test_supervised_task_restarts_after_a_failure_and_the_count_says_so():
    sup = Supervisor()
    sup.BACKOFF_S = (0.0,)
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError(f"boom {len(calls)}")
        return "done"

    assert asyncio.run(sup.run("source:plc", flaky)) == "done"
    assert sup.errors() == {"source:plc": {"count": 2, "last": "task: RuntimeError: boom 2"}}
    assert lost_work(sup.errors()) is None  # a source that recovered is not lost work of the twin


def test_loop_lag_sees_a_blocked_loop():
    lag = LoopLag(period_s=0.01)

    async def main():
        probe = asyncio.create_task(lag.run())
        deadline = time.monotonic() + 5.0
        while len(lag.lags) < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        time.sleep(0.3)  # noqa: ASYNC251 - the loop blocked on purpose, as a kernel compilation inside it would
        n = len(lag.lags)
        while len(lag.lags) == n and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        probe.cancel()

    asyncio.run(main())
    block = lag.block()
    assert set(block) == {"p50", "p99", "max", "n"}
    assert block["max"] >= 0.25 and block["p50"] < 0.25


def test_an_accounting_step_that_raises_is_counted_and_the_windows_go_on(tmp_path, monkeypatch):
    """Emissions accounting that raises for each closed hour: the supervisor counts it, and the tick
    still writes every minute (their CO2e from the configured grid factor)."""
    import carbon

    def broken(*a, **k):
        raise ValueError("meter data that cannot be accounted")

    monkeypatch.setattr(carbon, "ledger_records", broken)
    twin, now, store, sup, sinks, _ = live(tmp_path)
    for k in range(60):
        minute(twin, now, k, boiler=True)
    for k in range(60, 180):
        minute(twin, now, k, boiler=False)
    errors = sup.errors()
    assert set(errors) == {"accounting"} and errors["accounting"]["count"] >= 1
    assert "cannot be accounted" in errors["accounting"]["last"]
    minutes = {w.start for w in store.kpis(level="station") if w.station == "printer"}
    assert minutes == {T0 + 60.0 * k for k in range(179)}
    assert lost_work(errors).startswith("the twin or its sinks stopped working: accounting")
    close_sinks(sinks, sup)
