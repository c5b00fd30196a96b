"""Report periods in the site's time zone: reading `--from/--to`, the clock hours inside a period,
and the calendar years certificates are dated by.

The ledger holds one record per clock hour of the site's zone, so a period is a whole number of
those hours: a bound that is not on one of the zone's clock hours is refused rather than rounded.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np

from .hours import hour_edges, hour_floor

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_LOCAL = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?$")


def zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown IANA time zone {tz!r}") from None


def parse_site_time(text: str, tz: str | None) -> float:
    """Epoch seconds of a period bound: a date (midnight in ``tz``), a local time without offset
    (read in ``tz``), or an RFC 3339 time with ``Z`` or an offset (read as written)."""
    s = text.strip()
    z = zone(tz)
    try:
        if _DATE.match(s):
            return datetime.combine(date.fromisoformat(s), datetime.min.time(), z).timestamp()
        if _LOCAL.match(s):
            return datetime.fromisoformat(s.replace(" ", "T")).replace(tzinfo=z).timestamp()
        dt = datetime.fromisoformat(s.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        dt = None
    if dt is None or dt.tzinfo is None:
        raise ValueError(f"{text!r} is not a date (2026-01-31), a local time (2026-01-31T08:00) "
                         f"or an RFC 3339 time (2026-01-31T00:00:00Z)")
    return dt.timestamp()


def on_clock_hour(t: float, tz: str | None) -> bool:
    return abs(hour_floor(t, tz or "UTC") - t) < 1e-6


def hour_starts(t0: float, t1: float, tz: str | None) -> np.ndarray:
    """Starts of the zone's clock hours that lie in [t0, t1) (t0 floored to a clock hour)."""
    if t1 <= t0:
        return np.zeros(0)
    edges = hour_edges(t0, t1, tz or "UTC")
    return edges[:-1][edges[:-1] < t1]


def year_bounds(year: int, tz: str | None) -> tuple[float, float]:
    """[start, end) of a calendar year in the zone, epoch seconds."""
    z = zone(tz)
    return (datetime(year, 1, 1, tzinfo=z).timestamp(), datetime(year + 1, 1, 1, tzinfo=z).timestamp())


def day_start(d: date, tz: str | None) -> float:
    return datetime.combine(d, datetime.min.time(), zone(tz)).timestamp()


def local_text(t: float, tz: str | None) -> str:
    """A time as the site reads it: ``2026-01-01 00:00 Asia/Shanghai``."""
    return f"{datetime.fromtimestamp(t, tz=zone(tz)).strftime('%Y-%m-%d %H:%M')} {tz or 'UTC'}"
