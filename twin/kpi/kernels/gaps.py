"""Parts counted across a gap: what performance cannot attribute to known time (issue 12, item 6).

A PRODUCED increment is read between two valid readings of the counter. When the station's state is
UNKNOWN for any time between them (a lost connection, an invalid code, before its first state sample,
after the end of the data), the parts may have been made in that unknown time: they cannot be
credited to the known PRODUCING time, which would inflate performance. Such an increment is *in the
gap*: its parts (``in_gap``) and their ideal time (``ideal_gap_s``, PRU of the product in effect, as in
``ideal_time``) are booked at the later reading, and the PRODUCING time between the two readings
(``apt_gap_s``, clipped to the windows) is set aside too: performance keeps only the parts and the time
it can attribute. An increment of 0 across a gap sets nothing aside: no part was made in the known
time either. Same readings, baselines, resets and rollovers as ``ideal_time``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from factory_models.states import N_STATES, State
from twin.kpi.eventlog import N_CHANNELS, Channel
from twin.kpi.kernels.counters import Mix
from twin.kpi.kernels.walk import (advance, counter_step, csr, first_valid, run_chunks, valid_reading,
                                   windows)

PRODUCED = int(Channel.PRODUCED)
PRODUCING = int(State.PRODUCING)
UNKNOWN = int(State.UNKNOWN)


@njit(cache=True, inline="always")
def _code(v):
    c = np.int64(v)
    return c if 0 <= c < N_STATES else UNKNOWN


@njit(cache=True, inline="always")
def _next_change(st, j, j1, x, t_end):
    """Time of the next state change after ``x``: the next sample, or ``t_end`` (then UNKNOWN)."""
    nxt = st[j] if j < j1 else np.inf
    if x < t_end < nxt:
        nxt = t_end
    return nxt


@njit(cache=True, nogil=True)
def _add_span(out, edges, w, a, b):
    """Add the part of [a, b) inside each window to out[window]; returns the cursor."""
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
            out[w] += b - a
            return w
        out[w] += hi - a
        a = hi
        w += 1


@njit(cache=True, nogil=True)
def _gap_run(in_gap, ideal_gap, apt_gap, c, s, mix, u, m, win, t_end):
    """Station ``u``: walk its PRODUCED readings and, alongside, its state samples."""
    edges, bounds = win.edges, win.bounds
    nw = edges.shape[0] - 1
    t, value = c.t, c.value
    k = u * N_CHANNELS + PRODUCED
    i1 = c.offsets[k + 1]
    i, _ = first_valid(value, c.offsets[k], i1)
    if i >= i1:
        return
    st, code = s.t, s.value
    j, j1 = s.offsets[u], s.offsets[u + 1]
    cur = UNKNOWN  # the state at time x; before the first sample: UNKNOWN
    cycle = mix.cycle_s[u]
    jp, pe = mix.offsets[u], mix.offsets[u + 1]
    product = mix.default[u]
    prev, t0 = value[i], t[i]
    while j < j1 and st[j] <= t0:
        cur = _code(code[j])
        j += 1
    w = -1  # instant-window cursor of the readings
    wa = 0  # window cursor of the PRODUCING spans
    for r in range(i + 1, i1):
        v = value[r]
        if not valid_reading(v):
            continue
        tr = t[r]
        d, _ = counter_step(prev, v, m)
        prev = v
        # first pass over [t0, tr): is any of it UNKNOWN?
        j0, cur0 = j, cur
        x = t0
        unknown = False
        while x < tr:
            e = _next_change(st, j, j1, x, t_end)
            if e > tr:
                e = tr
            # UNKNOWN before the span's start is not a gap of this span: the state walk starts
            # there with the state then in effect (a bounded log's first readings may predate it)
            if (x >= t_end or cur == UNKNOWN) and e > edges[0]:
                unknown = True
            x = e
            while j < j1 and st[j] <= x:
                cur = _code(code[j])
                j += 1
        if unknown and d > 0.0:  # no part across a gap: the known time made none, nothing to set aside
            while jp < pe and mix.t[jp] < tr:
                product = mix.code[jp]
                jp += 1
            while w < nw and tr >= bounds[w + 1]:
                w += 1
            if 0 <= w < nw:
                in_gap[w] += d
                if 0 <= product < cycle.shape[0]:
                    ideal_gap[w] += d * cycle[product]
            # second pass: the PRODUCING time between the two readings is not attributable either
            jj, cc = j0, cur0
            x = t0
            while x < tr:
                e = _next_change(st, jj, j1, x, t_end)
                if e > tr:
                    e = tr
                if x < t_end and cc == PRODUCING:
                    wa = _add_span(apt_gap, edges, wa, x, e)
                x = e
                while jj < j1 and st[jj] <= x:
                    cc = _code(code[jj])
                    jj += 1
        t0 = tr


@njit(cache=True, nogil=True)
def _gap_chunk(k0, k1, c, s, mix, m, win, t_end, in_gap, ideal_gap, apt_gap):
    for u in range(k0, k1):
        _gap_run(in_gap[u], ideal_gap[u], apt_gap[u], c, s, mix, u, m, win, t_end)


def gap_parts(counters, states, mix: Mix, edges, t_end, modulus_produced):
    """Parts, ideal time and PRODUCING time that performance cannot attribute, per station and window.

    ``counters`` and ``states`` are the event log's streams, ``mix`` the product mix (``product_mix``),
    ``modulus_produced`` the PRODUCED counter's rollover modulus (0: none). See the module docstring.

    Returns ``in_gap[n_stations, n_windows]`` (parts, booked at the reading after the gap),
    ``ideal_gap_s`` (their PRU x parts, same window) and ``apt_gap_s`` (PRODUCING seconds between the
    readings that bracket a gap, clipped to the windows), where ``n_stations = len(mix.default)``.
    """
    c = csr(counters, np.float64)
    s = csr(states)
    win = windows(edges)
    n_stations = mix.default.shape[0]
    nw = win.edges.shape[0] - 1
    in_gap = np.zeros((n_stations, nw))
    ideal_gap = np.zeros((n_stations, nw))
    apt_gap = np.zeros((n_stations, nw))
    keys = np.arange(n_stations) * N_CHANNELS + PRODUCED
    sizes = c.offsets[keys + 1] - c.offsets[keys] if n_stations else np.zeros(0, dtype=np.int64)
    run_chunks(_gap_chunk, sizes, c, s, mix, float(modulus_produced), win, float(t_end), in_gap, ideal_gap, apt_gap)
    return in_gap, ideal_gap, apt_gap
