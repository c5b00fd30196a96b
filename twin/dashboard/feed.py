"""The dashboard feed: the page's sink. It holds the latest state document, rebuilt from each twin
snapshot, and the recent one-minute KPI windows; the dashboard server's ``state`` and ``health``
callbacks read it and never touch the twin's insides.

A ``factory_models.sink.Sink``: it takes the same records as the store and InfluxDB. It keeps the
last ``RECENT_WINDOWS`` one-minute windows (the page's recent history), counts emissions records,
and has no use for raw samples (the state document carries their counts).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable

from factory_models import Factory
from factory_models.records import EmissionsRecord, KpiWindow, Sample
from twin.dashboard.state import build_state
from twin.shadow.forecast import forecast_shift_end
from twin.shadow.live_twin import LiveTwin, Snapshot

log = logging.getLogger(__name__)

#: one-minute windows kept for the page (per station, line and site row: two hours)
RECENT_WINDOWS = 120


class DashboardFeed:
    sink_name = "dashboard"

    def __init__(self, factory: Factory, twin: LiveTwin, *, factors_kg_per_kwh: dict[str, float],
                 health: Callable[[], dict], buffers=None, forecast_every_s: float = 30.0, forecast_seed: int = 0,
                 on_state: Callable[[dict], None] | None = None) -> None:
        self.factory, self.twin = factory, twin
        self.factors = dict(factors_kg_per_kwh)
        self.buffers = buffers
        self.forecast_every_s, self.forecast_seed = forecast_every_s, forecast_seed
        self.on_state = on_state
        self._health = health
        self.doc: dict | None = None
        self.forecast: dict | None = None
        self._forecast_at = -1e18
        self._recent: deque[KpiWindow] = deque()
        self._counts = {"states": 0, "windows": 0, "emissions": 0}
        self._forecasting: asyncio.Task | None = None
        self.supervisor = None  # the run's Supervisor (counts a failed forecast), set by the runtime

    # -- the twin's subscriber -------------------------------------------------------------

    def on_snapshot(self, snap: Snapshot) -> None:
        now = time.monotonic()
        if now - self._forecast_at >= self.forecast_every_s and self._forecasting is None:
            self._forecast_at = now
            self._start_forecast()
        self.doc = build_state(self.factory, self.twin, snap, factors_kg_per_kwh=self.factors,
                               buffers=self.buffers, forecast=self.forecast)
        self._counts["states"] += 1
        if self.on_state is not None:
            self.on_state(self.doc)

    def _start_forecast(self) -> None:
        """The end-of-shift forecast (seconds of SimPy) in a worker thread when an event loop runs,
        so the loop goes on serving; the page shows the newest one that finished."""
        def run() -> dict | None:
            fc = forecast_shift_end(self.factory, self.twin, sim_seed=self.forecast_seed, replications=1)
            return None if fc is None else {k: fc[k] for k in ("expected_good", "oee", "energy_kwh")}

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a direct call): compute it here
            self.forecast = run()
            return
        self._forecasting = loop.create_task(asyncio.to_thread(run), name="forecast")
        self._forecasting.add_done_callback(self._forecast_done)

    def _forecast_done(self, task: asyncio.Task) -> None:
        self._forecasting = None
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            self.forecast = task.result()
        elif self.supervisor is not None:
            self.supervisor.report("forecast", exc)
        else:
            log.error("dashboard forecast failed: %s", exc)

    # -- what the dashboard server calls ----------------------------------------------------

    def state(self) -> dict:
        if self.doc is None:
            self.twin.snapshot()  # a page opened before the first tick: this subscriber builds the doc
        return self.doc

    def health(self) -> dict:
        return self._health()

    def recent_windows(self) -> list[KpiWindow]:
        """The one-minute windows written lately, oldest first (a rewritten minute appears once)."""
        latest = {(w.line, w.station, w.start): w for w in self._recent}
        return sorted(latest.values(), key=lambda w: (w.end or 0.0, w.line or "", w.station or ""))

    # -- the Sink protocol -----------------------------------------------------------------

    def write_windows(self, records: Iterable[KpiWindow]) -> int:
        n = 0
        rows = 1 + sum(len(ln.stations) + 1 for ln in self.factory.lines)
        for w in records:
            n += 1
            if w.start is not None and w.end is not None and w.end - w.start <= 60.0:
                self._recent.append(w)
        while len(self._recent) > RECENT_WINDOWS * rows:
            self._recent.popleft()
        self._counts["windows"] += n
        return n

    def write_emissions(self, records: Iterable[EmissionsRecord]) -> int:
        n = len(list(records))
        self._counts["emissions"] += n
        return n

    def write_samples(self, samples: Iterable[Sample], site: str) -> int:
        return 0

    def close(self) -> dict:
        return dict(self._counts)
