"""What every kernel shares: the records it reads, the window cursors, and the driver over keys.

A kernel walks a stream sorted by (key, t) with CSR offsets (``twin.kpi.eventlog``), one key (a unit,
or a unit and channel) at a time, and books what it reads into windows given by ``edges`` (float64,
ascending, ``n_windows + 1`` entries; window ``i`` is ``[edges[i], edges[i+1])``). Because times are
sorted within a key, the window a row falls in is found by moving a cursor forward, never by a
binary search per row.

The driver (``run_chunks``) splits the keys into contiguous groups holding about the same number of
rows and runs one compiled chunk function per group on a small thread pool. The chunk functions are
plain ``@njit(nogil=True)`` loops, not ``prange``: a parallel (parfor) function costs about 2 s more
to compile than the same serial loop, per kernel, which a fresh install pays before its first OEE;
and without Numba's OpenMP layer there are no spinning OpenMP workers (``OMP_WAIT_POLICY``) to tame.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar

import numpy as np
from numba import config, njit

#: One frozen stream as the kernels read it: CSR ``offsets`` over the keys, then the sorted columns.
Csr = namedtuple("Csr", "offsets t value")
#: The windows: ``edges``, and ``bounds``, the right bounds of the instant windows (``instant_bounds``).
Windows = namedtuple("Windows", "edges bounds")

#: Below this many rows a call runs in the calling thread: a hand-off to the pool costs ~50 us.
MIN_ROWS_PER_THREAD = 100_000

_threads: ContextVar[int | None] = ContextVar("kpi_kernel_threads", default=None)
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def default_threads() -> int:
    """Numba's thread count (``NUMBA_NUM_THREADS``, else the CPUs), capped at this process's CPUs.

    Read from Numba's configuration, not ``numba.get_num_threads()``, which starts Numba's threading
    layer: the kernels never use it.
    """
    return max(1, min(int(config.NUMBA_NUM_THREADS), len(os.sched_getaffinity(0))))


@contextlib.contextmanager
def threads(n: int):
    """Run the kernels called inside this block on at most ``n`` threads (per context: a thread or
    an asyncio task setting it does not change it for others)."""
    if int(n) < 1:
        raise ValueError(f"threads must be >= 1, got {n!r}")
    token = _threads.set(int(n))
    try:
        yield
    finally:
        _threads.reset(token)


def _executor(n: int) -> ThreadPoolExecutor:
    """The shared pool, grown to ``n`` workers. Idle workers block on a queue; they never spin."""
    global _pool
    with _pool_lock:
        if _pool is None or _pool._max_workers < n:
            old, _pool = _pool, ThreadPoolExecutor(max_workers=n, thread_name_prefix="kpi-kernel")
            if old is not None:
                old.shutdown(wait=False)
        return _pool


def balanced_chunks(sizes, n_chunks: int) -> np.ndarray:
    """Key boundaries ``b`` (``b[0] = 0``, ``b[-1] = len(sizes)``) splitting keys of ``sizes`` rows
    into at most ``n_chunks`` contiguous groups of about the same number of rows.

    Balanced by rows, not by keys: a station's PRODUCED counter may have thousands of readings and
    a meter's a handful.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n = sizes.shape[0]
    n_chunks = max(1, min(int(n_chunks), n))
    cum = np.concatenate(([0], np.cumsum(sizes)))
    targets = cum[-1] * np.arange(1, n_chunks) / n_chunks
    inner = np.searchsorted(cum, targets, side="left")
    return np.unique(np.concatenate(([0], np.clip(inner, 0, n), [n]))).astype(np.int64)


def run_chunks(chunk_fn, sizes, *args) -> None:
    """Call ``chunk_fn(k0, k1, *args)`` over contiguous groups of keys that together cover every key.

    ``chunk_fn`` writes only rows ``k0:k1`` of its outputs, so the groups may run at once. One group
    (in the calling thread) unless the rows are many and more than one thread is allowed.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n_keys = sizes.shape[0]
    n = _threads.get() or default_threads()
    n = min(n, max(1, int(sizes.sum()) // MIN_ROWS_PER_THREAD))
    if n <= 1 or n_keys <= 1:
        chunk_fn(0, n_keys, *args)
        return
    b = balanced_chunks(sizes, n)
    pool = _executor(n)
    futures = [pool.submit(chunk_fn, int(b[c]), int(b[c + 1]), *args) for c in range(1, b.shape[0] - 1)]
    chunk_fn(int(b[0]), int(b[1]), *args)  # the calling thread takes the first group
    for f in futures:
        f.result()


def instant_bounds(edges: np.ndarray) -> np.ndarray:
    """Right bounds of the instant windows, indexed by window + 1, for a forward cursor ``w``.

    ``w`` runs from -1 (before ``edges[0]``) through the windows to ``nw`` (after the span); an
    instant ``t`` is in pseudo-window ``w`` while ``t < bounds[w + 1]``. The last window is closed on
    the right (a counter's end-of-run snapshot counts): its bound is the next float above
    ``edges[nw]``; past it the bound is +inf.
    """
    nw = edges.shape[0] - 1
    bounds = np.empty(nw + 2)
    bounds[:nw] = edges[:nw]
    bounds[nw] = np.nextafter(edges[nw], np.inf)
    bounds[nw + 1] = np.inf
    return bounds


def windows(edges: np.ndarray) -> Windows:
    edges = np.ascontiguousarray(edges, dtype=np.float64)
    return Windows(edges, instant_bounds(edges))


def csr(stream, value_dtype=None) -> Csr:
    """The record of one stream: anything with ``offsets``, ``t`` and ``value`` (an event log's
    ``Stream``, a ``Csr``). Contiguous columns of fixed types, so each walk compiles once."""
    return Csr(np.ascontiguousarray(stream.offsets, dtype=np.int64), np.ascontiguousarray(stream.t, dtype=np.float64),
               np.ascontiguousarray(stream.value, dtype=value_dtype))


# --- cursors, inlined into every walk ------------------------------------------------------------


@njit(cache=True, inline="always")
def advance(edges, w, t):
    """Move window cursor ``w`` forward until ``edges[w+1] > t``; ``t`` must be < edges[-1]."""
    while edges[w + 1] <= t:
        w += 1
    return w


@njit(cache=True, inline="always")
def instant_window(edges, w, t):
    """(half-open window of instant ``t`` or -1, updated cursor)."""
    nw = edges.shape[0] - 1
    if t < edges[0] or t >= edges[nw]:
        return -1, w
    w = advance(edges, w, t)
    return w, w


@njit(cache=True, inline="always")
def next_instant(bounds, w, t):
    """Cursor ``w`` (pseudo-window, see ``instant_bounds``) moved on to the one holding instant ``t``."""
    nw = bounds.shape[0] - 2
    w += 1
    while w < nw and t >= bounds[w + 1]:
        w += 1
    return w


@njit(cache=True, inline="always")
def valid_reading(v):
    """A cumulative counter reading is usable: finite and not negative (NaN fails both compares)."""
    return v >= 0.0 and v < np.inf


@njit(cache=True, inline="always")
def first_valid(value, i, end):
    """(index of the first valid reading at or after ``i`` (``end`` if none), readings skipped as bad)."""
    n_bad = 0
    while i < end and not valid_reading(value[i]):
        n_bad += 1
        i += 1
    return i, n_bad


@njit(cache=True, inline="always")
def counter_step(prev, v, modulus):
    """(increment, kind) from reading ``prev`` to ``v``: kind 0 normal, 1 reset, 2 rollover.

    A decrease is never negative production: with a modulus M > 0 and M/2 < prev - v <= M it is a
    rollover (increment v + M - prev), otherwise a reset to zero (increment v).
    """
    d = v - prev
    if d >= 0.0:
        return d, 0
    drop = prev - v
    if modulus > 0.0 and drop > 0.5 * modulus and drop <= modulus:
        return v + modulus - prev, 2
    return v, 1
