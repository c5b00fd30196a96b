"""Rate limiting per client: a token bucket per key (a client id once authenticated, the peer address
before), so one customer's polling loop cannot starve the others or the plant's own writers.

A bucket holds at most ``burst`` tokens and refills at ``rate`` tokens per second; a request takes
one. An empty bucket answers 429 with ``Retry-After``: the whole seconds until a token is back.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

#: keys kept before idle, full buckets are dropped (peer addresses are not bounded)
MAX_KEYS = 10_000


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    """``take(key)`` -> 0.0 when the request may go ahead, else the seconds to wait (> 0)."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate limit needs rate > 0 and burst >= 1, got rate {rate}, burst {burst}")
        self.rate = float(rate)
        self.burst = int(burst)
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> float:
        now = self._clock()
        b = self._buckets.get(key)
        if b is None:
            if len(self._buckets) >= MAX_KEYS:
                self._prune(now)
            b = self._buckets[key] = _Bucket(float(self.burst), now)
        else:
            b.tokens = min(float(self.burst), b.tokens + (now - b.at) * self.rate)
            b.at = now
        if b.tokens >= 1.0:
            b.tokens -= 1.0
            return 0.0
        return (1.0 - b.tokens) / self.rate

    @staticmethod
    def retry_after(wait_s: float) -> str:
        """The ``Retry-After`` value (RFC 9110 delay-seconds) for a wait: rounded up, at least 1."""
        return str(max(1, math.ceil(wait_s)))

    def _prune(self, now: float) -> None:
        full_after = self.burst / self.rate
        for key in [k for k, b in self._buckets.items() if now - b.at >= full_after]:
            del self._buckets[key]
