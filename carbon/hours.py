"""Clock hours and days of the site's time zone, as UTC epoch seconds.

The emissions ledger keeps one record per source and clock hour of the site (docs/carbon.md, the
hourly ledger). Most zones are a whole number of hours off UTC, so their hours start on UTC hours;
zones 30 or 45 minutes off (India, Nepal, parts of Australia) start them elsewhere, and a change of
offset (summer time) moves them. Hour edges are therefore found from the zone's offset at each
instant, never assumed to be UTC hours. Asia/Shanghai (UTC+8, no summer time) starts its days at
16:00 UTC of the day before.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

HOUR_S = 3600.0


@lru_cache(maxsize=64)
def _zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def _offset_s(t: float, tz: str) -> float:
    return datetime.fromtimestamp(t, _zone(tz)).utcoffset().total_seconds()


def hour_floor(t: float, tz: str = "UTC") -> float:
    """The start of the site's clock hour holding ``t`` (epoch s)."""
    local = datetime.fromtimestamp(t, _zone(tz))
    start = local.replace(minute=0, second=0, microsecond=0).timestamp()
    return float(start if start <= t else start - HOUR_S)


def hour_edges(t0: float, t1: float, tz: str = "UTC") -> np.ndarray:
    """Clock-hour edges of the site's zone covering ``[t0, t1)``: from the start of the hour holding
    ``t0`` to the first hour boundary at or after ``t1`` (at least two edges)."""
    if not (np.isfinite(t0) and np.isfinite(t1)) or t1 < t0:
        raise ValueError(f"hour_edges needs finite t0 <= t1, got {t0} and {t1}")
    first = hour_floor(t0, tz)
    n = max(int(np.ceil((t1 - first) / HOUR_S)), 1)
    edges = first + HOUR_S * np.arange(n + 1, dtype=np.float64)
    frac = _offset_s(first, tz) % HOUR_S
    # offsets change by whole hours almost everywhere: then UTC-spaced edges stay on local hours
    probes = np.append(edges[::24], edges[-1])
    if any(_offset_s(float(x), tz) % HOUR_S != frac for x in probes):
        out = [first]
        while out[-1] < t1:
            nxt = hour_floor(out[-1] + HOUR_S, tz)
            out.append(nxt if nxt > out[-1] else out[-1] + HOUR_S)
        edges = np.asarray(out, dtype=np.float64)
    return edges


def site_day_bounds(day: date, tz: str = "UTC") -> tuple[float, float]:
    """(start, end) epoch s of the site's calendar ``day``: local midnight to the next local midnight."""
    z = _zone(tz)
    a = datetime.combine(day, time(0), z)
    b = datetime.combine(day + timedelta(days=1), time(0), z)
    return a.timestamp(), b.timestamp()


def site_time(text: str, tz: str = "UTC") -> float:
    """Epoch s of a date (``2026-03-01``: local midnight) or a time (``2026-03-01T08:00``) read in the
    site's zone; a time with its own offset (``...+08:00`` or ``Z``) is taken as written."""
    s = text.strip()
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (YYYY-MM-DD) or a time (YYYY-MM-DDTHH:MM)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_zone(tz))
    return dt.timestamp()


def local_hour_label(t: float, tz: str = "UTC") -> str:
    """``2026-03-01 08:00+08:00``: an hour start as the site reads it."""
    return datetime.fromtimestamp(t, _zone(tz)).isoformat(sep=" ", timespec="minutes")
