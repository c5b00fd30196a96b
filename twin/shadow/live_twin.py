"""The live twin: a shadow of the line, driven by Samples from an asyncio queue.

It appends every sample to the same event log that ``simulate`` and ``replay`` fill and recomputes
the KPIs from the whole log on a tick, so a late or out-of-order sample lands in the window it
belongs to (its window is recomputed, not dropped). Counter resets and rollovers are the KPI core's
business; duplicates and bad values are the router's, and so are samples whose time is too far from
their receive time on the twin's clock (``clock_skew``, ``too_old``: the factory's ``live`` limits).
A lost connection is written into the log as the UNKNOWN state for every station whose *state* that
source feeds, so the gap is never read as "unchanged"; a source that feeds other signals only (a meter's
power and energy) marks its gap on those signals (``gaps[i]["signals"]``) and leaves the states a
healthy PLC delivers alone. After the reconnect a server re-sends each current value with its original
time (OPC UA does, retained MQTT messages do): for a signal the gap covered, a value stamped before the
gap began is the value as of the reconnect, so it is restored from the gap's end instead of being
rejected as a duplicate (a station stays UNKNOWN only until its state is known again, not until its
next change, which may be hours away). The twin stamps the in-band ``connection/<source>`` samples
with its own clock on receipt: a source knows only the wall clock, while the demo's twin runs on
simulated time, where a wall-clock UNKNOWN would sit months ahead and outlast every later state.

Rolling windows reported on each tick: the current minute, the current hour and the shift so far
(or the day so far when the calendar has no shifts). Each ``snapshot()`` is an immutable
``Snapshot`` handed to every subscriber (the sinks, the dashboard feed): nobody reads the twin's
insides, and the used samples since the previous snapshot travel in it, so none is lost or sent twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from factory_models import Factory, Sample, State
from factory_models.schema import LiveSettings

from twin.kpi.eventlog import EventLog, FrozenLog
from twin.shadow.router import SampleRouter, new_log
from twin.kpi import compute_kpis

log = logging.getLogger(__name__)

CONNECTION_PREFIX = "connection/"


def shift_bounds(factory: Factory, t: float) -> tuple[float, float, str]:
    """(start, end, name) of the shift that holds ``t``, or of the calendar day when none does."""
    tz = ZoneInfo(factory.calendar.timezone)
    local = datetime.fromtimestamp(t, tz)
    for day_offset in (0, -1):  # a night shift may have started yesterday
        day = (local + timedelta(days=day_offset)).date()
        for sh in factory.calendar.shifts:
            start = datetime.combine(day, sh.start, tz)
            end = start + timedelta(seconds=sh.length_s)
            if start.timestamp() <= t < end.timestamp():
                return start.timestamp(), end.timestamp(), sh.name
    midnight = datetime.combine(local.date(), datetime.min.time(), tz)
    return midnight.timestamp(), (midnight + timedelta(days=1)).timestamp(), "day"


@dataclass(frozen=True)
class Snapshot:
    """What the twin knows at one instant: rolling-window KPIs, the current station states and
    counters, the samples used since the previous snapshot (``new_samples``) and the frozen event
    log the windows were computed from (``log``: the sinks compute their closed minutes from it)."""

    now: float
    minute: object
    hour: object
    shift: object
    shift_name: str
    shift_end: float
    states: dict[str, str]
    samples: dict
    connections: dict[str, str]
    gaps: list[dict] = field(default_factory=list)
    new_samples: tuple[Sample, ...] = ()
    log: FrozenLog | None = None


#: how much history the live twin keeps in memory (twin time): a day and a shift, enough for every
#: rolling window; older rows are forgotten (the sinks hold them as one-minute windows)
RETAIN_S = 26 * 3600.0


class LiveTwin:
    """Consumes Samples, keeps the event log, and recomputes KPIs on demand or on a tick."""

    def __init__(self, factory: Factory, *, clock: Callable[[], float] = time.time,
                 source_signals: dict[str, Iterable[str]] | None = None, retain_s: float | None = RETAIN_S,
                 limits: LiveSettings | None = None):
        self.factory = factory
        self.clock = clock
        self.limits = factory.live if limits is None else limits
        self.retain_s = retain_s
        self.retained_from: float | None = None  # set once old rows have been forgotten
        self.log: EventLog = new_log(factory, clock(), clock())
        self.log.incremental = True
        self.router = SampleRouter(factory, self.log, clock=clock,
                                   max_clock_skew_s=self.limits.max_clock_skew_s,
                                   max_sample_age_s=self.limits.max_sample_age_s)
        self._units = {name: i for i, name in enumerate(factory.unit_names())}
        # source -> the signals it feeds (a set, or a callable asked when the source goes down: a
        # template source knows what it feeds only once it has delivered)
        self._feeds: dict[str, Callable[[], Iterable[str]]] = {}
        for source, signals in (source_signals or {}).items():
            self.register_source(source, signals)
        self.connections: dict[str, str] = {}
        self.gaps: list[dict] = []  # {"source", "start", "end", "stations", "signals"}
        self._restore: dict[str, dict] = {}  # signal -> the gap it is waiting to be re-sent after
        self.restored = 0  # values re-sent after a reconnect and restored from the gap's end
        self.first_ts: float | None = None
        self.latency_s: deque[float] = deque(maxlen=100_000)  # receive-to-KPI latency of the latest samples, s
        self._pending_receive: list[float] = []
        self.last_snapshot: Snapshot | None = None
        self.latest_kw: dict[str, tuple[float, float]] = {}  # power gauge -> (ts, kW), for "now" figures
        self._subscribers: list[Callable[[Snapshot], None]] = []
        self._new: list[Sample] = []  # used samples not yet in a snapshot (kept only for subscribers)

    def subscribe(self, callback: Callable[[Snapshot], None]) -> None:
        """Hand ``callback`` every snapshot from now on (in the order they were subscribed)."""
        self._subscribers.append(callback)

    def register_source(self, source: str, signals: Iterable[str] | Callable[[], Iterable[str]]) -> None:
        """``source`` feeds ``signals``: a set, or a callable (``Source.signals``) read at each loss."""
        if callable(signals):
            self._feeds[source] = signals
        else:
            fixed = frozenset(signals)
            self._feeds[source] = lambda: fixed

    def _scope(self, source: str) -> tuple[list[int], list[str]]:
        """(station units whose state ``source`` feeds, the other signals it feeds) for its gap."""
        feeds = self._feeds.get(source)
        signals = set(feeds()) if feeds is not None else set()
        units, others = [], []
        for sig in sorted(signals):
            head, _, name = sig.rpartition("/")
            unit = self._units.get(head) if name == "state" else None
            if unit is not None and unit < self.log.n_stations:
                units.append(unit)
            else:
                others.append(sig)
        return units, others

    # --- input ------------------------------------------------------------------------------------

    def add(self, sample: Sample) -> bool:
        if sample.signal.startswith(CONNECTION_PREFIX):
            self._connection(sample._replace(ts=self.clock()))  # received now, on the twin's timeline
            return True
        if self._restore and sample.signal in self._restore:
            sample = self._restored(sample)
        used = self.router.add(sample)
        if used:
            if self.first_ts is None or sample.ts < self.first_ts:
                self.first_ts = sample.ts
            if self._subscribers:
                self._new.append(sample)
            if sample.signal.endswith("/power_kw"):
                prev = self.latest_kw.get(sample.signal)
                if prev is None or sample.ts >= prev[0]:
                    self.latest_kw[sample.signal] = (sample.ts, float(sample.value))
        return used

    def _restored(self, sample: Sample) -> Sample:
        """``sample`` as the router should take it, for a signal a gap covered. A value stamped
        before the gap began arrives after the reconnect because the server re-sends what it holds
        (an unchanged value keeps its time): it is the value as of the reconnect, so it counts from
        the gap's end. Its own time goes in first when the twin never had it (a change just before
        the loss)."""
        gap = self._restore[sample.signal]
        if gap["end"] is None:  # still down: another source's sample, or one queued before the loss
            return sample
        del self._restore[sample.signal]
        if sample.ts > gap["start"]:
            return sample  # news from after the loss: it ends the gap by itself
        if not self.router.seen(sample.signal, sample.ts):
            self.router.add(sample)
        self.restored += 1
        return sample._replace(ts=max(gap["end"], sample.ts))

    def _connection(self, s: Sample) -> None:
        source = s.signal[len(CONNECTION_PREFIX):]
        up = str(s.value) == "up"
        before = self.connections.get(source)
        self.connections[source] = "up" if up else "down"
        if not up and before != "down":
            units, others = self._scope(source)
            names = self.factory.unit_names()
            gap = {"source": source, "start": s.ts, "end": None,
                   "stations": [names[u] for u in units], "signals": others}
            self.gaps.append(gap)
            # only the stations whose state this source feeds are UNKNOWN from now until their next
            # state sample; its other signals (power, energy, counters) carry the gap in ``signals``
            for unit in units:
                self.log.state(s.ts, unit, int(State.UNKNOWN))
                self._restore[f"{names[unit]}/state"] = gap
            for sig in others:
                self._restore[sig] = gap
        elif up and before == "down":
            for gap in reversed(self.gaps):
                if gap["source"] == source and gap["end"] is None:
                    gap["end"] = s.ts
                    break

    async def consume(self, queue: asyncio.Queue) -> None:
        """Take samples off ``queue`` until cancelled."""
        while True:
            sample = await queue.get()
            self.add(sample)
            self._pending_receive.append(time.monotonic())
            # drain what is already there without yielding to the loop for each sample
            while not queue.empty():
                self.add(queue.get_nowait())
                self._pending_receive.append(time.monotonic())

    # --- output -----------------------------------------------------------------------------------

    def frozen(self, now: float) -> FrozenLog:
        self.log.t_start = self.first_ts if self.first_ts is not None else now
        self.log.t_end = max(now, self.log.t_start)
        return self.log.freeze()

    def current_states(self, frozen: FrozenLog) -> dict[str, str]:
        states = {}
        st = frozen.states
        for unit in range(frozen.n_stations):
            a, b = st.offsets[unit], st.offsets[unit + 1]
            code = int(st.value[b - 1]) if b > a else int(State.UNKNOWN)
            states[frozen.units[unit]] = State(code).name
        return states

    def snapshot(self, now: float | None = None) -> Snapshot:
        """KPIs of the current minute, hour and shift so far, from everything received until now;
        handed to every subscriber before it is returned."""
        now = self.clock() if now is None else now
        if self.retain_s is not None and self.first_ts is not None and now - self.first_ts > self.retain_s * 1.05:
            self.compact(now - self.retain_s)
        frozen = self.frozen(now)
        s0, s1, name = shift_bounds(self.factory, now)
        minute, hour, shift = (self._span(frozen, t0, now) for t0 in (now - now % 60, now - now % 3600, s0))
        done = time.monotonic()
        self.latency_s.extend(done - t for t in self._pending_receive)
        self._pending_receive = []
        new, self._new = tuple(self._new), []
        snap = Snapshot(
            now=now, minute=minute, hour=hour, shift=shift, shift_name=name, shift_end=s1,
            states=self.current_states(frozen), samples=self.router.counts(),
            connections=dict(self.connections), gaps=[dict(g) for g in self.gaps],
            new_samples=new, log=frozen,
        )
        self.last_snapshot = snap
        for callback in self._subscribers:
            callback(snap)
        return snap

    def compact(self, horizon: float) -> int:
        """Forget rows older than ``horizon`` (see ``EventLog.forget_before``); returns how many."""
        dropped = self.log.forget_before(horizon)
        self.retained_from = horizon if self.retained_from is None else max(self.retained_from, horizon)
        self.first_ts = max(self.first_ts or horizon, horizon)
        log.info("live twin: forgot %d rows older than %s", dropped, horizon)
        return dropped

    def _span(self, frozen: FrozenLog, t0: float, t1: float):
        """KPIs over [t0, t1]: states begun before t0 are carried in and clipped."""
        return compute_kpis(dataclasses.replace(frozen, t_start=t0, t_end=max(t1, t0)), self.factory)

    def report(self, t0: float | None = None, t1: float | None = None, edges=None):
        """KPIs over [t0, t1] (default: everything received) with the same core as everything else."""
        now = self.clock() if t1 is None else t1
        frozen = self.frozen(now)
        if t0 is not None:
            frozen.t_start = t0
        return compute_kpis(frozen, self.factory, edges)
