"""Seconds in each state, failures and invalid codes per unit and window (the states stream)."""

from __future__ import annotations

import numpy as np
from numba import njit

from factory_models.states import N_STATES, State
from twin.kpi.kernels.walk import advance, csr, instant_window, run_chunks

UNKNOWN = int(State.UNKNOWN)
DOWN = int(State.DOWN)


@njit(cache=True, nogil=True)
def _book_state(row, w, a, b, code, edges):
    """Add the part of [a, b) inside each window to row[window, code]; returns the cursor."""
    nw = edges.shape[0] - 1
    if a < edges[0]:
        a = edges[0]
    if b > edges[nw]:
        b = edges[nw]
    if b <= a:
        return w
    w = advance(edges, w, a)
    while True:
        hi = edges[w + 1]
        if b <= hi:
            row[w, code] += b - a
            return w
        row[w, code] += hi - a
        a = hi
        w += 1


@njit(cache=True, nogil=True)
def _state_run(seconds, failures, s, u, edges, t_end):
    """One unit's state samples into ``seconds[window, state]`` and ``failures[window]`` (its rows);
    returns the number of invalid codes.

    Fast path (most samples, windows >> samples): the interval since the previous sample lies in
    the current window and the new sample is inside it and before ``t_end``; then the failure, if
    the sample enters DOWN, belongs to the current window too and is counted without a branch in a
    register (``fails``), written back when the cursor moves on. Everything else takes the general
    path (``_book_state``, ``instant_window``).
    """
    t, code = s.t, s.value
    w = 0
    wf = 0
    n_invalid = 0
    fails = 0
    cur_start = -np.inf
    cur_code = np.uint64(UNKNOWN)
    lo_w = edges[0]
    hi_f = edges[1] if edges[1] < t_end else t_end
    row = seconds[w]  # the current window's seconds by state
    for i in range(s.offsets[u], s.offsets[u + 1]):
        ti = t[i]
        c = np.uint64(code[i])  # unsigned: a negative code is huge, one compare rejects both ends
        if c >= N_STATES:  # rare: not a state, a gap
            n_invalid += 1
            c = np.uint64(UNKNOWN)
        if cur_start >= lo_w and ti < hi_f:
            row[cur_code] += ti - cur_start
            fails += (c == DOWN) & (cur_code != DOWN)
        else:
            failures[w] += fails
            fails = 0
            end = ti if ti < t_end else t_end
            w = _book_state(seconds, w, cur_start, end, cur_code, edges)
            if c == DOWN and cur_code != DOWN and ti < t_end:
                k, wf = instant_window(edges, wf, ti)
                if k >= 0:
                    failures[k] += 1
            lo_w = edges[w]
            hi_f = edges[w + 1] if edges[w + 1] < t_end else t_end
            row = seconds[w]
        cur_start = ti
        cur_code = c
    failures[w] += fails
    w = _book_state(seconds, w, cur_start, t_end, cur_code, edges)
    _book_state(seconds, w, t_end, np.inf, UNKNOWN, edges)
    return n_invalid


@njit(cache=True, nogil=True)
def _state_chunk(k0, k1, s, edges, t_end, seconds, failures, invalid):
    for u in range(k0, k1):
        invalid[u] = _state_run(seconds[u], failures[u], s, u, edges, t_end)


def state_durations(states, edges, t_end):
    """Seconds in each state per unit and window, failures, and invalid state codes, from the
    ``states`` stream (``offsets``, ``t``, ``value`` = state code).

    A state holds from its sample until the unit's next state sample, or ``t_end`` for the last;
    time before a unit's first sample and after ``t_end`` is UNKNOWN, so each window's seconds sum
    to its length. A code outside ``0..N_STATES-1`` is booked as UNKNOWN (a gap, never "unchanged")
    and counted in ``invalid``. A stop is an entry into DOWN from any other state (UNKNOWN
    included) at ``t < t_end``, booked in the window where the DOWN starts. Stops are not failures:
    MTBF and MTTR count ``failure_spells`` (micro-stops out, a repair split by a break counted once).

    Returns ``seconds[n_units, n_windows, N_STATES]``, ``stops[n_units, n_windows]`` (int64),
    ``invalid[n_units]`` (int64).
    """
    s = csr(states)
    edges = np.ascontiguousarray(edges, dtype=np.float64)
    n_units, nw = s.offsets.shape[0] - 1, edges.shape[0] - 1
    seconds = np.zeros((n_units, nw, N_STATES))
    failures = np.zeros((n_units, nw), dtype=np.int64)
    invalid = np.zeros(n_units, dtype=np.int64)
    run_chunks(_state_chunk, np.diff(s.offsets), s, edges, float(t_end), seconds, failures, invalid)
    return seconds, failures, invalid
