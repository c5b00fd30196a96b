"""Samples into the store's signal buckets: folded in memory first, then one upsert per row.

A live snapshot's thousands of samples are a few hundred (signal, bucket) rows, and a row costs
SQLite far more than folding (bench/site.py). The fold and the upsert apply the same rule: the last
value by sample time wins (ties: the later write), min and max merge.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from factory_models import Quality, Sample

SIGNAL_UPSERT = """
    INSERT INTO signal (site, signal, bucket, ts, value, state, quality, min, max)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (site, signal, bucket) DO UPDATE SET
        ts = CASE WHEN excluded.ts >= ts THEN excluded.ts ELSE ts END,
        value = CASE WHEN excluded.ts >= ts THEN excluded.value ELSE value END,
        state = CASE WHEN excluded.ts >= ts THEN excluded.state ELSE state END,
        quality = CASE WHEN excluded.ts >= ts THEN excluded.quality ELSE quality END,
        min = CASE WHEN min IS NULL OR excluded.min < min THEN coalesce(excluded.min, min) ELSE min END,
        max = CASE WHEN max IS NULL OR excluded.max > max THEN coalesce(excluded.max, max) ELSE max END
"""


def fold_samples(samples: Iterable[Sample], site: str, bucket_s: float) -> tuple[list[tuple], int, int]:
    """(rows for SIGNAL_UPSERT, samples taken, samples refused for a non-finite value)."""
    folded: dict[tuple, list] = {}
    taken = bad = 0
    for s in samples:
        bucket = math.floor(s.ts / bucket_s) * bucket_s
        q = s.quality.value if isinstance(s.quality, Quality) else str(s.quality)
        if isinstance(s.value, str):
            row = [site, s.signal, bucket, s.ts, None, s.value, q, None, None]
        else:
            v = float(s.value)
            if not math.isfinite(v):
                bad += 1
                continue
            row = [site, s.signal, bucket, s.ts, v, None, q, v, v]
        taken += 1
        prev = folded.setdefault((s.signal, bucket), row)
        if prev is row:
            continue
        if row[3] >= prev[3]:  # the last by sample time (ties: the later one), as the upsert
            prev[3:7] = row[3:7]
        if row[7] is not None:
            prev[7] = row[7] if prev[7] is None else min(prev[7], row[7])
            prev[8] = row[8] if prev[8] is None else max(prev[8], row[8])
    return [tuple(r) for r in folded.values()], taken, bad
