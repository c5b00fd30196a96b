"""Meters as they are: cumulative counter readings to activity per clock hour of the site.

A meter is read as a register that only grows. Between two readings the difference is the
activity, spread evenly over the time between them (energy flows evenly between two reads), so an
hour takes the share of every reading interval that overlaps it: the cumulative activity,
interpolated at the hour edges. What real registers do on the way (docs/carbon.md, meters as they
are):

- **A decrease** is a reset or a replaced meter: the new counter's value since its start (taken as
  0) is the activity of that interval, the drop itself is never negative energy, and every segment
  is counted. It is counted in ``resets`` of the hour of the reading after it.
- **A rollover**: with the meter's ``rollover`` (its counter maximum M) configured, a decrease of
  more than half the range is the register wrapping: M + 1 - previous + new.
- **A gap**: two readings further apart than 1.5 reading intervals (the median spacing of the
  meter's readings, or the one given) leave the activity between them spread linearly over the
  hours they span, and that activity is marked estimated (GHG Protocol Corporate Standard ch. 7,
  estimating missing data).
- **Bad readings** are rejected and counted by name, never dropped silently: ``not_finite`` (NaN,
  infinite), ``negative``, ``above_rollover`` (more than the configured counter maximum),
  ``back_in_time`` (earlier than a reading already taken),
  ``repeated_time`` (the time of a reading already taken) and ``dip`` (one reading below both of
  its neighbours while the counter carries on above it: a reading out of order or misread, not a
  reset).

Hours before the first reading and after the last hold no activity: nothing is extrapolated.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: two readings further apart than this many reading intervals leave a gap (estimated activity)
GAP_FACTOR = 1.5
REJECTIONS = ("not_finite", "negative", "above_rollover", "back_in_time", "repeated_time", "dip")


@dataclass
class HourlyActivity:
    """Activity of one meter per hour ``[edges[i], edges[i+1])`` and what it rests on."""

    meter: str
    kind: str
    unit: str
    edges: np.ndarray  # n + 1 hour edges
    activity: np.ndarray  # n, in ``unit``
    estimated: np.ndarray  # n, the estimated part of ``activity``
    covered_s: np.ndarray  # n, seconds of the hour between the meter's first and last reading
    readings: np.ndarray  # n, readings used that fall in the hour
    resets: np.ndarray  # n, counter decreases (reset, replaced meter) found in the hour
    first_reading: np.ndarray  # n, epoch s, NaN: none in the hour
    last_reading: np.ndarray  # n
    rollovers: int = 0
    interval_s: float | None = None
    rejected: dict[str, int] = field(default_factory=dict)
    used: int = 0  # readings used (in the span), whether or not on an hour of ``edges``

    @property
    def has_data(self) -> np.ndarray:
        """Hours the meter says something about: part of the hour lies between two readings."""
        return self.covered_s > 0

    def stats(self) -> dict:
        """Per meter: readings used, resets found, rollovers, estimated hours, rejections by reason."""
        return {"meter": self.meter, "kind": self.kind, "readings_used": int(self.used),
                "resets": int(self.resets.sum()), "rollovers": self.rollovers,
                "estimated_hours": int(np.count_nonzero(self.estimated > 0)),
                "hours": int(np.count_nonzero(self.has_data)),
                "rejected": {k: v for k, v in self.rejected.items() if v}}


def clean(ts, reading, rollover: float | None = None) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """The readings usable as a register, in the order given, and the rejected ones counted by reason."""
    ts = np.asarray(ts, dtype=np.float64)
    v = np.asarray(reading, dtype=np.float64)
    if len(ts) != len(v):
        raise ValueError(f"{len(ts)} reading times but {len(v)} readings")
    rejected = dict.fromkeys(REJECTIONS, 0)
    finite = np.isfinite(v) & np.isfinite(ts)
    rejected["not_finite"] = int(np.count_nonzero(~finite))
    neg = finite & (v < 0)
    rejected["negative"] = int(np.count_nonzero(neg))
    above = finite & ~neg & (v > rollover) if rollover is not None else np.zeros(len(v), dtype=bool)
    rejected["above_rollover"] = int(np.count_nonzero(above))  # a register cannot exceed its maximum
    ok = finite & ~neg & ~above
    ts, v = ts[ok], v[ok]
    if len(ts):
        # rejected readings never raise the running maximum, so it can be taken over all of them
        before = np.concatenate(([-np.inf], np.maximum.accumulate(ts)[:-1]))
        back, same = ts < before, ts == before
        rejected["back_in_time"] = int(np.count_nonzero(back))
        rejected["repeated_time"] = int(np.count_nonzero(same))
        ts, v = ts[~(back | same)], v[~(back | same)]
    # a single reading below both neighbours, the counter carrying on at or above the one before it
    if len(v) >= 3:
        dip = np.zeros(len(v), dtype=bool)
        dip[1:-1] = (v[1:-1] < v[:-2]) & (v[2:] >= v[:-2])
        rejected["dip"] = int(np.count_nonzero(dip))
        ts, v = ts[~dip], v[~dip]
    return ts, v, rejected


def segments(v: np.ndarray, rollover: float | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(activity, reset, rollover) of each interval between consecutive readings."""
    d = np.diff(v)
    down = d < 0
    wrap = np.zeros_like(down)
    if rollover is not None:
        wrap = down & (-d > (rollover + 1.0) / 2.0)
    reset = down & ~wrap
    act = np.where(wrap, rollover + 1.0 + d if rollover is not None else 0.0, np.where(reset, v[1:], d))
    return act, reset, wrap


def hourly_activity(meter: str, kind: str, unit: str, ts, reading, edges: np.ndarray, *,
                    interval_s: float | None = None, rollover: float | None = None,
                    span: tuple[float, float] | None = None) -> HourlyActivity:
    """Activity per hour of ``edges`` from a cumulative register read at ``ts`` (see the module docstring).

    ``span`` (t0, t1): only the activity inside it counts (a run's span, one live hour), while the
    readings around it still place the activity of the intervals that cross its bounds.
    """
    edges = np.asarray(edges, dtype=np.float64)
    cut = edges if span is None else np.clip(edges, span[0], span[1])
    n = len(edges) - 1
    t, v, rejected = clean(ts, reading, rollover)
    zeros = np.zeros(n)
    if len(t) == 0:
        nan = np.full(n, np.nan)
        return HourlyActivity(meter, kind, unit, edges, zeros, zeros.copy(), zeros.copy(), np.zeros(n, np.int64),
                              np.zeros(n, np.int64), nan, nan.copy(), 0, interval_s, rejected)
    act, reset, wrap = segments(v, rollover)
    dt = np.diff(t)
    if interval_s is None and len(dt):
        interval_s = float(np.median(dt))
    gap = dt > GAP_FACTOR * interval_s if len(dt) else np.zeros(0, dtype=bool)
    cum = np.concatenate(([0.0], np.cumsum(act)))
    cum_est = np.concatenate(([0.0], np.cumsum(np.where(gap, act, 0.0))))
    # np.interp holds the end values outside [t[0], t[-1]]: nothing before the first or after the last reading
    activity = np.diff(np.interp(cut, t, cum))
    estimated = np.diff(np.interp(cut, t, cum_est))
    covered = np.diff(np.clip(cut, t[0], t[-1]))
    # a reading exactly on an edge belongs to the hour it opens
    hour_of = np.searchsorted(edges, t, side="right") - 1
    inside = (hour_of >= 0) & (hour_of < n)
    if span is not None:
        inside &= (t >= span[0]) & (t <= span[1])
    readings = np.bincount(hour_of[inside], minlength=n)[:n]
    # a reset is counted in the hour its drop happened in: a reading on an edge closes the hour before
    closes = np.searchsorted(edges, t[1:][reset], side="left") - 1
    ok = (closes >= 0) & (closes < n)
    if span is not None:
        ok &= (t[1:][reset] > span[0]) & (t[1:][reset] <= span[1])
    resets = np.bincount(closes[ok], minlength=n)[:n]
    first = np.full(n, np.nan)
    last = np.full(n, np.nan)
    idx = hour_of[inside]
    # readings are in time order: the last write for an hour is its last reading, reversed its first
    last[idx] = t[inside]
    first[idx[::-1]] = t[inside][::-1]
    return HourlyActivity(meter, kind, unit, edges, activity, np.minimum(estimated, activity), covered,
                          readings.astype(np.int64), resets.astype(np.int64), first, last,
                          int(np.count_nonzero(wrap)), interval_s, rejected,
                          int(len(t) if span is None else np.count_nonzero((t >= span[0]) & (t <= span[1]))))
