"""Columnar event logs: what happened on the shop floor, as flat arrays the KPI core reads.

The simulator, ``replay`` and the live twin all fill the same log, so one KPI core serves them all.

A *unit* is anything with readings: each station (index = position in ``Factory.unit_names()``)
and then each site meter. Four streams, each a set of parallel columns:

- states:   ``t, unit, code``          a station's state from ``t`` until its next state change
- counters: ``t, unit, channel, value`` cumulative readings (produced, good, scrap, rework, energy,
  volume); the KPI core turns them into deltas and handles resets and rollovers
- power:    ``t, unit, kw``             a power gauge, integrated by trapezoid
- products: ``t, unit, code``          the product a station is working on from ``t`` on

``freeze()`` sorts each stream by (key, t) with a stable sort and returns CSR offsets, so that the
kernels walk one unit (or one unit and channel) at a time. Times are float64 seconds since the Unix
epoch, UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

import numpy as np


class Channel(IntEnum):
    PRODUCED = 0
    GOOD = 1
    SCRAP = 2
    REWORK = 3
    ENERGY_KWH = 4
    VOLUME = 5  # gas Nm3 or compressed-air m3, in the meter's own unit


N_CHANNELS = len(Channel)
#: Channels whose increase between two readings is spread over time (energy flows continuously);
#: the others are discrete events booked at the reading that shows them.
CONTINUOUS = np.array([c in (Channel.ENERGY_KWH, Channel.VOLUME) for c in Channel], dtype=np.bool_)

COUNTER_NAMES = {"produced": Channel.PRODUCED, "good": Channel.GOOD, "scrap": Channel.SCRAP,
                 "rework": Channel.REWORK, "energy_kwh": Channel.ENERGY_KWH}


def csr_offsets(keys: np.ndarray, n_keys: int) -> np.ndarray:
    """Offsets o such that rows o[k]:o[k+1] of a key-sorted stream belong to key k."""
    counts = np.bincount(keys, minlength=n_keys) if len(keys) else np.zeros(n_keys, dtype=np.int64)
    out = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


@dataclass
class Stream:
    """One frozen stream: columns sorted by (key, t), and the CSR offsets over the key."""

    t: np.ndarray
    key: np.ndarray
    value: np.ndarray
    offsets: np.ndarray


def _merge(a: Stream, b: Stream) -> Stream:
    """``a`` with the rows of ``b`` inserted in (key, t) order; at equal (key, t) ``a`` comes first,
    as arrival order would have it. O(len(a) + len(b)) plus a binary search per row of ``b``."""
    if len(b.t) == 0:
        return a
    pos = np.empty(len(b.t), dtype=np.int64)
    for k in np.flatnonzero(np.diff(b.offsets)):
        lo, hi = a.offsets[k], a.offsets[k + 1]
        blo, bhi = b.offsets[k], b.offsets[k + 1]
        pos[blo:bhi] = lo + np.searchsorted(a.t[lo:hi], b.t[blo:bhi], side="right")
    return Stream(np.insert(a.t, pos, b.t), np.insert(a.key, pos, b.key), np.insert(a.value, pos, b.value),
                  a.offsets + b.offsets)


def _keep(a: Stream, keep: np.ndarray) -> Stream:
    key = a.key[keep]
    return Stream(a.t[keep], key, a.value[keep], csr_offsets(key, len(a.offsets) - 1))


def _freeze(t: list, key: list, value: list, n_keys: int, value_dtype) -> Stream:
    t_a = np.asarray(t, dtype=np.float64)
    k_a = np.asarray(key, dtype=np.int64)
    v_a = np.asarray(value, dtype=value_dtype)
    order = np.lexsort((t_a, k_a))  # stable: equal (key, t) keep arrival order
    t_a, k_a, v_a = t_a[order], k_a[order], v_a[order]
    return Stream(t_a, k_a, v_a, csr_offsets(k_a, n_keys))


@dataclass
class EventLog:
    """A growing log. Append with the four methods; ``freeze()`` gives the arrays for the KPI core.

    An ``incremental`` log (the live twin's) moves its rows into sorted arrays at each ``freeze()``
    and merges only the rows appended since, so a log that is frozen every tick costs linear time
    per tick and one array element per value, not a sort and a Python object per value.
    """

    units: list[str]  # "line/station" for stations, then "site/meter" for meters
    n_stations: int
    products: list[str]
    t_start: float
    t_end: float
    state_t: list[float] = field(default_factory=list)
    state_unit: list[int] = field(default_factory=list)
    state_code: list[int] = field(default_factory=list)
    count_t: list[float] = field(default_factory=list)
    count_key: list[int] = field(default_factory=list)  # unit * N_CHANNELS + channel
    count_value: list[float] = field(default_factory=list)
    power_t: list[float] = field(default_factory=list)
    power_unit: list[int] = field(default_factory=list)
    power_kw: list[float] = field(default_factory=list)
    product_t: list[float] = field(default_factory=list)
    product_unit: list[int] = field(default_factory=list)
    product_code: list[int] = field(default_factory=list)
    incremental: bool = False
    _base: "FrozenLog | None" = field(default=None, repr=False)

    def state(self, t: float, unit: int, code: int) -> None:
        self.state_t.append(t)
        self.state_unit.append(unit)
        self.state_code.append(code)

    def count(self, t: float, unit: int, channel: int, value: float) -> None:
        self.count_t.append(t)
        self.count_key.append(unit * N_CHANNELS + channel)
        self.count_value.append(value)

    def power(self, t: float, unit: int, kw: float) -> None:
        self.power_t.append(t)
        self.power_unit.append(unit)
        self.power_kw.append(kw)

    def product(self, t: float, unit: int, code: int) -> None:
        self.product_t.append(t)
        self.product_unit.append(unit)
        self.product_code.append(code)

    @property
    def n_units(self) -> int:
        return len(self.units)

    def __len__(self) -> int:
        appended = len(self.state_t) + len(self.count_t) + len(self.power_t) + len(self.product_t)
        return appended + (0 if self._base is None else self._base.rows)

    def freeze(self) -> "FrozenLog":
        frozen = self._freeze_appended()
        if not self.incremental:
            return frozen
        if self._base is not None:
            frozen = FrozenLog(**{**vars(self._base), "t_start": self.t_start, "t_end": self.t_end,
                                  **{name: _merge(getattr(self._base, name), getattr(frozen, name))
                                     for name in STREAMS}})
        self._base = frozen
        for column in _COLUMNS:
            getattr(self, column).clear()
        return frozen

    def forget_before(self, horizon: float) -> int:
        """Forget rows older than ``horizon`` (incremental logs), keeping for every key its last row
        before it: the state carried into the first window, the counter baseline, the power sample
        to interpolate from, the product being made. KPIs of any span after ``horizon`` are
        unchanged. Returns the number of rows forgotten."""
        if not self.incremental:
            raise ValueError("forget_before needs an incremental log")
        base = self.freeze()
        dropped, kept = 0, {}
        for name in STREAMS:
            stream = getattr(base, name)
            keep = stream.t >= horizon
            off = stream.offsets
            for k in range(len(off) - 1):
                a, b = off[k], off[k + 1]
                last_before = a + int(np.searchsorted(stream.t[a:b], horizon, side="left")) - 1
                if last_before >= a:
                    keep[last_before] = True
            dropped += int((~keep).sum())
            kept[name] = _keep(stream, keep)
        self._base = FrozenLog(**{**vars(base), **kept})
        return dropped

    def _freeze_appended(self) -> "FrozenLog":
        n = self.n_units
        return FrozenLog(
            units=list(self.units),
            n_stations=self.n_stations,
            products=list(self.products),
            t_start=self.t_start,
            t_end=self.t_end,
            states=_freeze(self.state_t, self.state_unit, self.state_code, n, np.int8),
            counters=_freeze(self.count_t, self.count_key, self.count_value, n * N_CHANNELS, np.float64),
            power=_freeze(self.power_t, self.power_unit, self.power_kw, n, np.float64),
            products_stream=_freeze(self.product_t, self.product_unit, self.product_code, n, np.int32),
        )


@dataclass
class FrozenLog:
    """Sorted, immutable arrays of an EventLog; what the KPI core consumes."""

    units: list[str]
    n_stations: int
    products: list[str]
    t_start: float
    t_end: float
    states: Stream
    counters: Stream  # key = unit * N_CHANNELS + channel
    power: Stream
    products_stream: Stream

    @property
    def rows(self) -> int:
        return sum(len(getattr(self, name).t) for name in STREAMS)


STREAMS = ("states", "counters", "power", "products_stream")
_COLUMNS = ("state_t", "state_unit", "state_code", "count_t", "count_key", "count_value",
            "power_t", "power_unit", "power_kw", "product_t", "product_unit", "product_code")
