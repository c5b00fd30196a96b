"""Samples into the event log: one router for ``replay`` and the live twin, so both feed the same KPI core.

Every sample is either used or rejected with a counted reason (docs/architecture.md, Contracts). The reasons are
stable names that show up in JSON summaries and on ``/health``:

``unknown_signal``  no such station, meter or signal name in the factory model
``bad_value``       a counter or gauge that is not a number, or a negative one
``nan``             NaN or infinity
``unknown_state``   a ``state`` value that is not a state name of docs/kpis.md
``unknown_product`` a ``product`` value that the factory does not make
``bad_quality``     the source marked it Bad: kept out of the KPIs, but counted
``duplicate``       the same signal at the same timestamp again (the first one is kept). A value a server
                    re-sends after a reconnect with its original time is not one: the live twin
                    restores it from the reconnect (live_twin.py) before it gets here
``clock_skew``      live runs only: stamped more than ``live.max_clock_skew_s`` ahead of its receive time
``too_old``         live runs only: stamped more than ``live.max_sample_age_s`` before its receive time
``other_process``   ``run --lines``: a signal of the site that another process owns (``elsewhere``)

The last two need a receive clock (the live twin's, which is the simulated clock in ``demo``); ``replay``
has none, so a recording of any age is read whole.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from factory_models import Factory, Quality, Sample
from factory_models.signals import METER_SIGNALS, STATION_SIGNALS
from factory_models.states import parse_state

from twin.kpi.eventlog import COUNTER_NAMES, Channel, EventLog

log = logging.getLogger(__name__)

#: event-log channel of each counter signal of a site meter (energy, gas or compressed-air volume)
METER_COUNTERS = {"energy_kwh": Channel.ENERGY_KWH, "volume_nm3": Channel.VOLUME, "volume_m3": Channel.VOLUME}


@dataclass(frozen=True, slots=True)
class Route:
    unit: int
    kind: str  # "state" | "product" | "power" | "counter"
    channel: int = -1


def _route(unit: int, name: str, kind: str) -> Route:
    if name == "state":
        return Route(unit, "state")
    if name == "product":
        return Route(unit, "product")
    if kind == "gauge":
        return Route(unit, "power")
    channel = COUNTER_NAMES[name] if name in COUNTER_NAMES else METER_COUNTERS[name]
    return Route(unit, "counter", int(channel))


def build_routes(factory: Factory) -> dict[str, Route]:
    """Every signal the factory model knows (``factory_models.signals``), and where its samples go
    in the event log."""
    routes: dict[str, Route] = {}
    for unit, (ln, _, name) in enumerate(factory.station_units()):
        for sig, kind in STATION_SIGNALS.items():
            routes[f"{ln.name}/{name}/{sig}"] = _route(unit, sig, kind)
    first_meter = len(factory.station_units())
    for i, meter in enumerate(factory.meters):
        for sig, kind in METER_SIGNALS[meter.kind].items():
            routes[f"site/{meter.name}/{sig}"] = _route(first_meter + i, sig, kind)
    return routes


def new_log(factory: Factory, t_start: float, t_end: float) -> EventLog:
    return EventLog(
        units=factory.unit_names(),
        n_stations=len(factory.station_units()),
        products=factory.product_names(),
        t_start=t_start,
        t_end=t_end,
    )


class SampleRouter:
    """Appends samples to an EventLog, rejecting what cannot be used with a counted reason.

    ``seen_limit`` bounds the memory spent on duplicate detection: only the timestamps of the last
    ``seen_limit`` distinct (signal, ts) pairs are remembered. With a receive ``clock`` (live runs),
    a sample's time must lie within ``max_sample_age_s`` before and ``max_clock_skew_s`` after it.
    """

    def __init__(self, factory: Factory, log_: EventLog, *, on_reject=None, seen_limit: int = 50_000,
                 clock: Callable[[], float] | None = None, max_clock_skew_s: float = math.inf,
                 max_sample_age_s: float = math.inf):
        self.routes = build_routes(factory)
        self.products = {name: i for i, name in enumerate(factory.product_names())}
        self.log = log_
        self.received = 0
        self.used = 0
        self.rejected: Counter[str] = Counter()
        self.uncertain = 0
        # per signal, so a live run can say what each source's samples came to (twin/runtime/diagnostics.py)
        self.used_by_signal: dict[str, int] = {}
        self.rejected_by_signal: dict[str, Counter[str]] = {}
        # the hash of (signal, ts) of the last ``seen_limit`` to 2 x ``seen_limit`` used samples, in two
        # generations: O(1) per sample (evicting the oldest key of one dict one by one costs a scan over
        # the deleted slots in front of it) and ~60 bytes a key (a tuple and its float cost ~110); two
        # samples whose 64-bit hashes collide are one chance in ~1e14 per sample
        self._seen: set[int] = set()
        self._seen_old: set[int] = set()
        self._seen_limit = seen_limit
        self._on_reject = on_reject
        self._clock = clock
        self.max_clock_skew_s = max_clock_skew_s
        self.max_sample_age_s = max_sample_age_s
        self.t_min = math.inf
        self.t_max = -math.inf
        self.elsewhere: frozenset[str] = frozenset()  # run --lines: signals another process owns

    def reject(self, reason: str, sample: Sample | None, detail: str = "") -> None:
        self.rejected[reason] += 1
        if sample is not None and sample.signal in self.routes:  # bounded: junk names are not kept
            per = self.rejected_by_signal.get(sample.signal)
            if per is None:
                per = self.rejected_by_signal[sample.signal] = Counter()
            per[reason] += 1
        if self._on_reject is not None:
            self._on_reject(reason, sample, detail)
        elif self.rejected[reason] <= 5:  # the first few of each reason, then counts only
            log.warning("sample rejected (%s): %s %s", reason, sample, detail)

    def seen(self, signal: str, ts: float) -> bool:
        """True if a sample of ``signal`` at ``ts`` was used (within the remembered ones)."""
        key = hash((signal, ts))
        return key in self._seen or key in self._seen_old

    def add(self, s: Sample) -> bool:
        """Route one sample; True if it was used."""
        self.received += 1
        route = self.routes.get(s.signal)
        if route is None:
            self.reject("other_process" if s.signal in self.elsewhere else "unknown_signal", s)
            return False
        if not isinstance(s.ts, float | int) or not math.isfinite(s.ts):
            self.reject("bad_value", s, "timestamp is not a finite number")
            return False
        if self._clock is not None:
            now = self._clock()
            if s.ts - now > self.max_clock_skew_s:
                self.reject("clock_skew", s, f"{s.ts - now:.0f} s ahead of its receive time "
                                             f"(live.max_clock_skew_s is {self.max_clock_skew_s:g})")
                return False
            if now - s.ts > self.max_sample_age_s:
                self.reject("too_old", s, f"{now - s.ts:.0f} s older than its receive time "
                                          f"(live.max_sample_age_s is {self.max_sample_age_s:g})")
                return False
        if s.quality == Quality.BAD:
            self.reject("bad_quality", s)
            return False
        key = hash((s.signal, s.ts))
        if key in self._seen or key in self._seen_old:
            self.reject("duplicate", s)
            return False
        log_ = self.log
        if route.kind == "state":
            try:
                code = int(parse_state(str(s.value)))
            except ValueError as exc:
                self.reject("unknown_state", s, str(exc))
                return False
            log_.state(s.ts, route.unit, code)
        elif route.kind == "product":
            v = s.value
            name = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v).strip()
            code = self.products.get(name)
            if code is None:
                self.reject("unknown_product", s, f"products are {sorted(self.products)}")
                return False
            log_.product(s.ts, route.unit, code)
        else:
            value = s.value
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    self.reject("bad_value", s, "not a number")
                    return False
            if isinstance(value, bool) or not isinstance(value, float | int):
                self.reject("bad_value", s, "not a number")
                return False
            if not math.isfinite(value):
                self.reject("nan", s)
                return False
            if value < 0 and (route.kind == "counter" or route.channel == Channel.ENERGY_KWH):
                self.reject("bad_value", s, "a counter cannot be negative")
                return False
            if route.kind == "power":
                log_.power(s.ts, route.unit, float(value))
            else:
                log_.count(s.ts, route.unit, route.channel, float(value))
        self._seen.add(key)
        if len(self._seen) >= self._seen_limit:
            self._seen_old, self._seen = self._seen, set()
        if s.quality == Quality.UNCERTAIN:
            self.uncertain += 1
        self.used += 1
        per_signal = self.used_by_signal
        per_signal[s.signal] = per_signal.get(s.signal, 0) + 1
        if s.ts < self.t_min:
            self.t_min = s.ts
        if s.ts > self.t_max:
            self.t_max = s.ts
        return True

    def counts(self) -> dict:
        """The ``samples`` block of the JSON summaries."""
        return {
            "received": self.received,
            "used": self.used,
            "rejected": sum(self.rejected.values()),
            "rejected_by_reason": dict(sorted(self.rejected.items())),
            "uncertain": self.uncertain,
        }

