"""Hourly (or any step) grid intensity series, time-aligned with meter windows.

A series is a CSV of ``start,value`` rows (``start`` RFC 3339 with offset, or epoch seconds; value
in the unit of the factor that names the file). Each value holds from its start to the next row's
start; the last row holds for the median step. Lines starting with ``#`` are comments.

Alignment (E = sum over t of kWh_t x EF_t, GHG Protocol Scope 2 Guidance ch. 6; the time-resolved
form of the 2025 revision consultation): a meter window's energy is taken as spread evenly over
the window, so its mean factor is the time average of the step function over the window. The
integral of a step function is piecewise linear, so ``np.interp`` on its cumulative integral
gives every window's mean exactly, vectorised, with no per-sample loop (and so no need for Numba).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np

from factory_models import ConfigError
from factory_models.records import iso_utc

from .units import convert


class SeriesCoverageError(ValueError):
    """Meter windows that fall outside the time covered by an hourly factor series."""


def _parse_time(text: str) -> float:
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"time {text!r} has no UTC offset")
    return dt.timestamp()


@dataclass(frozen=True)
class StepSeries:
    """A factor that changes in steps: ``value[i]`` holds over ``[edges[i], edges[i+1])``."""

    factor_id: str
    edges: np.ndarray  # float64 epoch s, len n+1
    value: np.ndarray  # float64, in ``unit``
    unit: str

    @classmethod
    def from_csv(cls, path: str | Path, factor_id: str, unit: str, to_unit: str = "kg CO2/kWh") -> "StepSeries":
        path = Path(path)
        times, values, problems = [], [], []
        try:
            with path.open(newline="", encoding="utf-8") as fh:
                rows = [r for r in csv.reader(fh)]
        except OSError as exc:
            raise ConfigError(path, [f"cannot read the hourly series: {exc.strerror or exc}"]) from None
        for lineno, row in enumerate(rows, start=1):
            if not row or row[0].lstrip().startswith("#"):
                continue
            if row[0].strip().lower() in ("start", "time", "ts"):
                continue  # header
            if len(row) < 2:
                problems.append(f"line {lineno}: expected 'start,value', got {row!r}")
                continue
            try:
                t = _parse_time(row[0])
                v = float(row[1])
            except ValueError as exc:
                problems.append(f"line {lineno}: {exc}")
                continue
            if not np.isfinite(v) or v < 0:
                problems.append(f"line {lineno}: value must be a finite number >= 0, got {row[1]!r}")
                continue
            if times and t <= times[-1]:
                problems.append(f"line {lineno}: start {row[0]!r} is not after the previous row's")
                continue
            times.append(t)
            values.append(v)
        if len(times) < 2 and not problems:
            problems.append("needs at least two rows")
        if problems:
            raise ConfigError(path, problems)
        t = np.asarray(times, dtype=np.float64)
        step = float(np.median(np.diff(t)))
        edges = np.append(t, t[-1] + step)
        return cls(factor_id, edges, convert(np.asarray(values, dtype=np.float64), unit, to_unit), to_unit)

    @property
    def start(self) -> float:
        return float(self.edges[0])

    @property
    def end(self) -> float:
        return float(self.edges[-1])

    def mean_over(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Time-average factor over each window ``[starts[i], ends[i])``; windows must lie inside."""
        starts = np.asarray(starts, dtype=np.float64)
        ends = np.asarray(ends, dtype=np.float64)
        outside = (starts < self.edges[0]) | (ends > self.edges[-1])
        if outside.any():
            i = int(np.argmax(outside))
            raise SeriesCoverageError(
                f"hourly factor series {self.factor_id!r} covers {iso_utc(self.start)} to {iso_utc(self.end)}, "
                f"but {int(outside.sum())} meter window(s) lie outside it, first "
                f"{iso_utc(starts[i])} to {iso_utc(ends[i])}; extend the series or use an annual factor"
            )
        cum = np.concatenate(([0.0], np.cumsum(self.value * np.diff(self.edges))))
        width = ends - starts
        integral = np.interp(ends, self.edges, cum) - np.interp(starts, self.edges, cum)
        # a zero-length window has no duration to average over: take the value at its instant
        at = self.value[np.clip(np.searchsorted(self.edges, starts, side="right") - 1, 0, len(self.value) - 1)]
        return np.where(width > 0, integral / np.where(width > 0, width, 1.0), at)
