"""Cumulative counters: increments per key and window, and ISO 22400-2 ideal time (PRU x PQ).

Both are one walk over a key's valid readings (``_instant_run``, ``_spread_run``): the first valid
reading is the baseline, NaN, infinite or negative readings are skipped and counted, a decrease is a
reset or a rollover (``counter_step``). A discrete counter and the ideal time book each increment at
its reading (the same walk: a counter is an ideal time whose only product has a PRU of 1); a
continuous counter spreads it over the interval since the previous reading.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np
from numba import njit

from twin.kpi.eventlog import N_CHANNELS, Channel
from twin.kpi.kernels.walk import (advance, counter_step, csr, first_valid, next_instant, run_chunks,
                                   valid_reading, windows)

PRODUCED = int(Channel.PRODUCED)

#: The product mix of each station: the products stream (CSR ``offsets`` per station, ``t``,
#: ``code``), each station's ``default`` product and its ideal cycle times ``cycle_s[station, product]``.
Mix = namedtuple("Mix", "offsets t code default cycle_s")


@njit(cache=True, inline="always")
def _factors(cycle, cur):
    """(into ``out_a``, into ``out_b``) per unit of increment: (PRU, 0) for a known product, (0, 1) else."""
    if 0 <= cur < cycle.shape[0]:
        return cycle[cur], 0.0
    return 0.0, 1.0


@njit(cache=True, nogil=True)
def _instant_run(out_a, out_b, c, k, m, bounds, mix, u):
    """Book key ``k``'s increments at their readings, x the factors of station ``u``'s product in
    effect strictly before each reading; returns (bad, resets, rollovers).

    The running sums of the current window live in registers (``acc_a``, ``acc_b``), written back
    when the cursor moves on: times are sorted, so a window is never revisited and the additions
    happen in the same order as in the reference. The factors need no branch per reading (the extra
    terms are +0.0, exact); they change only at a product sample, found by comparing the reading's
    time with the next product sample's time (one compare a row).
    """
    t, value = c.t, c.value
    i1 = c.offsets[k + 1]
    i, n_bad = first_valid(value, c.offsets[k], i1)
    n_resets = 0
    n_rollovers = 0
    if i >= i1:
        return n_bad, n_resets, n_rollovers
    nw = bounds.shape[0] - 2
    cycle = mix.cycle_s[u]
    j, pe = mix.offsets[u], mix.offsets[u + 1]
    cur = mix.default[u]
    next_pt = mix.t[j] if j < pe else np.inf
    f_a, f_b = _factors(cycle, cur)
    prev = value[i]
    w = -1
    hi = bounds[0]
    acc_a = 0.0
    acc_b = 0.0
    for r in range(i + 1, i1):
        v = value[r]
        if not valid_reading(v):
            n_bad += 1
            continue
        tr = t[r]
        d = v - prev
        if d < 0.0:  # rare: a reset or a rollover
            d, kind = counter_step(prev, v, m)
            if kind == 1:
                n_resets += 1
            else:
                n_rollovers += 1
        prev = v
        if next_pt < tr:  # rare: product samples strictly before this reading take effect
            while j < pe and mix.t[j] < tr:
                cur = mix.code[j]
                j += 1
            next_pt = mix.t[j] if j < pe else np.inf
            f_a, f_b = _factors(cycle, cur)
        if tr >= hi and w < nw:  # rare: the reading is past the current window
            if w >= 0:
                out_a[w] = acc_a
                out_b[w] = acc_b
            w = next_instant(bounds, w, tr)
            hi = bounds[w + 1]
            acc_a = 0.0
            acc_b = 0.0
        acc_a += d * f_a
        acc_b += d * f_b
    if 0 <= w < nw:
        out_a[w] = acc_a
        out_b[w] = acc_b
    return n_bad, n_resets, n_rollovers


@njit(cache=True, nogil=True)
def _spread(out, edges, w, a, b, d, dt):
    """Add d x (part of [a, b) in each window) / dt to out[window]; ``w`` a cursor at or before a."""
    nw = edges.shape[0] - 1
    if a < edges[0]:
        a = edges[0]
    if b > edges[nw]:
        b = edges[nw]
    if b <= a:
        return
    w = advance(edges, w, a)
    while True:
        hi = edges[w + 1]
        if b <= hi:
            out[w] += d * (b - a) / dt
            return
        out[w] += d * (hi - a) / dt
        a = hi
        w += 1


@njit(cache=True, nogil=True)
def _spread_run(out, c, k, m, edges):
    """Spread key ``k``'s increments over the intervals between readings; (bad, resets, rollovers).

    ``w`` is the half-open window holding the previous reading (-1 before the span, ``nw`` after
    it). The common interval lies inside that window, ending at most on its right edge: it is
    booked whole into the register ``acc`` (the current window's running sum, written back before
    any other write to the row). Intervals that cross an edge, start before the span or have zero
    length take the general path, which writes to ``out`` directly.
    """
    t, value = c.t, c.value
    i1 = c.offsets[k + 1]
    nw = edges.shape[0] - 1
    i, n_bad = first_valid(value, c.offsets[k], i1)
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
    acc = out[w] if 0 <= w < nw else 0.0
    for j in range(i + 1, i1):
        v = value[j]
        if not valid_reading(v):
            n_bad += 1
            continue
        tj = t[j]
        d = v - prev
        if d < 0.0:  # rare: a reset or a rollover
            d, kind = counter_step(prev, v, m)
            if kind == 1:
                n_resets += 1
            else:
                n_rollovers += 1
        prev = v
        if tj > prev_t and tj <= hi:
            # inside the window: the whole increment (the reference's d * dt / dt, to within an ulp,
            # without a division per reading)
            acc += d
            prev_t = tj
            if tj < hi:
                continue
        else:  # rare: crosses an edge, or a zero-length interval (booked at its reading)
            if 0 <= w < nw:
                out[w] = acc
            if d > 0.0:
                if tj > prev_t:
                    _spread(out, edges, w if w > 0 else 0, prev_t, tj, d, tj - prev_t)
                elif edges[0] <= tj <= edges[nw]:
                    wi = advance(edges, w if w > 0 else 0, tj) if tj < edges[nw] else nw - 1
                    out[wi] += d
            prev_t = tj
            if 0 <= w < nw:
                acc = out[w]
            if tj < hi:
                continue
        # the previous reading is now at or past the window's right edge: move the cursor on
        if 0 <= w < nw:
            out[w] = acc
        while w < nw and prev_t >= edges[w + 1]:
            w += 1
        hi = edges[w + 1] if w < nw else np.inf
        acc = out[w] if w < nw else 0.0
    if 0 <= w < nw:
        out[w] = acc
    return n_bad, n_resets, n_rollovers


@njit(cache=True, nogil=True)
def _counter_chunk(k0, k1, c, win, modulus, continuous, out, stats):
    """Keys ``k0:k1``; ``stats[:, k]`` = resets, rollovers, bad readings, valid readings."""
    scratch = np.zeros(out.shape[1])  # out_b of a plain counter: its factor is always 0
    one = Mix(np.zeros(2, dtype=np.int64), np.empty(0), np.empty(0, dtype=np.int64), np.zeros(1, dtype=np.int64),
              np.ones((1, 1)))  # a single product with a PRU of 1, never changed
    for k in range(k0, k1):
        ch = k % N_CHANNELS
        if continuous[ch]:
            n_bad, n_resets, n_rollovers = _spread_run(out[k], c, k, modulus[ch], win.edges)
        else:
            n_bad, n_resets, n_rollovers = _instant_run(out[k], scratch, c, k, modulus[ch], win.bounds, one, 0)
        stats[0, k] = n_resets
        stats[1, k] = n_rollovers
        stats[2, k] = n_bad
        stats[3, k] = c.offsets[k + 1] - c.offsets[k] - n_bad


def counter_deltas(counters, edges, modulus, continuous):
    """Increments of the cumulative ``counters`` stream per key (= unit * N_CHANNELS + channel) and window.

    The first valid reading of a key is its baseline. Readings that are NaN, infinite or negative
    are skipped and counted in ``bad``. Decreases are resets or rollovers (``counter_step``),
    counted per key. A discrete channel's increment is booked in the window holding the later
    reading (last window closed); a continuous channel's (``continuous[channel]``) is spread
    linearly over the interval between the two readings, clipped at the window edges, or booked
    like a discrete one when both readings share a timestamp.

    Returns ``delta[n_keys, n_windows]``, ``resets``, ``rollovers``, ``bad``, ``readings`` (valid
    readings), each ``[n_keys]`` int64.
    """
    c = csr(counters, np.float64)
    win = windows(edges)
    n_keys = c.offsets.shape[0] - 1
    out = np.zeros((n_keys, win.edges.shape[0] - 1))
    stats = np.zeros((4, n_keys), dtype=np.int64)
    run_chunks(_counter_chunk, np.diff(c.offsets), c, win, np.ascontiguousarray(modulus, dtype=np.float64),
               np.ascontiguousarray(continuous, dtype=np.bool_), out, stats)
    return out, stats[0], stats[1], stats[2], stats[3]


@njit(cache=True, nogil=True)
def _ideal_chunk(k0, k1, c, win, m, mix, ideal, unknown):
    for u in range(k0, k1):
        _instant_run(ideal[u], unknown[u], c, u * N_CHANNELS + PRODUCED, m, win.bounds, mix, u)


def product_mix(products, default_product, ideal_cycle_s) -> Mix:
    """The ``Mix`` record: the ``products`` stream (``offsets``, ``t``, ``value`` = product code), each
    station's default product (-1: unknown) and ideal cycle times ``[station, product]`` (seconds).

    Product codes become int64: one compiled walk serves this and the plain counters, and no code
    wraps around into a valid one.
    """
    p = csr(products, np.int64)
    return Mix(p.offsets, p.t, p.value, np.ascontiguousarray(default_product, dtype=np.int64),
               np.ascontiguousarray(ideal_cycle_s, dtype=np.float64))


def ideal_time(counters, mix: Mix, edges, modulus_produced):
    """ISO 22400-2 ideal time, PRU x PQ summed over a product mix, per station and window (seconds).

    Each increase of a station's PRODUCED counter in the ``counters`` stream (same baseline,
    bad-reading, reset and rollover rules as ``counter_deltas``) is multiplied by the ideal cycle
    time of the product in effect strictly before that reading: the last products-stream sample with
    ``t < t_reading`` (a product change logged at the same instant as the reading takes effect after
    it: the part just finished belongs to the old product), else the station's default product. A product code outside
    ``0..n_products-1`` (-1: unknown) books the increase into ``unknown_units`` instead. Booked in
    the window holding the reading (last window closed). ``mix``: see ``product_mix``.

    Returns ``ideal_s[n_stations, n_windows]`` and ``unknown_units[n_stations, n_windows]``, where
    ``n_stations = len(mix.default)`` (units past it, the site meters, produce nothing).
    """
    c = csr(counters, np.float64)
    win = windows(edges)
    n_stations = mix.default.shape[0]
    nw = win.edges.shape[0] - 1
    ideal = np.zeros((n_stations, nw))
    unknown = np.zeros((n_stations, nw))
    keys = np.arange(n_stations) * N_CHANNELS + PRODUCED
    sizes = c.offsets[keys + 1] - c.offsets[keys] if n_stations else np.zeros(0, dtype=np.int64)
    run_chunks(_ideal_chunk, sizes, c, win, float(modulus_produced), mix, ideal, unknown)
    return ideal, unknown
