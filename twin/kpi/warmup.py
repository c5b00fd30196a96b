"""Compile the KPI kernels ahead of the first KPI, or load them from Numba's cache.

    python -m twin.kpi.warmup       # at install time: fills the cache, prints how long it took

A fresh install has no compiled kernels: the first ``compute_kpis`` would compile four of them
(about 5 s of CPU) while the live twin's event loop waits. ``warm_up()`` does it in a background
thread as soon as a command starts, on a tiny log frozen the same way as a live one, so the kernels
are compiled for exactly the argument types ``compute_kpis`` passes (one specialisation each) and
the first tick finds them ready. A kernel called while the warm-up is still compiling it waits for
that compilation (Numba's compiler lock) instead of compiling it again. With a warm cache the
thread only loads the compiled code (a fraction of a second).

Compilation holds the GIL most of the time, so the event loop runs slower meanwhile; it is still
better than the loop standing still, and the sources connect and subscribe in that time.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

import numpy as np

log = logging.getLogger(__name__)

_started: threading.Thread | None = None
_lock = threading.Lock()


def compile_kernels() -> float:
    """Run every kernel once on a tiny log with the argument types of ``compute_kpis``; seconds taken."""
    from twin.kpi import kernels
    from twin.kpi.eventlog import CONTINUOUS, N_CHANNELS, Channel, EventLog

    start = time.perf_counter()
    log_ = EventLog(units=["l/s", "site/m"], n_stations=1, products=["p"], t_start=0.0, t_end=60.0)
    log_.state(0.0, 0, 1)
    for t, v in ((0.0, 0.0), (30.0, 2.0)):
        log_.count(t, 0, Channel.PRODUCED, v)
        log_.count(t, 1, Channel.ENERGY_KWH, v)
        log_.power(t, 1, v)
    log_.product(0.0, 0, 0)
    f = log_.freeze()
    st, ct, pw, pr = f.states, f.counters, f.power, f.products_stream
    modulus = np.zeros(N_CHANNELS)
    for edges in (np.array([0.0, 60.0]), np.arange(0.0, 61.0, 30.0)):
        kernels.state_durations(st, edges, float(f.t_end))
        kernels.counter_deltas(ct, edges, modulus, CONTINUOUS)
        kernels.trapezoid_energy(pw, edges)
        mix = kernels.product_mix(pr, np.zeros(1, dtype=np.int64), np.ones((1, 1)))
        kernels.ideal_time(ct, mix, edges, float(modulus[Channel.PRODUCED]))
    return time.perf_counter() - start


def _run() -> None:
    try:
        log.debug("KPI kernels ready in %.1f s", compile_kernels())
    except Exception as exc:  # noqa: BLE001 (the first compute_kpis then compiles, and reports any error)
        log.warning("KPI kernels could not be prepared ahead: %s", exc)


def warm_up(background: bool = True) -> threading.Thread | None:
    """Start compiling (or loading) the kernels; once per process. Returns the thread (None when
    ``background`` is false: then it has finished)."""
    global _started
    with _lock:
        if _started is not None:
            return _started
        if not background:
            _run()
            _started = threading.Thread()  # marks it done for later calls
            return None
        _started = threading.Thread(target=_run, name="kpi-warm-up", daemon=True)
        _started.start()
        return _started


def main() -> int:
    seconds = compile_kernels()
    print(f"KPI kernels compiled (or loaded from the cache) in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
