"""Supervision of a live run: no exception in a long-running task ends the run silently.

Every long-running piece of ``demo`` and ``run`` (each source, the twin's consumer, the tick loop,
each sink's writes, the accounting of closed hours, the forecast, the dashboard) runs through one
``Supervisor``. An exception is logged once with its context at ERROR (then at most once a minute
per component, with the count since), counted per component, and the work goes on: a call is
skipped, a task is restarted after a backoff. One failing sink never stops another or the tick.

The run's ``errors`` block ({component: {count, last}}) goes into ``--json`` and ``/health`` (which
turns ``degraded`` with the reasons); ``lost_work`` names the components whose failure means the
twin or its sinks stopped doing their job (the command then exits 4).

``LoopLag`` measures how late the event loop wakes a task that sleeps 0.1 s: a blocked loop shows
up there (``loop_lag_s`` with p50, p99 and max).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

#: components whose errors mean lost work (exit 4): the twin, its tick, accounting and every sink
LOSING = ("twin", "tick", "accounting", "sink:")


class Supervisor:
    """Counts and logs the failures of a run's components; runs calls and tasks under that watch."""

    #: after the first report of a component, at most one log line per this many seconds
    LOG_EVERY_S = 60.0
    BACKOFF_S = (0.1, 0.5, 2.0, 5.0)

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._errors: dict[str, dict[str, Any]] = {}
        self._logged: dict[str, tuple[float, int]] = {}  # component -> (when last logged, count then)

    def report(self, component: str, exc: BaseException, context: str = "") -> None:
        """Count ``exc`` against ``component`` and log it (rate-limited per component)."""
        last = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        last = " ".join(last.split())[:300]  # one line, bounded: it ends up on stderr and in /health
        entry = self._errors.setdefault(component, {"count": 0, "last": None})
        entry["count"] += 1
        entry["last"] = last if not context else f"{context}: {last}"
        now = self.clock()
        seen = self._logged.get(component)
        if seen is None:
            self._logged[component] = (now, entry["count"])
            log.error("%s failed%s: %s (the run goes on; later failures of %s are counted, logged at most "
                      "once a minute)", component, f" ({context})" if context else "", last, component,
                      exc_info=(type(exc), exc, exc.__traceback__) if log.isEnabledFor(logging.DEBUG) else None)
        elif now - seen[0] >= self.LOG_EVERY_S:
            self._logged[component] = (now, entry["count"])
            log.error("%s failed %d more time(s) since; last: %s", component, entry["count"] - seen[1],
                      entry["last"])

    def call(self, component: str, fn: Callable[..., Any], *args, context: str = "", default: Any = None, **kw) -> Any:
        """``fn(*args, **kw)``; on an exception (not a cancellation) report it and return ``default``."""
        try:
            return fn(*args, **kw)
        except Exception as exc:  # noqa: BLE001 - supervision: counted and logged, the run goes on
            self.report(component, exc, context)
            return default

    def guard(self, component: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        """``fn`` wrapped by ``call`` (a twin subscriber that must never break the snapshot)."""
        def guarded(*args, **kw):
            return self.call(component, fn, *args, **kw)
        guarded.__name__ = getattr(fn, "__name__", component)
        return guarded

    async def run(self, component: str, factory: Callable[[], Awaitable[Any]], *, restart: bool = True) -> Any:
        """Await ``factory()``; when it raises, report it and (``restart``) start it again after a
        growing backoff (reset once it has run a minute). Returns its result; cancellation passes."""
        attempt = 0
        while True:
            began = time.monotonic()
            try:
                return await factory()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - supervision
                self.report(component, exc, "task")
                if not restart:
                    return None
            if time.monotonic() - began > 60.0:
                attempt = 0
            await asyncio.sleep(self.BACKOFF_S[min(attempt, len(self.BACKOFF_S) - 1)])
            attempt += 1
            log.info("%s restarted (attempt %d)", component, attempt)

    def errors(self) -> dict[str, dict[str, Any]]:
        """The ``errors`` block: {component: {count, last}}, by component name."""
        return {k: dict(v) for k, v in sorted(self._errors.items())}

    def reasons(self) -> list[str]:
        """One line per failing component, for ``/health``."""
        return [f"{k}: {v['count']} error(s), last: {v['last']}" for k, v in sorted(self._errors.items())]


def lost_work(errors: dict[str, dict[str, Any]], sinks: dict[str, Any] | None = None) -> str | None:
    """None when the twin and its sinks did their job; else one line naming what failed (exit 4):
    a component of ``LOSING`` with errors, or a sink whose block counts points it ``dropped``
    (a full disk, a spool's overflow policy, corrupt records)."""
    bad = [f"{k} ({v['count']} error(s), last: {v['last']})" for k, v in sorted(errors.items())
           if k.startswith(LOSING)]
    for name, block in sorted((sinks or {}).items()):
        if isinstance(block, dict) and (block.get("dropped") or 0) > 0:
            why = ", ".join(f"{k[len('dropped_'):]} {v}" for k, v in sorted(block.items())
                            if k.startswith("dropped_") and v)
            bad.append(f"sink:{name} dropped {block['dropped']} point(s)" + (f" ({why})" if why else ""))
    return None if not bad else "the twin or its sinks stopped working: " + "; ".join(bad)


def sink_reasons(name: str, health: dict) -> list[str]:
    """For ``/health``'s reasons: the sink's own (e.g. a spool's full disk), and the points it has
    dropped so far in this run (lost: the run stays degraded and exits 4)."""
    out = [str(r) for r in health.get("reasons") or ()]
    if (health.get("dropped") or 0) > 0:
        out.append(f"sink:{name}: {health['dropped']} point(s) dropped")
    return out


class LoopLag:
    """How late the event loop wakes a task that sleeps ``period_s``: a blocked loop shows here."""

    def __init__(self, period_s: float = 0.1, keep: int = 36_000) -> None:
        self.period_s = period_s
        self.lags: deque[float] = deque(maxlen=keep)  # an hour at 0.1 s
        self.max_s = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(self.period_s)
            lag = max(0.0, loop.time() - t - self.period_s)
            self.lags.append(lag)
            self.max_s = max(self.max_s, lag)

    def block(self) -> dict[str, float | int]:
        """``loop_lag_s``: p50, p99 and max of the lag in seconds, and how many wake-ups were measured."""
        if not self.lags:
            return {"p50": 0.0, "p99": 0.0, "max": 0.0, "n": 0}
        a = np.fromiter(self.lags, dtype=np.float64)
        return {"p50": round(float(np.percentile(a, 50)), 4), "p99": round(float(np.percentile(a, 99)), 4),
                "max": round(self.max_s, 4), "n": len(a)}
