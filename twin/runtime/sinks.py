"""The run's sinks: which are configured, what each is handed, and the ``sinks`` block they return.

Every sink implements ``factory_models.sink.Sink``. The runtime holds one list of them and hands
each the same records: while a live run runs, ``LiveWriter`` (a subscriber of the twin's
snapshots) writes the used samples, the closed one-minute windows (with their CO2e) and the closed
hours of emissions; at the end ``write_final`` writes the whole run, and ``close_sinks`` collects
each sink's own block, so the counts include everything written during the run.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from carbon import hour_floor
from connectors.influxdb import InfluxConfig, InfluxWriter
from factory_models import Factory
from factory_models.sink import Sink
from twin.emissions.account import account_log, fill_co2e, site_hours
from twin.emissions.products import product_use
from twin.kpi import compute_kpis
from twin.kpi.eventlog import N_CHANNELS
from twin.runtime.supervisor import Supervisor
from twin.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sinks:
    """Where a run's records go: the embedded store (default) and, if configured, InfluxDB."""

    store: Path | None = Path("factory-twin.sqlite")
    influx: InfluxConfig | None = None


def open_sinks(config: Sinks) -> list[Sink]:
    sinks: list[Sink] = []
    if config.store is not None:
        sinks.append(Store(config.store))
    if config.influx is not None:
        try:
            sinks.append(InfluxWriter(config.influx))
        except BaseException:
            close_sinks(sinks)
            raise
    return sinks


def close_sinks(sinks: list[Sink], supervisor: Supervisor | None = None) -> dict[str, Any]:
    """Close every sink (each flushes what it still holds); the ``sinks`` block, by sink name.

    With a ``supervisor``, a sink whose ``close`` raises is counted and its block says so; the
    others are still closed. InfluxDB's block always carries ``corrupt_records`` (0 when its spool
    reports none)."""
    out: dict[str, Any] = {}
    for sink in sinks:
        if supervisor is None:
            block = sink.close()
        else:
            block = supervisor.call(f"sink:{sink.sink_name}", sink.close, context="close")
            if block is None:
                block = {"error": supervisor.errors()[f"sink:{sink.sink_name}"]["last"]}
        if sink.sink_name == "influxdb" and "corrupt_records" not in block:
            block = {**block, "corrupt_records": _stat(sink, "corrupt_records")}
        out[sink.sink_name] = block
    return out


def _stat(sink, name: str) -> int:
    try:
        return int(sink.stats().get(name, 0))
    except Exception:  # noqa: BLE001 - a closed writer that cannot answer any more: nothing counted
        return 0


def _records_for_sinks(report, frozen) -> list:
    """Window rows when windows were asked for, else the whole run with its real bounds (so that two
    runs over different periods keep separate rows)."""
    if report.windows:
        return list(report.windows)
    return [dataclasses.replace(w, start=frozen.t_start, end=frozen.t_end)
            for w in [*report.stations, *report.lines, report.site]]


def owned_rows(windows, partition) -> list:
    """``run --lines``: the station and line rows only. A process's site row holds its own lines
    alone and would replace another process's under the same key; ``rollup`` sums the lines."""
    return list(windows) if partition is None else [w for w in windows if w.line is not None]


def write_final(sinks: list[Sink], factory: Factory, report, em, frozen, samples=None,
                supervisor: Supervisor | None = None, partition=None) -> None:
    """The whole run's KPI windows, emissions, product use (store only) and samples, to every sink.
    With a ``supervisor`` a failing sink is counted and the others still get everything. With a
    ``partition`` (``run --lines``) no site rows, and emissions only from the meters' owner."""
    windows = owned_rows(_records_for_sinks(report, frozen), partition)
    site = factory.site.name
    ledger = partition is None or partition.meters

    def one(sink) -> None:
        sink.write_windows(windows)
        if ledger and not getattr(em, "written", False):  # a live run's hours went out as they closed
            sink.write_emissions(em.records)
        if isinstance(sink, Store):
            # per clock hour of the site, so a report of any whole-hour period finds its products
            sink.write_product_use(product_use(factory, frozen, edges=site_hours(factory, frozen.t_start, frozen.t_end)), site)
        if samples:
            sink.write_samples(samples, site)

    for sink in sinks:
        if supervisor is None:
            one(sink)
        else:
            supervisor.call(f"sink:{sink.sink_name}", one, sink, context="final write")


def record_zone(sinks: list[Sink], factory: Factory) -> None:
    """Each store remembers the site's time zone, so ``report`` reads periods in it without --config
    (StoreError when it holds another zone for the site)."""
    for sink in sinks:
        if isinstance(sink, Store):
            sink.record_site_zone(factory.site.name, factory.site.timezone or factory.calendar.timezone)


def write_sinks(factory: Factory, config: Sinks, report, em, frozen, samples=None) -> dict:
    """``simulate`` and ``replay``: open the configured sinks, write the run, return their block."""
    sinks = open_sinks(config)
    try:
        record_zone(sinks, factory)
        write_final(sinks, factory, report, em, frozen, samples)
    finally:
        blocks = close_sinks(sinks)
    return blocks


class LiveWriter:
    """Subscriber of the live twin: each snapshot's new samples, the closed one-minute KPI windows
    and the closed hours of emissions, to every sink. The last ``REWRITE_WINDOWS`` minutes are
    written again at every minute, so a late sample still lands (writes are idempotent upserts).
    ``flush`` writes the last, partial minute and hour at the end of a run.

    Each clock hour of the site is accounted and written once, ``HOUR_LATE_S`` after it closes (the
    run's first hour from the run's start, the hour still open at the end by ``flush``); ``records``
    are the ledger records written, the figures the run's summary prints (the store holds the same).

    ``carbon`` is the run's (config, registry), set up once by the caller; ``origin`` is "measured"
    (``run``) or "simulated" (``demo``). Each sink's writes and the accounting run under
    ``supervisor``: a failing sink is counted (``sink:NAME``) and skipped, the others still get
    every record; a failed accounting step (``accounting``) skips that step."""

    REWRITE_WINDOWS = 5
    HOUR_LATE_S = 600.0

    def __init__(self, factory: Factory, sinks: list[Sink], carbon, supervisor: Supervisor | None = None,
                 origin: str = "measured", partition=None) -> None:
        self.factory, self.sinks, self.carbon, self.origin = factory, sinks, carbon, origin
        # run --lines: line rows only, and the hourly ledger only from the meters' owner (a batch of
        # an hour replaces the whole hour in the store: two writers would erase each other's)
        self.partition = partition
        self.ledger = partition is None or partition.meters
        self.supervisor = supervisor if supervisor is not None else Supervisor()
        self.tz = factory.site.timezone or factory.calendar.timezone
        try:
            record_zone(sinks, factory)
        except BaseException:
            close_sinks(sinks)  # the run does not start: nothing may stay open
            raise
        self._minute: float | None = None  # end of the newest closed minute written
        self._hour: float | None = None
        self._records: dict[tuple, object] = {}
        self._last_reading: dict[int, float] = {}  # each meter's last reading when hours were last written

    @property
    def records(self) -> list:
        """The ledger records this run wrote, in hour order."""
        return sorted(self._records.values(), key=lambda r: (r.start, r.scope, r.source, r.method))

    def on_snapshot(self, snap) -> None:
        if not self.sinks:
            return
        if snap.new_samples:
            site = self.factory.site.name
            for sink in self.sinks:
                self.supervisor.call(f"sink:{sink.sink_name}", sink.write_samples, snap.new_samples, site,
                                     context="write_samples")
        frozen = snap.log
        if frozen is None or frozen.t_end <= frozen.t_start:
            return
        closed = frozen.t_end - frozen.t_end % 60.0
        if self._minute is None or closed > self._minute:
            first = max(closed - 60.0 * self.REWRITE_WINDOWS, frozen.t_start - frozen.t_start % 60.0)
            if closed > first:
                self._windows(frozen, first, closed)
            self._minute = closed
        # an hour is accounted once HOUR_LATE_S have passed after it, so the readings of its last
        # minutes that are still on the wire are in it rather than taken for a gap
        hour = hour_floor(frozen.t_end - self.HOUR_LATE_S, self.tz)
        if self._hour is not None and hour > max(self._hour, frozen.t_start):
            self._emissions(frozen, max(self._hour, frozen.t_start), hour)  # the run's first hour from its start
        if self._hour is None or hour > self._hour:
            self._hour = hour

    def flush(self, snap) -> None:
        """The end of a run: the minutes since the last closed one (the last partial minute too)
        and the emissions of the hour still open, so every window of the run reaches the sinks."""
        frozen = None if snap is None else snap.log
        if not self.sinks or frozen is None or frozen.t_end <= frozen.t_start:
            return
        first = self._minute if self._minute is not None else frozen.t_start - frozen.t_start % 60.0
        first = max(first - 60.0 * self.REWRITE_WINDOWS, frozen.t_start - frozen.t_start % 60.0)
        if frozen.t_end > first:
            self._windows(frozen, first, frozen.t_end)
        self._minute = frozen.t_end
        start = frozen.t_start if self._hour is None else max(self._hour, frozen.t_start)
        if frozen.t_end > start:
            self._emissions(frozen, start, frozen.t_end)
        self._hour = frozen.t_end

    def _windows(self, frozen, first: float, last: float) -> None:
        windows = self.supervisor.call("accounting", self.minute_windows, frozen, first, last,
                                       context=f"minute windows {first:.0f}-{last:.0f}")
        if windows:
            self._write("write_windows", windows)

    def _emissions(self, frozen, t0: float, t1: float) -> None:
        # a meter that was silent when its hours were written and has spoken since: the activity of
        # its gap now lies between two readings, so those hours are accounted (and written) again
        t0 = max(min([t0, *self._reopen(frozen, t0)]), frozen.t_start)

        def hours():
            span = dataclasses.replace(frozen, t_start=t0, t_end=t1)
            return account_log(self.factory, span, None, *self.carbon, origin=self.origin).records
        records = self.supervisor.call("accounting", hours, context=f"emissions {t0:.0f}-{t1:.0f}")
        if records is None:
            return
        first = hour_floor(t0, self.tz)
        self._records = {k: r for k, r in self._records.items() if not first <= r.start < t1}
        if records and self.ledger:
            self._write("write_emissions", records)
            for r in records:
                self._records[r.key] = r
        self._last_reading = self._meter_last(frozen)

    def _meter_last(self, frozen) -> dict[int, float]:
        """Each site meter's last reading time in the log (event-log unit -> epoch s)."""
        c, out = frozen.counters, {}
        for j in range(len(self.factory.meters)):
            u = frozen.n_stations + j
            for ch in range(N_CHANNELS):
                a, b = c.offsets[u * N_CHANNELS + ch], c.offsets[u * N_CHANNELS + ch + 1]
                if b > a:
                    out[u] = max(out.get(u, -np.inf), float(c.t[b - 1]))
        return out

    def _reopen(self, frozen, t0: float) -> list[float]:
        """Starts of written hours whose meter gap has closed since (a reading after a silence that
        reached past the hours written)."""
        now = self._meter_last(frozen)
        return [hour_floor(last, self.tz) for u, last in self._last_reading.items()
                if last < t0 - 1e-9 and now.get(u, last) > last]

    def minute_windows(self, frozen, first: float, closed: float) -> list:
        """One-minute windows over [first, closed] (the last one shorter when ``closed`` is not on
        a minute) with ``co2e_kg`` filled from the effective intensity of their hour so far (the
        ledger of the hour from its start, or the run's, to ``closed``)."""
        edges = np.arange(first, closed, 60.0)
        edges = np.append(edges, closed) if closed - edges[-1] > 1e-6 else edges
        if len(edges) < 2:
            return []
        span = dataclasses.replace(frozen, t_start=max(first, frozen.t_start), t_end=closed)
        report = compute_kpis(span, self.factory, edges)
        hour_span = dataclasses.replace(frozen, t_start=max(hour_floor(first, self.tz), frozen.t_start), t_end=closed)
        cfg, registry = self.carbon
        try:
            recs = account_log(self.factory, hour_span, None, cfg, registry, origin=self.origin).records
        except ValueError as exc:  # meters that cannot be accounted: the configured grid factor stands in
            log.info("live minute windows %.0f-%.0f: meters not accounted: %s", first, closed, exc)
            recs = []
        fill_co2e(report, recs, site_hours(self.factory, hour_span.t_start, closed), cfg, registry, hour_span)
        return owned_rows(report.windows, self.partition)

    def _write(self, method: str, records) -> None:
        if records:
            for sink in self.sinks:
                self.supervisor.call(f"sink:{sink.sink_name}", getattr(sink, method), records, context=method)
