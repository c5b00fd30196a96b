"""Meter activity over time, checked and made gap-free for accounting.

A ``MeterSeries`` is what a meter recorded: activity per window (kWh, Nm3, GJ, kg) over windows
``[start, end)``. ``intervals()`` turns it into contiguous intervals covering the accounting period
exactly: windows are clipped to the period (activity pro rata to time, since energy flows evenly
within a window), and every stretch with no reading (a missing window or a NaN value) is
gap-filled from the mean rate of its neighbouring readings and flagged ``gap_filled``, so a meter
gap is never read as zero (GHG Protocol Corporate Standard ch. 7, estimating missing data).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from factory_models.records import iso_utc

from .units import UnitError, convert, parse_unit

log = logging.getLogger(__name__)

MEASURED, ESTIMATED, GAP_FILLED = 0, 1, 2
QUALITY_NAMES = ("measured", "estimated", "gap_filled")

#: meter kind -> (dimension of its activity, unit activities are converted to)
KINDS: dict[str, tuple[str, str]] = {
    "grid_import": ("energy", "kWh"),
    "pv": ("energy", "kWh"),
    "heat": ("energy", "GJ"),
    "natural_gas": ("normal_volume", "Nm3"),
    "diesel": ("mass", "kg"),
    "lpg": ("mass", "kg"),
    "coal": ("mass", "kg"),
    # compressed air is made with electricity already in the grid import: it is a shared load
    # to allocate, not an emission source, and accounting it again would double count
    "compressed_air": ("volume", "m3"),
}

#: a gap shorter than this between two readings is clock jitter, not missing data
JITTER_S = 1e-3


class MeterDataError(ValueError):
    """Meter data that cannot be accounted: overlaps, negative readings, no reading at all."""


@dataclass
class MeterSeries:
    """Activity per window of one meter. ``value`` NaN marks a window without a reading.

    ``estimated`` (optional, bool per window) marks values the source itself estimated.
    ``ncv_mj_per_nm3`` is a gas meter's net calorific value when the site measures its own.
    """

    meter: str
    kind: str
    unit: str
    start: np.ndarray
    end: np.ndarray
    value: np.ndarray
    estimated: np.ndarray | None = None
    ncv_mj_per_nm3: float | None = None

    def canonical_unit(self) -> str:
        if self.kind not in KINDS:
            raise MeterDataError(f"meter {self.meter!r}: unknown kind {self.kind!r}; known: {', '.join(KINDS)}")
        dim, unit = KINDS[self.kind]
        u = parse_unit(self.unit)
        if u.dimension != dim:
            raise UnitError(f"meter {self.meter!r} ({self.kind}) reports in {self.unit!r} ({u.dimension}); expected {dim}, e.g. {unit!r}")
        return unit


@dataclass(frozen=True)
class Intervals:
    """Contiguous intervals covering ``[edges[0], edges[-1])``: activity and data quality of each."""

    meter: str
    kind: str
    unit: str
    edges: np.ndarray  # n + 1
    activity: np.ndarray  # n, in ``unit``
    quality: np.ndarray  # n, MEASURED | ESTIMATED | GAP_FILLED

    @property
    def start(self) -> np.ndarray:
        return self.edges[:-1]

    @property
    def end(self) -> np.ndarray:
        return self.edges[1:]

    @property
    def n_gaps(self) -> int:
        return int(np.count_nonzero(self.quality == GAP_FILLED))


def intervals(series: MeterSeries, t0: float, t1: float) -> Intervals:
    """Check ``series`` and return gap-free intervals over ``[t0, t1)`` (see the module docstring)."""
    if not t1 > t0:
        raise MeterDataError(f"accounting period must have t1 > t0, got {iso_utc(t0)} to {iso_utc(t1)}")
    unit = series.canonical_unit()
    start = np.asarray(series.start, dtype=np.float64)
    end = np.asarray(series.end, dtype=np.float64)
    value = np.asarray(series.value, dtype=np.float64)
    est = np.zeros(len(start), dtype=bool) if series.estimated is None else np.asarray(series.estimated, dtype=bool)
    name = series.meter
    if not (len(start) == len(end) == len(value) == len(est)):
        raise MeterDataError(f"meter {name!r}: start, end, value (and estimated) must have the same length")
    if not (np.isfinite(start).all() and np.isfinite(end).all()):
        raise MeterDataError(f"meter {name!r}: window times must be finite")
    bad = ~(end > start)
    if bad.any():
        i = int(np.argmax(bad))
        raise MeterDataError(f"meter {name!r}: window {i} ends at or before it starts ({iso_utc(start[i])} to {iso_utc(end[i])})")
    neg = value < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise MeterDataError(
            f"meter {name!r}: negative activity {value[i]} at {iso_utc(start[i])}; counter resets and "
            f"rollovers must be resolved into per-window deltas before accounting"
        )
    order = np.argsort(start, kind="stable")
    start, end, value, est = start[order], end[order], value[order], est[order]
    overlap = end[:-1] > start[1:] + JITTER_S
    if overlap.any():
        i = int(np.argmax(overlap))
        raise MeterDataError(
            f"meter {name!r}: windows overlap ({iso_utc(start[i])}-{iso_utc(end[i])} and "
            f"{iso_utc(start[i + 1])}-{iso_utc(end[i + 1])}); the same energy would be counted twice"
        )
    value = convert(value, series.unit, unit)
    whole = (start, end, value)  # before clipping: the neighbours of a period with no reading
    # clip to the period, pro rata to time
    keep = (end > t0) & (start < t1)
    start, end, value, est = start[keep], end[keep], value[keep], est[keep]
    cs, ce = np.maximum(start, t0), np.minimum(end, t1)
    value = value * (ce - cs) / (end - start)
    start, end = cs, ce
    have = np.isfinite(value)
    start, end, value, est = start[have], end[have], value[have], est[have]
    if len(start) == 0:
        filled = _silent_period(name, series.kind, unit, whole, t0, t1)
        if filled is not None:
            return filled
        raise MeterDataError(
            f"meter {name!r}: no readings between {iso_utc(t0)} and {iso_utc(t1)}; cannot estimate its "
            f"activity (remove the meter from the inputs if it did not exist then)"
        )
    # gaps: before the first window, between windows, after the last
    prev_end = np.concatenate(([t0], end))
    next_start = np.concatenate((start, [t1]))
    gap = next_start - prev_end > JITTER_S
    rate = value / (end - start)
    # neighbour rates of gap k (which lies before window k): window k-1 and window k, where they exist
    n = len(start)
    idx = np.nonzero(gap)[0]
    left = np.where(idx > 0, rate[np.clip(idx - 1, 0, n - 1)], np.nan)
    right = np.where(idx < n, rate[np.clip(idx, 0, n - 1)], np.nan)
    fill_rate = np.nanmean(np.vstack([left, right]), axis=0) if len(idx) else np.zeros(0)
    g_start, g_end = prev_end[idx], next_start[idx]
    all_start = np.concatenate((start, g_start))
    all_end = np.concatenate((end, g_end))
    all_value = np.concatenate((value, fill_rate * (g_end - g_start)))
    all_q = np.concatenate((np.where(est, ESTIMATED, MEASURED), np.full(len(idx), GAP_FILLED))).astype(np.int8)
    order = np.argsort(all_start, kind="stable")
    all_start, all_end, all_value, all_q = all_start[order], all_end[order], all_value[order], all_q[order]
    # tiny jitter between windows is absorbed: each interval runs to the next one's start
    edges = np.concatenate((all_start[:1], all_start[1:], [t1]))
    edges[0] = t0
    # before the first reading (a meter whose baseline is read when the run starts) and after the
    # last one within two of the meter's own reading intervals, the period merely outlasts the
    # readings: worth a note, not a warning. Every gap still counts as gap_filled in the data-quality block.
    silent_after_s = 2.0 * float((end - start).max())
    inner = (idx > 0) & ((idx < n) | (g_end - g_start > silent_after_s + JITTER_S))
    for level, part in ((logging.WARNING, inner), (logging.INFO, ~inner)):
        if part.any():
            log.log(level, "meter %s: %d gap(s) totalling %.0f s between %s and %s gap-filled from neighbouring readings",
                    name, int(part.sum()), float((g_end - g_start)[part].sum()), iso_utc(t0), iso_utc(t1))
    return Intervals(name, series.kind, unit, edges, all_value, all_q)


def _silent_period(name: str, kind: str, unit: str, whole, t0: float, t1: float) -> "Intervals | None":
    """A meter silent over the whole period but read before or after it (a live hour in which it
    sent nothing): one gap-filled interval at the mean rate of the nearest readings on either side,
    so the silence is a recorded gap, never zero and never an error. None when it has no reading at all."""
    start, end, value = whole
    ok = np.isfinite(value)
    start, end, value = start[ok], end[ok], value[ok]
    rates = []
    before, after = end <= t0 + JITTER_S, start >= t1 - JITTER_S
    if before.any():
        i = int(np.argmax(np.where(before, end, -np.inf)))
        rates.append(value[i] / (end[i] - start[i]))
    if after.any():
        i = int(np.argmax(np.where(after, -start, -np.inf)))
        rates.append(value[i] / (end[i] - start[i]))
    if not rates:
        return None
    log.warning("meter %s: no readings between %s and %s; gap-filled from the nearest readings",
                name, iso_utc(t0), iso_utc(t1))
    return Intervals(name, kind, unit, np.array([t0, t1]), np.array([float(np.mean(rates)) * (t1 - t0)]),
                     np.array([GAP_FILLED], dtype=np.int8))


def bin_by_quality(iv: Intervals, quantity: np.ndarray, window_edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum ``quantity`` (one value per interval) into windows, per data quality.

    Each interval's quantity is spread evenly over its time, so a window takes the share of each
    interval it overlaps: cumulative sums interpolated at the window edges (exact, vectorised).
    Returns (sums, durations), each of shape (n_windows, 3) indexed by quality.
    """
    sums = np.zeros((len(window_edges) - 1, 3))
    durs = np.zeros_like(sums)
    width = np.diff(iv.edges)
    for q in (MEASURED, ESTIMATED, GAP_FILLED):
        mask = iv.quality == q
        if not mask.any():
            continue
        cum_q = np.concatenate(([0.0], np.cumsum(np.where(mask, quantity, 0.0))))
        cum_t = np.concatenate(([0.0], np.cumsum(np.where(mask, width, 0.0))))
        sums[:, q] = np.diff(np.interp(window_edges, iv.edges, cum_q))
        durs[:, q] = np.diff(np.interp(window_edges, iv.edges, cum_t))
    return sums, durs


def series_from_cumulative(
    meter: str,
    kind: str,
    unit: str,
    ts: np.ndarray,
    reading: np.ndarray,
    max_gap_s: float | None = None,
    ncv_mj_per_nm3: float | None = None,
) -> MeterSeries:
    """Per-window activity from a cumulative meter register read at times ``ts``.

    Window i runs from reading i to reading i+1 and holds their difference. A decrease is a
    counter reset: the window holds the reading after the reset and is flagged estimated (what was
    used before the reset is unknown). A window longer than ``max_gap_s`` keeps its exact total but
    is flagged estimated, since its spread in time is not known.
    """
    ts = np.asarray(ts, dtype=np.float64)
    reading = np.asarray(reading, dtype=np.float64)
    if len(ts) != len(reading):
        raise MeterDataError(f"meter {meter!r}: {len(ts)} times but {len(reading)} readings")
    if len(ts) < 2:
        raise MeterDataError(f"meter {meter!r}: a cumulative register needs at least two readings")
    order = np.argsort(ts, kind="stable")
    ts, reading = ts[order], reading[order]
    keep = np.concatenate(([True], np.diff(ts) > 0))  # a repeated timestamp adds no window
    ts, reading = ts[keep], reading[keep]
    delta = np.diff(reading)
    reset = delta < 0
    delta = np.where(reset, reading[1:], delta)
    est = reset.copy()
    if max_gap_s is not None:
        est |= np.diff(ts) > max_gap_s
    if reset.any():
        log.warning("meter %s: %d counter reset(s); the windows are flagged estimated", meter, int(reset.sum()))
    return MeterSeries(meter, kind, unit, ts[:-1], ts[1:], delta, est, ncv_mj_per_nm3)
