"""Vectorised NumPy versions of the KPI kernels' computations: the benchmark's second baseline.

Each takes a stream of ``bench.kpi_streams`` and returns what the kernel returns (checked to agree).
"""

from __future__ import annotations

import numpy as np

from bench.kpi_streams import (
    DOWN,
    EDGES,
    MICRO_STOP_S,
    MOD,
    N_PRODUCTS,
    N_UNITS,
    PRODUCING,
    T_END,
    UNKNOWN,
)
from factory_models.states import N_STATES, State
from twin.kpi.eventlog import CONTINUOUS, N_CHANNELS


def _split(a: np.ndarray, b: np.ndarray, edges: np.ndarray):
    """Cut intervals [a, b) at window edges: (interval index, window, lo, hi) per non-empty piece."""
    a = np.maximum(a, edges[0])
    b = np.minimum(b, edges[-1])
    keep = np.flatnonzero(b > a)
    a, b = a[keep], b[keep]
    wa = np.searchsorted(edges, a, "right") - 1
    wb = np.searchsorted(edges, b, "left") - 1
    n = wb - wa + 1
    rows = np.repeat(np.arange(a.size), n)
    starts = np.cumsum(n) - n
    w = wa[rows] + (np.arange(rows.size) - starts[rows])
    return keep[rows], w, np.maximum(a[rows], edges[w]), np.minimum(b[rows], edges[w + 1])


def _instant(t: np.ndarray, edges: np.ndarray, closed_last: bool):
    w = np.searchsorted(edges, t, "right") - 1
    if closed_last:
        w = np.where(t == edges[-1], edges.size - 2, w)
    ok = (w >= 0) & (w < edges.size - 1)
    return w, ok


def _counter_increments(t, key, value, modulus):
    """(t, prev_t, key, increment) of every valid reading after a key's first one."""
    ok = (value >= 0) & (value < np.inf)
    t, key, value = t[ok], key[ok], value[ok]
    later = np.flatnonzero(key[1:] == key[:-1]) + 1
    prev, v = value[later - 1], value[later]
    m = modulus[key[later] % N_CHANNELS]
    drop = prev - v
    roll = (drop > 0) & (m > 0) & (drop > 0.5 * m) & (drop <= m)
    d = np.where(drop > 0, np.where(roll, v + m - prev, v), v - prev)
    return t[later], t[later - 1], key[later], d


def numpy_state_durations(d: dict):
    t, unit, offsets = d["t"], d["key"], d["offsets"]
    code = d["value"].astype(np.int64)
    code[(code < 0) | (code >= N_STATES)] = UNKNOWN
    nw = EDGES.size - 1
    nxt = np.full(t.size, np.inf)
    same = unit[1:] == unit[:-1]
    nxt[:-1][same] = t[1:][same]
    counts = np.diff(offsets)
    first = offsets[:-1][counts > 0]
    first_t = np.full(N_UNITS, np.inf)
    first_t[counts > 0] = t[first]
    units = np.arange(N_UNITS)
    a = np.concatenate([t, np.full(N_UNITS, -np.inf), np.full(N_UNITS, T_END)])
    b = np.concatenate([np.minimum(nxt, T_END), np.minimum(first_t, T_END), np.full(N_UNITS, np.inf)])
    u = np.concatenate([unit, units, units])
    c = np.concatenate([code, np.full(2 * N_UNITS, UNKNOWN)])
    rows, w, lo, hi = _split(a, b, EDGES)
    seconds = np.bincount((u[rows] * nw + w) * N_STATES + c[rows], weights=hi - lo, minlength=N_UNITS * nw * N_STATES)
    prev = np.full(t.size, UNKNOWN)
    prev[1:][same] = code[:-1][same]
    starts = np.flatnonzero((code == DOWN) & (prev != DOWN) & (t < T_END))
    wf, ok = _instant(t[starts], EDGES, closed_last=False)
    failures = np.bincount(unit[starts][ok] * nw + wf[ok], minlength=N_UNITS * nw)
    return seconds.reshape(N_UNITS, nw, N_STATES), failures.reshape(N_UNITS, nw)


def numpy_counter_deltas(d: dict):
    nw = EDGES.size - 1
    n_keys = N_UNITS * N_CHANNELS
    t, t0, key, inc = _counter_increments(d["t"], d["key"], d["value"], MOD)
    pos = inc > 0
    cont = CONTINUOUS[key % N_CHANNELS] & (t > t0) & pos
    disc = ~CONTINUOUS[key % N_CHANNELS] | (t <= t0)
    disc &= pos
    w, ok = _instant(t[disc], EDGES, closed_last=True)
    out = np.bincount(key[disc][ok] * nw + w[ok], weights=inc[disc][ok], minlength=n_keys * nw)
    ci = np.flatnonzero(cont)
    rows, w, lo, hi = _split(t0[ci], t[ci], EDGES)
    r = ci[rows]
    out += np.bincount(key[r] * nw + w, weights=inc[r] * (hi - lo) / (t[r] - t0[r]), minlength=n_keys * nw)
    return (out.reshape(n_keys, nw),)


def numpy_trapezoid_energy(d: dict):
    nw = EDGES.size - 1
    p = d["value"]
    ok = np.isfinite(p)
    t, unit, p = d["t"][ok], d["key"][ok], p[ok]
    pair = np.flatnonzero((unit[1:] == unit[:-1]) & (t[1:] > t[:-1]))
    t0, t1, p0, p1 = t[pair], t[pair + 1], p[pair], p[pair + 1]
    rows, w, lo, hi = _split(t0, t1, EDGES)
    slope = (p1 - p0) / (t1 - t0)
    p_lo = np.where(lo == t0[rows], p0[rows], p0[rows] + slope[rows] * (lo - t0[rows]))
    p_hi = np.where(hi == t1[rows], p1[rows], p0[rows] + slope[rows] * (hi - t0[rows]))
    idx = unit[pair][rows] * nw + w
    kwh = np.bincount(idx, weights=(p_lo + p_hi) * (hi - lo) / 7200.0, minlength=N_UNITS * nw)
    covered = np.bincount(idx, weights=hi - lo, minlength=N_UNITS * nw)
    return kwh.reshape(N_UNITS, nw), covered.reshape(N_UNITS, nw)


def numpy_ideal_time(d: dict):
    nw = EDGES.size - 1
    t, _t0, key, inc = _counter_increments(d["t"], d["key"], d["value"], MOD)
    unit = key // N_CHANNELS
    product = d["default"][unit].copy()
    p_off = d["p_offsets"]
    bounds = np.searchsorted(unit, np.arange(N_UNITS + 1))  # readings are sorted by unit
    for u in range(N_UNITS):  # the product current at each reading: one searchsorted per station
        s = slice(p_off[u], p_off[u + 1])
        rows = np.arange(bounds[u], bounds[u + 1])
        j = np.searchsorted(d["p_t"][s], t[rows], "right") - 1
        has = j >= 0
        product[rows[has]] = d["p_code"][s][j[has]]
    w, ok = _instant(t, EDGES, closed_last=True)
    ok &= inc > 0
    known = ok & (product >= 0) & (product < N_PRODUCTS)
    pru = d["ideal_cycle_s"][unit[known], product[known]]
    ideal = np.bincount(unit[known] * nw + w[known], weights=inc[known] * pru, minlength=N_UNITS * nw)
    unk = ok & ~known
    unknown = np.bincount(unit[unk] * nw + w[unk], weights=inc[unk], minlength=N_UNITS * nw)
    return ideal.reshape(N_UNITS, nw), unknown.reshape(N_UNITS, nw)


def numpy_failure_spells(d: dict, micro_stop_s: float = MICRO_STOP_S):
    t, unit, code = d["t"], d["key"], d["value"].astype(np.int64)
    code = np.where((code < 0) | (code >= N_STATES), UNKNOWN, code)
    keep = t < T_END
    t, unit, code = t[keep], unit[keep], code[keep]
    nw = EDGES.size - 1
    down = code == DOWN
    closing = ~np.isin(code, (DOWN, int(State.PLANNED_STOP), int(State.NO_SHIFT), UNKNOWN))
    idx = np.arange(t.size)
    unit_start = np.searchsorted(unit, unit, "left")  # first row of each row's unit (rows sorted by unit)
    last_down = np.maximum.accumulate(np.where(down, idx, -1))
    last_close = np.maximum.accumulate(np.where(closing, idx, -1))
    prev_down = np.concatenate(([-1], last_down[:-1]))
    prev_close = np.concatenate(([-1], last_close[:-1]))
    open_before = (prev_down >= unit_start) & (prev_down > prev_close)  # a spell of this unit still open
    starts = down & ~open_before
    spell = np.cumsum(starts) - 1  # the spell each row belongs to (while one is open)
    nxt = np.full(t.size, T_END)
    same = unit[1:] == unit[:-1]
    nxt[:-1][same] = t[1:][same]
    down_s = np.bincount(spell[down], weights=nxt[down] - t[down], minlength=int(starts.sum()))
    s_rows = np.flatnonzero(starts)
    w, ok = _instant(t[s_rows], EDGES, closed_last=False)
    fail = ok & (down_s >= micro_stop_s)
    idx_w = unit[s_rows] * nw + w
    failures = np.bincount(idx_w[fail], minlength=N_UNITS * nw)
    repair = np.bincount(idx_w[fail], weights=down_s[fail], minlength=N_UNITS * nw)
    micro = np.bincount(idx_w[ok & ~fail], minlength=N_UNITS * nw)
    return failures.reshape(N_UNITS, nw), repair.reshape(N_UNITS, nw), micro.reshape(N_UNITS, nw)


def _cumulative(st, code, x, which):
    """Seconds spent in state ``which`` from the start of the timeline to each time x (one unit)."""
    seg = np.diff(st) * (code[:-1] == which)
    cum = np.concatenate(([0.0], np.cumsum(seg)))
    j = np.searchsorted(st, x, "right") - 1
    return cum[j] + (x - st[j]) * (code[j] == which)


def numpy_gap_parts(d: dict):
    nw = EDGES.size - 1
    t, t0, key, inc = _counter_increments(d["t"], d["key"], d["value"], MOD)
    unit = key // N_CHANNELS
    in_gap = np.zeros(N_UNITS * nw)
    ideal_gap = np.zeros(N_UNITS * nw)
    apt_gap = np.zeros(N_UNITS * nw)
    s_off, p_off = d["s_offsets"], d["p_offsets"]
    bounds = np.searchsorted(unit, np.arange(N_UNITS + 1))
    for u in range(N_UNITS):  # per station: its timeline with UNKNOWN before the first sample and after T_END
        rows = np.arange(bounds[u], bounds[u + 1])
        if rows.size == 0:
            continue
        st, sc = d["s_t"][s_off[u]:s_off[u + 1]], d["s_code"][s_off[u]:s_off[u + 1]].astype(np.int64)
        sc = np.where((sc < 0) | (sc >= N_STATES), UNKNOWN, sc)
        origin = min(float(t0[rows].min()), float(st[0]) if st.size else T_END) - 1.0
        ks = st < T_END
        st = np.concatenate(([origin], st[ks], [T_END]))
        sc = np.concatenate(([UNKNOWN], sc[ks], [UNKNOWN]))
        a, b, d_u = t0[rows], t[rows], inc[rows]
        gap = (b > a) & (d_u > 0) & (_cumulative(st, sc, b, UNKNOWN) - _cumulative(st, sc, a, UNKNOWN) > 0)
        g = rows[gap]
        if g.size == 0:
            continue
        w, ok = _instant(t[g], EDGES, closed_last=True)
        j = np.searchsorted(d["p_t"][p_off[u]:p_off[u + 1]], t[g], "left") - 1  # strictly before the reading
        product = np.where(j >= 0, d["p_code"][p_off[u]:p_off[u + 1]][np.maximum(j, 0)], d["default"][u])
        known = (product >= 0) & (product < N_PRODUCTS)
        pru = np.where(known, d["ideal_cycle_s"][u][np.clip(product, 0, N_PRODUCTS - 1)], 0.0)
        np.add.at(in_gap, u * nw + w[ok], inc[g][ok])
        np.add.at(ideal_gap, u * nw + w[ok], (inc[g] * pru)[ok])
        _pieces, pw, lo, hi = _split(t0[g], t[g], EDGES)
        np.add.at(apt_gap, u * nw + pw, _cumulative(st, sc, hi, PRODUCING) - _cumulative(st, sc, lo, PRODUCING))
    return tuple(x.reshape(N_UNITS, nw) for x in (in_gap, ideal_gap, apt_gap))


NUMPY = {"state_durations": numpy_state_durations, "counter_deltas": numpy_counter_deltas,
         "trapezoid_energy": numpy_trapezoid_energy, "ideal_time": numpy_ideal_time,
         "failure_spells": numpy_failure_spells, "gap_parts": numpy_gap_parts}
