"""Compile the KPI kernels ahead of the first KPI, or load them from Numba's cache.

    python -m twin.kpi.warmup       # at install time: fills the cache, prints how long it took

A fresh install has no compiled kernels: the first ``compute_kpis`` would compile them (about 5 s
of CPU) while the live twin's event loop waits. ``warm_up()``, called as a command starts, compiles
them in the background on a tiny log frozen the same way as a live one, so they are compiled for
exactly the argument types ``compute_kpis`` passes and land in Numba's cache. ``compute_kpis``
waits for a warm-up in progress (``wait_ready``) rather than compile the same kernels twice. With a
warm cache the warm-up only loads them (a fraction of a second).

By default the compilation runs in a thread. It holds the GIL nearly all the time, so the event
loop runs slower meanwhile. ``child=True`` compiles in a child process (``python -m
twin.kpi.warmup``, on the other core) and then loads the cache it filled; it freed the event loop,
but both processes are resident meanwhile (the child about 230 MB, most of it Numba itself): cold
``demo`` on 2 idle cores (``python -m bench.footprint --warm-up {thread,child}``): first OEE 7.2 s
and 338 MB with a thread, 8.9 s and 461 MB (process tree) with a child. ``python -m
twin.kpi.warmup`` at install time avoids compiling at start-up at all. Without a writable cache a
child's work is lost and the kernels compile in this process.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time

import numpy as np

log = logging.getLogger(__name__)

_started: threading.Thread | None = None
_lock = threading.Lock()
CHILD_TIMEOUT_S = 300.0


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
        kernels.failure_spells(st, edges, float(f.t_end), 120.0)
        kernels.counter_deltas(ct, edges, modulus, CONTINUOUS)
        kernels.trapezoid_energy(pw, edges)
        mix = kernels.product_mix(pr, np.zeros(1, dtype=np.int64), np.ones((1, 1)))
        kernels.ideal_time(ct, mix, edges, float(modulus[Channel.PRODUCED]))
        kernels.gap_parts(ct, st, mix, edges, float(f.t_end), float(modulus[Channel.PRODUCED]))
    return time.perf_counter() - start


def _compile_in_child() -> None:
    try:
        done = subprocess.run([sys.executable, "-m", "twin.kpi.warmup"], capture_output=True, text=True,
                              timeout=CHILD_TIMEOUT_S)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["no message"]
            log.debug("KPI warm-up child exited %d: %s", done.returncode, lines[-1])
    except (OSError, subprocess.SubprocessError) as exc:
        log.debug("KPI warm-up child could not run: %s", exc)


def cache_is_warm() -> bool:
    """Whether Numba's cache holds the kernels' entry points compiled from the current sources.

    Reads Numba's cache index (an internal API, hence the fallback): a stale or missing index means
    the kernels would compile. Each entry point's cached code holds the functions it calls.
    """
    from twin.kpi.kernels import counters, energy, failures, gaps, states

    entries = (states._state_chunk, counters._counter_chunk, counters._ideal_chunk, energy._energy_chunk,
               failures._failure_chunk, gaps._gap_chunk)
    try:
        return all(fn._cache._cache_file._load_index() for fn in entries)
    except Exception:  # noqa: BLE001 (another Numba version: assume cold)
        return False


def _prepare(child: bool) -> None:
    try:
        if child and not cache_is_warm():  # warm: loading here is quick, a child would only cost memory
            _compile_in_child()
        log.debug("KPI kernels ready in %.1f s", compile_kernels())  # from the cache the child filled
    except Exception as exc:  # noqa: BLE001 (the first compute_kpis then compiles, and reports any error)
        log.warning("KPI kernels could not be prepared ahead: %s", exc)


def warm_up(background: bool = True, child: bool = False) -> threading.Thread | None:
    """Start preparing the kernels, once per process; returns the thread (None when ``background``
    is false: then they are ready). ``child``: compile in a child process (see the module's notes)."""
    global _started
    with _lock:
        if _started is not None:
            return _started
        if not background:
            _prepare(child=False)
            _started = threading.Thread()  # marks it done for later calls
            return None
        _started = threading.Thread(target=_prepare, args=(child,), name="kpi-warm-up", daemon=True)
        _started.start()
        return _started


def wait_ready(timeout_s: float | None = None) -> None:
    """Until a warm-up started in this process has finished (at once when none was started)."""
    thread = _started
    if thread is not None and thread.ident is not None and thread is not threading.current_thread():
        thread.join(timeout_s)


def main() -> int:
    seconds = compile_kernels()
    print(f"KPI kernels compiled (or loaded from the cache) in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
