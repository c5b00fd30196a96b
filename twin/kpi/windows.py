"""Aligned KPI windows: edges at whole multiples of the window length from local midnight."""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import numpy as np

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}
_SPEC = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|min|h|d)?\s*$", re.IGNORECASE)


def parse_window_s(spec: str) -> float:
    """Seconds of a window given as ``90``, ``30s``, ``15m``, ``1h``, ``8h`` or ``1d``."""
    m = _SPEC.match(str(spec))
    if not m:
        raise ValueError(f"window {spec!r}: expected a length such as 60s, 15m, 1h, 8h or 1d")
    seconds = float(m.group(1)) * _UNITS[(m.group(2) or "s").lower()]
    if seconds <= 0:
        raise ValueError(f"window {spec!r}: must be longer than 0 s")
    return seconds


def window_edges(t_start: float, t_end: float, window_s: float, tz: str = "UTC") -> np.ndarray:
    """Edges (epoch s) of the aligned windows that cover [t_start, t_end].

    Windows are aligned to local midnight of ``tz`` on the day of ``t_start`` (so 8 h windows in
    Asia/Shanghai fall on 00:00, 08:00, 16:00 local), and the first and last windows may extend
    beyond the data: that time is reported as unknown, not as production or idle.
    """
    if t_end < t_start:
        raise ValueError("t_end is before t_start")
    local = datetime.fromtimestamp(t_start, tz=ZoneInfo(tz))
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(timezone.utc).timestamp()
    first = midnight + math.floor((t_start - midnight) / window_s) * window_s
    n = max(1, math.ceil((t_end - first) / window_s))
    if first + n * window_s < t_end:
        n += 1
    return first + window_s * np.arange(n + 1, dtype=np.float64)
