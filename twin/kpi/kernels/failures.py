"""Failures for MTBF and MTTR: DOWN spells, joined across planned stops and gaps, and micro-stops.

A stop in the states stream is not always a failure. Two rules make the count honest (issue 11):

- a *spell* is a run of DOWN time that a PLANNED_STOP, NO_SHIFT or UNKNOWN interlude does not end:
  a repair that a break, the end of a shift or a lost connection interrupts is one failure, and its
  repair time is the DOWN time on both sides (the interlude is not repair time);
- a spell whose DOWN time is shorter than the site's ``micro_stop_s`` is a micro-stop: its time stays
  in ADET (``state_durations`` books every DOWN second), but it is no failure.

A spell ends at the first sample of any other state (PRODUCING, SETUP, STARVED, BLOCKED, IDLE), or at
``t_end``: a spell still open at the end of the data is judged on the DOWN time seen so far. A failure
and its whole repair time are booked in the half-open window where the spell began (so MTTR of a
window is the mean repair time of the failures that began in it); a micro-stop is counted there too.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from factory_models.states import N_STATES, State
from twin.kpi.kernels.walk import csr, instant_window, run_chunks

DOWN = int(State.DOWN)
UNKNOWN = int(State.UNKNOWN)
PLANNED_STOP = int(State.PLANNED_STOP)
NO_SHIFT = int(State.NO_SHIFT)


@njit(cache=True, inline="always")
def _book(failures, repair, micro, edges, w, start, down_s, micro_stop_s):
    """Book one closed spell into the window holding its start; returns the cursor."""
    k, w = instant_window(edges, w, start)
    if k >= 0:
        if down_s >= micro_stop_s:
            failures[k] += 1
            repair[k] += down_s
        else:
            micro[k] += 1
    return w


@njit(cache=True, nogil=True)
def _failure_run(failures, repair, micro, s, u, edges, t_end, micro_stop_s):
    """One unit's state samples into its rows of ``failures``, ``repair`` and ``micro``."""
    t, code = s.t, s.value
    w = 0
    cur_code = UNKNOWN
    cur_start = 0.0
    spell = False  # a spell is open (DOWN now, or in an interlude after DOWN)
    spell_start = 0.0
    down_s = 0.0
    for i in range(s.offsets[u], s.offsets[u + 1]):
        ti = t[i]
        if ti >= t_end:  # sorted: nothing from here on happens inside the data
            break
        c = np.int64(code[i])
        if c < 0 or c >= N_STATES:
            c = UNKNOWN
        if cur_code == DOWN:
            down_s += ti - cur_start
        if c == DOWN:
            if not spell:
                spell = True
                spell_start = ti
                down_s = 0.0
        elif c != PLANNED_STOP and c != NO_SHIFT and c != UNKNOWN and spell:
            w = _book(failures, repair, micro, edges, w, spell_start, down_s, micro_stop_s)
            spell = False
        cur_start = ti
        cur_code = c
    if cur_code == DOWN:
        down_s += t_end - cur_start
    if spell:
        _book(failures, repair, micro, edges, w, spell_start, down_s, micro_stop_s)


@njit(cache=True, nogil=True)
def _failure_chunk(k0, k1, s, edges, t_end, micro_stop_s, failures, repair, micro):
    for u in range(k0, k1):
        _failure_run(failures[u], repair[u], micro[u], s, u, edges, t_end, micro_stop_s)


def failure_spells(states, edges, t_end, micro_stop_s):
    """Failures, their repair seconds and micro-stops per unit and window, from the ``states`` stream.

    ``micro_stop_s`` (>= 0): a spell with less DOWN time than this is a micro-stop, one with at least
    this much a failure (0: every spell is a failure). Samples at or after ``t_end`` are past the data.
    An invalid code is UNKNOWN (a gap: it does not end a spell). See the module docstring.

    Returns ``failures[n_units, n_windows]`` (int64), ``repair_s[n_units, n_windows]`` (float64) and
    ``micro_stops[n_units, n_windows]`` (int64).
    """
    s = csr(states)
    edges = np.ascontiguousarray(edges, dtype=np.float64)
    micro_stop_s = float(micro_stop_s)
    if not micro_stop_s >= 0.0:
        raise ValueError(f"micro_stop_s must be a number >= 0, got {micro_stop_s!r}")
    n_units, nw = s.offsets.shape[0] - 1, edges.shape[0] - 1
    failures = np.zeros((n_units, nw), dtype=np.int64)
    repair = np.zeros((n_units, nw))
    micro = np.zeros((n_units, nw), dtype=np.int64)
    run_chunks(_failure_chunk, np.diff(s.offsets), s, edges, float(t_end), micro_stop_s, failures, repair, micro)
    return failures, repair, micro
