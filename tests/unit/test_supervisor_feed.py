"""The dashboard feed's end-of-shift forecast runs in a worker thread when an event loop runs: the
snapshot that asks for it returns at once, the page gets the forecast when it is done, and a
forecast that fails is counted by the run's supervisor instead of breaking the feed."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from factory_models import Sample, load_factory
from twin.dashboard.feed import DashboardFeed
from twin.runtime.supervisor import Supervisor
from twin.shadow.live_twin import LiveTwin
from twin.shadow.replay import parse_ts

SMT = Path(__file__).parents[2] / "configs" / "demo_smt.yaml"
FACTORY = load_factory(SMT)
T0 = parse_ts("2026-03-02T02:00:00Z")  # 10:00 in Suzhou: the day shift


def producing_twin() -> LiveTwin:
    twin = LiveTwin(FACTORY, clock=lambda: T0 + 600.0)
    twin.add(Sample("smt1/printer/product", FACTORY.products[0].name, T0))
    twin.add(Sample("smt1/printer/state", "PRODUCING", T0))
    twin.add(Sample("smt1/printer/produced", 10.0, T0 + 300.0))
    return twin


async def wait_for(cond, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, "not within the deadline"
        await asyncio.sleep(0.01)


def test_the_forecast_runs_off_the_event_loop():
    twin = producing_twin()
    feed = DashboardFeed(FACTORY, twin, factors_kg_per_kwh={}, health=dict)
    twin.subscribe(feed.on_snapshot)

    async def main():
        twin.snapshot()
        # the state document is there at once; the forecast is still being computed in a thread
        assert feed.doc is not None and feed.forecast is None and feed._forecasting is not None
        await wait_for(lambda: feed.forecast is not None)
        return feed.forecast

    fc = asyncio.run(main())
    assert set(fc) == {"expected_good", "oee", "energy_kwh"} and fc["expected_good"] >= 10


def test_a_failing_forecast_is_counted_and_the_feed_goes_on():
    twin = producing_twin()
    # a seed the forecast's model cannot take: the forecast raises, the state document does not
    feed = DashboardFeed(FACTORY, twin, factors_kg_per_kwh={}, health=dict, forecast_every_s=0.0,
                         forecast_seed="not a seed")
    feed.supervisor = Supervisor()
    twin.subscribe(feed.on_snapshot)

    async def main():
        twin.snapshot()
        await wait_for(lambda: "forecast" in feed.supervisor.errors())
        twin.snapshot()  # the next snapshot still builds its document and may try again

    asyncio.run(main())
    assert feed.supervisor.errors()["forecast"]["count"] >= 1
    assert feed._counts["states"] == 2
