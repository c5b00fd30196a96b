"""Numba kernels of the KPI core: one pass over one frozen event-log stream per call.

Each kernel walks a stream sorted by (key, t) with CSR offsets (``twin.kpi.eventlog``), one unit (or
one unit and channel) per ``prange`` iteration, and books what it reads into windows given by an
edge array ``edges`` (float64, ascending, ``n_windows + 1`` entries; window ``i`` is
``[edges[i], edges[i+1])``). Because times are sorted within a key, the window a sample falls in
is found by moving a pointer forward, never by a binary search per sample.

The rules (what a state, a reading or a power sample means) are the contract of
``twin.kpi.compute``; ``twin.kpi.reference`` states the same rules as plain Python and the property
tests hold the two together.

Two booking conventions:

- durations (states, continuous counters, power) are clipped to the half-open windows;
- discrete events at an instant (a counter reading, a failure) go to the window holding that
  instant. For counter readings the last window is closed on the right, so a final reading taken
  exactly at the end of the span (the usual end-of-run snapshot) is not lost. Failures are
  half-open: a DOWN that starts at the closing edge lasts no time in the span.
"""

from __future__ import annotations

import os

# Idle OpenMP threads sleep instead of spinning. Numba's default threading layer is OpenMP, whose
# workers spin after each parallel loop; on a machine shared with other work (more runnable threads
# than cores) the spinning takes the CPU from the threads still working, and two threads ran the
# kernels 2-3x slower than one. Must be set before the OpenMP runtime starts (the first parallel
# call); an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numba  # noqa: E402
import numpy as np  # noqa: E402
from numba import njit, prange  # noqa: E402

from factory_models.states import N_STATES, State  # noqa: E402
from twin.kpi.eventlog import N_CHANNELS, Channel  # noqa: E402

UNKNOWN = int(State.UNKNOWN)
DOWN = int(State.DOWN)
PRODUCED = int(Channel.PRODUCED)


@njit(cache=True, inline="always")
def _advance(edges, w, t):
    """Move window pointer ``w`` forward until ``edges[w+1] > t``; ``t`` must be < edges[-1]."""
    while edges[w + 1] <= t:
        w += 1
    return w


def balanced_chunks(sizes, n_chunks: int) -> np.ndarray:
    """Key boundaries ``b`` (``b[0] = 0``, ``b[-1] = len(sizes)``) splitting keys of ``sizes`` rows
    into at most ``n_chunks`` contiguous groups of about the same number of rows.

    The kernels hand one group to each thread (``prange`` over groups): balanced by rows, not by
    keys, since a station's PRODUCED counter may have thousands of readings and a meter's a handful.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    n = sizes.shape[0]
    n_chunks = max(1, min(int(n_chunks), n))
    cum = np.concatenate(([0], np.cumsum(sizes)))
    targets = cum[-1] * np.arange(1, n_chunks) / n_chunks
    inner = np.searchsorted(cum, targets, side="left")
    return np.unique(np.concatenate(([0], np.clip(inner, 0, n), [n]))).astype(np.int64)


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


@njit(cache=True)
def _state_run(out, failures, u, t, code, i0, i1, edges, t_end):
    """One unit's state samples; returns the number of invalid codes.

    Fast path (most samples, windows >> samples): the interval since the previous sample lies in
    the current window and the new sample is inside it and before ``t_end``; then the failure, if
    the sample enters DOWN, belongs to the current window too and is counted without a branch in a
    register (``fails``), written back when the pointer moves on. Everything else takes the general
    path (``_book_state``, ``_instant_window``).
    """
    w = 0
    wf = 0
    n_invalid = 0
    fails = 0
    cur_start = -np.inf
    cur_code = np.uint64(UNKNOWN)
    lo_w = edges[0]
    hi_f = edges[1] if edges[1] < t_end else t_end
    row = out[u, w]  # the current window's seconds by state
    for i in range(i0, i1):
        ti = t[i]
        c = np.uint64(code[i])  # unsigned: a negative code is huge, one compare rejects both ends
        if c >= N_STATES:  # rare: not a state, a gap
            n_invalid += 1
            c = np.uint64(UNKNOWN)
        if cur_start >= lo_w and ti < hi_f:
            row[cur_code] += ti - cur_start
            fails += (c == DOWN) & (cur_code != DOWN)
        else:
            failures[u, w] += fails
            fails = 0
            end = ti if ti < t_end else t_end
            w = _book_state(out, u, w, cur_start, end, cur_code, edges)
            if c == DOWN and cur_code != DOWN and ti < t_end:
                k, wf = _instant_window(edges, wf, ti, False)
                if k >= 0:
                    failures[u, k] += 1
            lo_w = edges[w]
            hi_f = edges[w + 1] if edges[w + 1] < t_end else t_end
            row = out[u, w]
        cur_start = ti
        cur_code = c
    failures[u, w] += fails
    w = _book_state(out, u, w, cur_start, t_end, cur_code, edges)
    _book_state(out, u, w, t_end, np.inf, UNKNOWN, edges)
    return n_invalid


@njit(cache=True, parallel=True)
def _state_durations(offsets, t, code, edges, t_end, chunks):
    n_units = offsets.shape[0] - 1
    nw = edges.shape[0] - 1
    out = np.zeros((n_units, nw, N_STATES))
    failures = np.zeros((n_units, nw), dtype=np.int64)
    invalid = np.zeros(n_units, dtype=np.int64)
    for c in prange(chunks.shape[0] - 1):
        for u in range(chunks[c], chunks[c + 1]):
            invalid[u] = _state_run(out, failures, u, t, code, offsets[u], offsets[u + 1], edges, t_end)
    return out, failures, invalid


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
    chunks = balanced_chunks(np.diff(offsets), numba.get_num_threads())
    return _state_durations(offsets, t, code, edges, float(t_end), chunks)


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


@njit(cache=True, inline="always")
def _instant_bounds(edges):
    """Right bounds of the instant windows, indexed by window + 1, for a forward pointer ``w``.

    ``w`` runs from -1 (before ``edges[0]``) through the windows to ``nw`` (after the span); an
    instant ``t`` is in pseudo-window ``w`` while ``t < bounds[w + 1]``. The last window is closed on
    the right: its bound is the next float above ``edges[nw]``; past it the bound is +inf.
    """
    nw = edges.shape[0] - 1
    bounds = np.empty(nw + 2)
    for i in range(nw):
        bounds[i] = edges[i]
    bounds[nw] = np.nextafter(edges[nw], np.inf)
    bounds[nw + 1] = np.inf
    return bounds


@njit(cache=True, inline="always")
def _first_valid(value, i, end):
    """(index of the first valid reading at or after ``i`` (``end`` if none), readings skipped as bad)."""
    n_bad = 0
    while i < end:
        v = value[i]
        if v >= 0.0 and v < np.inf:
            break
        n_bad += 1
        i += 1
    return i, n_bad


@njit(cache=True)
def _discrete_run(out, k, t, value, i0, i1, bounds, m):
    """Book one discrete key's increments at their readings; returns (bad, resets, rollovers).

    The running sum of the current window lives in a register (``acc``) and is written back when the
    pointer moves on: times are sorted, so a window is never revisited and the additions happen in
    the same order as in the reference. An increment of 0 adds +0.0, which changes nothing, so the
    per-sample path has no branch on the increment; resets and rollovers (a decrease) are the rare
    branch.
    """
    nw = bounds.shape[0] - 2
    i, n_bad = _first_valid(value, i0, i1)
    n_resets = 0
    n_rollovers = 0
    if i >= i1:
        return n_bad, n_resets, n_rollovers
    prev = value[i]
    w = -1
    hi = bounds[0]
    acc = 0.0
    for j in range(i + 1, i1):
        v = value[j]
        tj = t[j]
        if not (v >= 0.0 and v < np.inf):
            n_bad += 1
            continue
        p = prev
        prev = v
        d = v - p
        if d < 0.0:  # rare: a reset or a rollover
            d, kind = _counter_step(p, v, m)
            if kind == 1:
                n_resets += 1
            else:
                n_rollovers += 1
        if tj >= hi and w < nw:  # rare: the reading is past the current window
            if w >= 0:
                out[k, w] = acc
            w += 1
            while w < nw and tj >= bounds[w + 1]:
                w += 1
            hi = bounds[w + 1]
            acc = out[k, w] if w < nw else 0.0
        acc += d
    if 0 <= w < nw:
        out[k, w] = acc
    return n_bad, n_resets, n_rollovers


@njit(cache=True)
def _spread(out, k, edges, w, a, b, d, dt):
    """Add d x (part of [a, b) in each window) / dt to out[k, window]; ``w`` a pointer at or before a."""
    nw = edges.shape[0] - 1
    if a < edges[0]:
        a = edges[0]
    if b > edges[nw]:
        b = edges[nw]
    if b <= a:
        return
    w = _advance(edges, w, a)
    while True:
        hi = edges[w + 1]
        if b <= hi:
            out[k, w] += d * (b - a) / dt
            return
        out[k, w] += d * (hi - a) / dt
        a = hi
        w += 1


@njit(cache=True)
def _continuous_run(out, k, t, value, i0, i1, edges, m):
    """Spread one continuous key's increments over the intervals between readings; (bad, resets, rollovers).

    ``w`` is the half-open window holding the previous reading (-1 before the span, ``nw`` after
    it). The common interval lies inside that window, ending at most on its right edge: it is
    booked whole into the register ``acc`` (the current window's running sum, written back before
    any other write to the row). Intervals that cross an edge, start before the span or have zero
    length take the general path, which writes to ``out`` directly.
    """
    nw = edges.shape[0] - 1
    i, n_bad = _first_valid(value, i0, i1)
    n_resets = 0
    n_rollovers = 0
    if i >= i1:
        return n_bad, n_resets, n_rollovers
    prev = value[i]
    prev_t = t[i]
    w = -1
    while w < nw and prev_t >= edges[w + 1]:
        w += 1
    hi = edges[w + 1] if w < nw else np.inf
    acc = out[k, w] if 0 <= w < nw else 0.0
    for j in range(i + 1, i1):
        v = value[j]
        tj = t[j]
        if not (v >= 0.0 and v < np.inf):
            n_bad += 1
            continue
        p = prev
        prev = v
        d = v - p
        if d < 0.0:  # rare: a reset or a rollover
            d, kind = _counter_step(p, v, m)
            if kind == 1:
                n_resets += 1
            else:
                n_rollovers += 1
        if tj > prev_t and tj <= hi:
            acc += d * (tj - prev_t) / (tj - prev_t)  # inside the window: the reference's expression
            prev_t = tj
            if tj < hi:
                continue
        else:  # rare: crosses an edge, or a zero-length interval (booked at its reading)
            if 0 <= w < nw:
                out[k, w] = acc
            if d > 0.0:
                if tj > prev_t:
                    _spread(out, k, edges, w if w > 0 else 0, prev_t, tj, d, tj - prev_t)
                elif edges[0] <= tj <= edges[nw]:
                    wi = _advance(edges, w if w > 0 else 0, tj) if tj < edges[nw] else nw - 1
                    out[k, wi] += d
            prev_t = tj
            if 0 <= w < nw:
                acc = out[k, w]
            if tj < hi:
                continue
        # the previous reading is now at or past the window's right edge: move the pointer on
        if 0 <= w < nw:
            out[k, w] = acc
        while w < nw and prev_t >= edges[w + 1]:
            w += 1
        hi = edges[w + 1] if w < nw else np.inf
        acc = out[k, w] if w < nw else 0.0
    if 0 <= w < nw:
        out[k, w] = acc
    return n_bad, n_resets, n_rollovers


@njit(cache=True, parallel=True)
def _counter_deltas(offsets, t, value, edges, modulus, continuous, chunks):
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
    bounds = _instant_bounds(edges)
    for c in prange(chunks.shape[0] - 1):
        for k in range(chunks[c], chunks[c + 1]):
            ch = k % N_CHANNELS
            if continuous[ch]:
                n_bad, n_resets, n_rollovers = _continuous_run(out, k, t, value, offsets[k], offsets[k + 1], edges,
                                                               modulus[ch])
            else:
                n_bad, n_resets, n_rollovers = _discrete_run(out, k, t, value, offsets[k], offsets[k + 1], bounds,
                                                             modulus[ch])
            bad[k] = n_bad
            readings[k] = offsets[k + 1] - offsets[k] - n_bad
            resets[k] = n_resets
            rollovers[k] = n_rollovers
    return out, resets, rollovers, bad, readings


def counter_deltas(offsets, t, value, edges, modulus, continuous):
    """Increments of cumulative counters per key and window: see ``_counter_deltas``.

    Each key's run is walked by a loop specialised for its kind of channel (``_discrete_run``,
    ``_continuous_run``); the threads get contiguous groups of keys holding about the same number
    of readings (``balanced_chunks``), not the same number of keys.
    """
    chunks = balanced_chunks(np.diff(offsets), numba.get_num_threads())
    return _counter_deltas(offsets, t, value, edges, modulus, continuous, chunks)


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


@njit(cache=True)
def _ideal_run(ideal, unknown, u, t, value, i0, i1, p_t, p_code, j, pe, cur, cycle_row, bounds, m):
    """One station's PRODUCED run: book increase x PRU of the product in effect before each reading.

    Like ``_discrete_run``: register sums of the current window, written back when the pointer moves
    on, no branch on the increment. The product enters as two factors, (PRU, 0) for a known product
    and (0, 1) for an unknown one, so that ``ideal += d * f_ideal`` and ``unknown += d * f_unknown``
    need no branch either (the extra terms are +0.0, exact); they change only at a product sample,
    found by comparing the reading's time with the next product sample's time (one compare a row).
    """
    nw = bounds.shape[0] - 2
    n_products = cycle_row.shape[0]
    i, _n_bad = _first_valid(value, i0, i1)
    if i >= i1:
        return
    prev = value[i]
    next_pt = p_t[j] if j < pe else np.inf
    f_ideal = 0.0
    f_unknown = 1.0
    if 0 <= cur < n_products:
        f_ideal = cycle_row[cur]
        f_unknown = 0.0
    w = -1
    hi = bounds[0]
    acc_i = 0.0
    acc_u = 0.0
    for r in range(i + 1, i1):
        v = value[r]
        tr = t[r]
        if not (v >= 0.0 and v < np.inf):
            continue
        p = prev
        prev = v
        d = v - p
        if d < 0.0:  # rare: a reset or a rollover
            d, _kind = _counter_step(p, v, m)
        if next_pt < tr:  # rare: product samples strictly before this reading take effect
            while j < pe and p_t[j] < tr:
                cur = np.int64(p_code[j])
                j += 1
            next_pt = p_t[j] if j < pe else np.inf
            if 0 <= cur < n_products:
                f_ideal = cycle_row[cur]
                f_unknown = 0.0
            else:
                f_ideal = 0.0
                f_unknown = 1.0
        if tr >= hi and w < nw:  # rare: the reading is past the current window
            if w >= 0:
                ideal[u, w] = acc_i
                unknown[u, w] = acc_u
            w += 1
            while w < nw and tr >= bounds[w + 1]:
                w += 1
            hi = bounds[w + 1]
            acc_i = 0.0
            acc_u = 0.0
        acc_i += d * f_ideal
        acc_u += d * f_unknown
    if 0 <= w < nw:
        ideal[u, w] = acc_i
        unknown[u, w] = acc_u


@njit(cache=True, parallel=True)
def _ideal_time(c_offsets, c_t, c_value, p_offsets, p_t, p_code, default_product, ideal_cycle_s, edges,
                modulus_produced, chunks):
    n_stations = default_product.shape[0]
    nw = edges.shape[0] - 1
    ideal = np.zeros((n_stations, nw))
    unknown = np.zeros((n_stations, nw))
    bounds = _instant_bounds(edges)
    for c in prange(chunks.shape[0] - 1):
        for u in range(chunks[c], chunks[c + 1]):
            k = u * N_CHANNELS + PRODUCED
            _ideal_run(ideal, unknown, u, c_t, c_value, c_offsets[k], c_offsets[k + 1], p_t, p_code, p_offsets[u],
                       p_offsets[u + 1], np.int64(default_product[u]), ideal_cycle_s[u], bounds, modulus_produced)
    return ideal, unknown


def ideal_time(c_offsets, c_t, c_value, p_offsets, p_t, p_code, default_product, ideal_cycle_s, edges,
               modulus_produced):
    """ISO 22400-2 ideal time, PRU x PQ summed over a product mix, per station and window (seconds).

    Each increase of a station's PRODUCED counter (same baseline, bad-reading, reset and rollover
    rules as ``counter_deltas``) is multiplied by the ideal cycle time of the product in effect
    strictly before that reading: the last products-stream sample with ``t < t_reading`` (a product
    change logged at the same instant as the reading takes effect after it: the part just finished
    belongs to the old product), else ``default_product[station]``. A product code outside
    ``0..n_products-1`` (-1: unknown) books the increase into ``unknown_units`` instead. Booked in
    the window holding the reading (last window closed).

    Returns ``ideal_s[n_stations, n_windows]`` and ``unknown_units[n_stations, n_windows]``, where
    ``n_stations = len(default_product)`` (units past it, the site meters, produce nothing).
    """
    n_stations = default_product.shape[0]
    keys = np.arange(n_stations) * N_CHANNELS + PRODUCED
    sizes = c_offsets[keys + 1] - c_offsets[keys] if n_stations else np.zeros(0, dtype=np.int64)
    chunks = balanced_chunks(sizes, numba.get_num_threads())
    return _ideal_time(c_offsets, c_t, c_value, p_offsets, p_t, p_code, default_product, ideal_cycle_s, edges,
                       float(modulus_produced), chunks)
