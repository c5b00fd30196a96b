"""Numba kernels of the KPI core: one pass over one frozen event-log stream per call.

Each kernel walks a stream sorted by (key, t) with CSR offsets (``twin.eventlog``), one unit (or
one unit and channel) per ``prange`` iteration, and books what it reads into windows given by an
edge array ``edges`` (float64, ascending, ``n_windows + 1`` entries; window ``i`` is
``[edges[i], edges[i+1])``). Because times are sorted within a key, the window a sample falls in
is found by moving a pointer forward, never by a binary search per sample.

The rules (what a state, a reading or a power sample means) are the contract of
``twin.kpi.report``; ``twin.kpi.reference`` states the same rules as plain Python and the property
tests hold the two together.

Two booking conventions:

- durations (states, continuous counters, power) are clipped to the half-open windows;
- discrete events at an instant (a counter reading, a failure) go to the window holding that
  instant. For counter readings the last window is closed on the right, so a final reading taken
  exactly at the end of the span (the usual end-of-run snapshot) is not lost. Failures are
  half-open: a DOWN that starts at the closing edge lasts no time in the span.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from factory_models.states import N_STATES, State
from twin.eventlog import N_CHANNELS, Channel

UNKNOWN = int(State.UNKNOWN)
DOWN = int(State.DOWN)
PRODUCED = int(Channel.PRODUCED)


@njit(cache=True, inline="always")
def _advance(edges, w, t):
    """Move window pointer ``w`` forward until ``edges[w+1] > t``; ``t`` must be < edges[-1]."""
    while edges[w + 1] <= t:
        w += 1
    return w


@njit(cache=True, inline="always")
def _instant_window(edges, w, t, closed_last):
    """(window of instant ``t`` or -1, updated pointer). ``closed_last``: t == edges[-1] is in the last window."""
    nw = edges.shape[0] - 1
    if t < edges[0]:
        return -1, w
    if t >= edges[nw]:
        if closed_last and t == edges[nw]:
            return nw - 1, nw - 1
        return -1, w
    w = _advance(edges, w, t)
    return w, w


@njit(cache=True)
def _book_state(out, u, w, a, b, code, edges):
    """Add the part of [a, b) inside each window to out[u, window, code]; returns the pointer."""
    nw = edges.shape[0] - 1
    if a < edges[0]:
        a = edges[0]
    if b > edges[nw]:
        b = edges[nw]
    if b <= a:
        return w
    w = _advance(edges, w, a)
    while True:
        hi = edges[w + 1]
        if b <= hi:
            out[u, w, code] += b - a
            return w
        out[u, w, code] += hi - a
        a = hi
        w += 1


@njit(cache=True, parallel=True)
def state_durations(offsets, t, code, edges, t_end):
    """Seconds in each state per unit and window, failures, and invalid state codes.

    A state holds from its sample until the unit's next state sample, or ``t_end`` for the last;
    time before a unit's first sample and after ``t_end`` is UNKNOWN, so each window's seconds sum
    to its length. A code outside ``0..N_STATES-1`` is booked as UNKNOWN (a gap, never "unchanged")
    and counted in ``invalid``. A failure is an entry into DOWN from any other state (UNKNOWN
    included) at ``t < t_end``, booked in the window where the DOWN starts.

    Returns ``seconds[n_units, n_windows, N_STATES]``, ``failures[n_units, n_windows]`` (int64),
    ``invalid[n_units]`` (int64).
    """
    n_units = offsets.shape[0] - 1
    nw = edges.shape[0] - 1
    out = np.zeros((n_units, nw, N_STATES))
    failures = np.zeros((n_units, nw), dtype=np.int64)
    invalid = np.zeros(n_units, dtype=np.int64)
    for u in prange(n_units):
        w = 0
        wf = 0
        cur_start = -np.inf
        cur_code = UNKNOWN
        lo_w = edges[0]
        hi_w = edges[1]
        for i in range(offsets[u], offsets[u + 1]):
            ti = t[i]
            c = np.int64(code[i])
            if c < 0 or c >= N_STATES:
                invalid[u] += 1
                c = UNKNOWN
            end = ti if ti < t_end else t_end
            # fast path: the interval lies inside the current window (most samples, windows >> samples)
            if cur_start >= lo_w and end <= hi_w:
                if end > cur_start:
                    out[u, w, cur_code] += end - cur_start
            else:
                w = _book_state(out, u, w, cur_start, end, cur_code, edges)
                lo_w = edges[w]
                hi_w = edges[w + 1]
            if c == DOWN and cur_code != DOWN and ti < t_end:
                k, wf = _instant_window(edges, wf, ti, False)
                if k >= 0:
                    failures[u, k] += 1
            cur_start = ti
            cur_code = c
        w = _book_state(out, u, w, cur_start, t_end, cur_code, edges)
        _book_state(out, u, w, t_end, np.inf, UNKNOWN, edges)
    return out, failures, invalid


@njit(cache=True, inline="always")
def _counter_step(prev, v, modulus):
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


@njit(cache=True, parallel=True)
def counter_deltas(offsets, t, value, edges, modulus, continuous):
    """Increments of cumulative counters per key (= unit * N_CHANNELS + channel) and window.

    The first valid reading of a key is its baseline. Readings that are NaN, infinite or negative
    are skipped and counted in ``bad``. Decreases are resets or rollovers (``_counter_step``),
    counted per key. A discrete channel's increment is booked in the window holding the later
    reading (last window closed); a continuous channel's (``continuous[channel]``) is spread
    linearly over the interval between the two readings, clipped at the window edges, or booked
    like a discrete one when both readings share a timestamp.

    Returns ``delta[n_keys, n_windows]``, ``resets``, ``rollovers``, ``bad``, ``readings`` (valid
    readings), each ``[n_keys]`` int64.
    """
    n_keys = offsets.shape[0] - 1
    nw = edges.shape[0] - 1
    out = np.zeros((n_keys, nw))
    resets = np.zeros(n_keys, dtype=np.int64)
    rollovers = np.zeros(n_keys, dtype=np.int64)
    bad = np.zeros(n_keys, dtype=np.int64)
    readings = np.zeros(n_keys, dtype=np.int64)
    lo_edge = edges[0]
    hi_edge = edges[nw]
    for k in prange(n_keys):
        ch = k % N_CHANNELS
        m = modulus[ch]
        cont = continuous[ch]
        w = 0
        lo_w = edges[0]
        hi_w = edges[1]
        have = False
        prev = 0.0
        prev_t = 0.0
        n_bad = 0  # counted in locals: a store per sample would chain every iteration through memory
        n_resets = 0
        n_rollovers = 0
        for i in range(offsets[k], offsets[k + 1]):
            v = value[i]
            ti = t[i]
            if not (v >= 0.0 and v < np.inf):
                n_bad += 1
                continue
            if not have:
                have = True
                prev = v
                prev_t = ti
                continue
            d, kind = _counter_step(prev, v, m)
            if kind == 1:
                n_resets += 1
            elif kind == 2:
                n_rollovers += 1
            if d > 0.0:
                if ti >= lo_w and ti < hi_w and (not cont or ti == prev_t):
                    out[k, w] += d  # fast path: a discrete reading inside the current window
                elif cont and ti > prev_t and prev_t >= lo_w and ti <= hi_w:
                    out[k, w] += d * (ti - prev_t) / (ti - prev_t)  # fast path: spread within one window
                elif cont and ti > prev_t:
                    a = prev_t if prev_t > lo_edge else lo_edge
                    b = ti if ti < hi_edge else hi_edge
                    if a < b:
                        dt = ti - prev_t
                        w = _advance(edges, w, a)
                        while True:
                            hi = edges[w + 1]
                            if b <= hi:
                                out[k, w] += d * (b - a) / dt
                                break
                            out[k, w] += d * (hi - a) / dt
                            a = hi
                            w += 1
                else:
                    j, w = _instant_window(edges, w, ti, True)
                    if j >= 0:
                        out[k, j] += d
                lo_w = edges[w]
                hi_w = edges[w + 1]
            prev = v
            prev_t = ti
        bad[k] = n_bad
        readings[k] = offsets[k + 1] - offsets[k] - n_bad
        resets[k] = n_resets
        rollovers[k] = n_rollovers
    return out, resets, rollovers, bad, readings


@njit(cache=True, parallel=True)
def trapezoid_energy(offsets, t, kw, edges):
    """kWh per unit and window from a power gauge (kW), trapezoid rule with linear interpolation.

    Consecutive valid samples of a unit bound a segment; its part inside each window is integrated
    exactly (power linear between the samples). NaN or infinite samples are skipped (the segment
    then bridges them) and counted. Time outside every segment is not covered: ``covered_s`` says
    how much of each window the samples span.

    Returns ``kwh[n_units, n_windows]``, ``covered_s[n_units, n_windows]``, ``bad[n_units]`` (int64).
    """
    n_units = offsets.shape[0] - 1
    nw = edges.shape[0] - 1
    kwh = np.zeros((n_units, nw))
    covered = np.zeros((n_units, nw))
    bad = np.zeros(n_units, dtype=np.int64)
    lo_edge = edges[0]
    hi_edge = edges[nw]
    for u in prange(n_units):
        w = 0
        lo_w = edges[0]
        hi_w = edges[1]
        have = False
        t0 = 0.0
        p0 = 0.0
        for i in range(offsets[u], offsets[u + 1]):
            p1 = kw[i]
            t1 = t[i]
            if not (p1 > -np.inf and p1 < np.inf):
                bad[u] += 1
                continue
            if have and t1 > t0 and t0 >= lo_w and t1 <= hi_w:
                kwh[u, w] += (p0 + p1) * (t1 - t0) / 7200.0  # fast path: the segment inside one window
                covered[u, w] += t1 - t0
            elif have and t1 > t0:
                a = t0 if t0 > lo_edge else lo_edge
                b = t1 if t1 < hi_edge else hi_edge
                if a < b:
                    dt = t1 - t0
                    slope = (p1 - p0) / dt
                    w = _advance(edges, w, a)
                    pa = p0 if a == t0 else p0 + slope * (a - t0)
                    while True:
                        hi = edges[w + 1]
                        if b <= hi:
                            pb = p1 if b == t1 else p0 + slope * (b - t0)
                            kwh[u, w] += (pa + pb) * (b - a) / 7200.0
                            covered[u, w] += b - a
                            break
                        pb = p0 + slope * (hi - t0)
                        kwh[u, w] += (pa + pb) * (hi - a) / 7200.0
                        covered[u, w] += hi - a
                        a = hi
                        pa = pb
                        w += 1
                    lo_w = edges[w]
                    hi_w = edges[w + 1]
            have = True
            t0 = t1
            p0 = p1
    return kwh, covered, bad


@njit(cache=True, parallel=True)
def ideal_time(c_offsets, c_t, c_value, p_offsets, p_t, p_code, default_product, ideal_cycle_s, edges,
               modulus_produced):
    """ISO 22400-2 ideal time, PRU x PQ summed over a product mix, per station and window (seconds).

    Each increase of a station's PRODUCED counter (same baseline, bad-reading, reset and rollover
    rules as ``counter_deltas``) is multiplied by the ideal cycle time of the product current at
    that reading: the last products-stream sample at or before it, else ``default_product[station]``.
    A product code outside ``0..n_products-1`` (-1: unknown) books the increase into
    ``unknown_units`` instead. Booked in the window holding the reading (last window closed).

    Returns ``ideal_s[n_stations, n_windows]`` and ``unknown_units[n_stations, n_windows]``, where
    ``n_stations = len(default_product)`` (units past it, the site meters, produce nothing).
    """
    n_stations = default_product.shape[0]
    n_products = ideal_cycle_s.shape[1]
    nw = edges.shape[0] - 1
    ideal = np.zeros((n_stations, nw))
    unknown = np.zeros((n_stations, nw))
    for u in prange(n_stations):
        k = u * N_CHANNELS + PRODUCED
        j = p_offsets[u]
        pe = p_offsets[u + 1]
        cur = np.int64(default_product[u])
        w = 0
        lo_w = edges[0]
        hi_w = edges[1]
        have = False
        prev = 0.0
        for i in range(c_offsets[k], c_offsets[k + 1]):
            v = c_value[i]
            ti = c_t[i]
            if not (v >= 0.0 and v < np.inf):
                continue
            if not have:
                have = True
                prev = v
                continue
            d, kind = _counter_step(prev, v, modulus_produced)
            prev = v
            while j < pe and p_t[j] <= ti:
                cur = np.int64(p_code[j])
                j += 1
            if d > 0.0:
                if ti >= lo_w and ti < hi_w:
                    wi = w  # fast path: the reading is inside the current window
                else:
                    wi, w = _instant_window(edges, w, ti, True)
                    lo_w = edges[w]
                    hi_w = edges[w + 1]
                if wi >= 0:
                    if cur >= 0 and cur < n_products:
                        ideal[u, wi] += d * ideal_cycle_s[u, cur]
                    else:
                        unknown[u, wi] += d
    return ideal, unknown
