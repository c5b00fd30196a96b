"""The KPI core's definitions as plain Python: loops over lists, no NumPy, no Numba.

This is the executable statement of what ``twin.kpi.kernels`` computes, written the obvious way so
that it can be read and checked by eye; the property tests hold the kernels to it. It takes the
raw, unsorted columns of an ``EventLog`` (``log.state_t``, ``log.state_unit``, ...) and does its
own stable sort by (key, t), so it depends on nothing the kernels depend on. It is slow (the
benchmark's "plain Python" baseline) and not meant for production use.

Rules, shared with the kernels (see their docstrings for the reasons):

- windows are ``[edges[i], edges[i+1])``; a counter reading exactly at ``edges[-1]`` belongs to the
  last window, a failure starting there does not;
- a state holds from its sample until the unit's next state sample, or ``t_end`` for the last;
  time before the first sample and after ``t_end`` is UNKNOWN; an invalid code is UNKNOWN (counted);
- a stop (``state_durations``' count) is an entry into DOWN from any other state, at ``t < t_end``;
- a failure (``failure_spells``) is a DOWN spell, i.e. DOWN time that PLANNED_STOP, NO_SHIFT or
  UNKNOWN interludes do not end, with at least ``micro_stop_s`` of DOWN time; a shorter spell is a
  micro-stop; the spell and its DOWN seconds are booked in the window where it began;
- counter readings that are NaN, infinite or negative are skipped (counted); the first valid one is
  the baseline; a decrease by more than M/2 and at most M (modulus M > 0) is a rollover, any other
  decrease a reset to zero;
- discrete channels book an increment at the later reading; continuous channels spread it
  linearly between the two readings (booked at the later one when both share a timestamp);
- power is integrated by trapezoid between consecutive finite samples, clipped at window edges;
- ideal time = increase of PRODUCED x ideal cycle time of the product in effect strictly before the
  reading (the last product sample with t < the reading's t; one at the same instant takes effect
  after the reading), else the station's default product;
- a PRODUCED increment whose two readings bracket any UNKNOWN time of the station (``gap_parts``) is
  in a gap: its parts and ideal time are booked apart, with the PRODUCING time between the readings.
"""

from __future__ import annotations

import math
from bisect import bisect_right

from factory_models.states import N_STATES, State
from twin.kpi.eventlog import N_CHANNELS, Channel


def _grouped(t, key, value, n_keys):
    """Per key, the (t, value) pairs in time order; equal times keep arrival order (stable sort)."""
    groups = [[] for _ in range(n_keys)]
    for ti, k, v in zip(t, key, value):
        groups[int(k)].append((float(ti), v))
    return [sorted(g, key=lambda pair: pair[0]) for g in groups]


def _overlaps(edges, a, b):
    """(window index, lo, hi) for every window that the interval [a, b) meets, in order."""
    out = []
    n_windows = len(edges) - 1
    i = max(bisect_right(edges, a) - 1, 0)
    while i < n_windows and edges[i] < b:
        lo = max(a, edges[i])
        hi = min(b, edges[i + 1])
        if hi > lo:
            out.append((i, lo, hi))
        i += 1
    return out


def _window_of(edges, t, closed_last):
    """The window holding instant t, or None."""
    if t < edges[0] or t > edges[-1]:
        return None
    if t == edges[-1]:
        return len(edges) - 2 if closed_last else None
    return bisect_right(edges, t) - 1


def _is_valid_reading(v):
    return not math.isnan(v) and not math.isinf(v) and v >= 0.0


def _counter_step(prev, v, modulus):
    """(increment, kind): kind "normal", "reset" or "rollover"."""
    if v >= prev:
        return v - prev, "normal"
    drop = prev - v
    if modulus > 0 and modulus / 2 < drop <= modulus:
        return v + modulus - prev, "rollover"
    return v, "reset"


def state_durations(t, unit, code, n_units, edges, t_end):
    """(seconds[u][w][state], failures[u][w], invalid[u]); see the module rules."""
    edges = [float(e) for e in edges]
    n_windows = len(edges) - 1
    seconds = [[[0.0] * N_STATES for _ in range(n_windows)] for _ in range(n_units)]
    failures = [[0] * n_windows for _ in range(n_units)]
    invalid = [0] * n_units
    for u, samples in enumerate(_grouped(t, unit, code, n_units)):
        intervals = []  # (start, end, state)
        start, state = -math.inf, int(State.UNKNOWN)
        for ti, c in samples:
            c = int(c)
            if not 0 <= c < N_STATES:
                invalid[u] += 1
                c = int(State.UNKNOWN)
            intervals.append((start, min(ti, t_end), state))
            if c == State.DOWN and state != State.DOWN and ti < t_end:
                w = _window_of(edges, ti, closed_last=False)
                if w is not None:
                    failures[u][w] += 1
            start, state = ti, c
        intervals.append((start, t_end, state))
        intervals.append((t_end, math.inf, int(State.UNKNOWN)))
        for a, b, s in intervals:
            for w, lo, hi in _overlaps(edges, a, b):
                seconds[u][w][s] += hi - lo
    return seconds, failures, invalid


def failure_spells(t, unit, code, n_units, edges, t_end, micro_stop_s):
    """(failures[u][w], repair_s[u][w], micro_stops[u][w]); see the module rules."""
    edges = [float(e) for e in edges]
    n_windows = len(edges) - 1
    failures = [[0] * n_windows for _ in range(n_units)]
    repair = [[0.0] * n_windows for _ in range(n_units)]
    micro = [[0] * n_windows for _ in range(n_units)]
    interludes = (State.PLANNED_STOP, State.NO_SHIFT, State.UNKNOWN)
    for u, samples in enumerate(_grouped(t, unit, code, n_units)):
        spells = []  # (start, DOWN seconds)
        state, since = int(State.UNKNOWN), None
        for ti, c in samples:
            if ti >= t_end:
                break
            c = int(c) if 0 <= int(c) < N_STATES else int(State.UNKNOWN)
            if state == State.DOWN:
                spells[-1][1] += ti - since
            if c == State.DOWN and not (spells and spells[-1][2]):
                spells.append([ti, 0.0, True])
            elif c != State.DOWN and c not in interludes and spells:
                spells[-1][2] = False  # closed
            state, since = c, ti
        if state == State.DOWN:
            spells[-1][1] += t_end - since
        for start, down_s, _open in spells:
            w = _window_of(edges, start, closed_last=False)
            if w is None:
                continue
            if down_s >= micro_stop_s:
                failures[u][w] += 1
                repair[u][w] += down_s
            else:
                micro[u][w] += 1
    return failures, repair, micro


def counter_deltas(t, key, value, n_keys, edges, modulus, continuous):
    """(delta[k][w], resets[k], rollovers[k], bad[k], readings[k]); ``modulus``/``continuous`` per channel."""
    edges = [float(e) for e in edges]
    n_windows = len(edges) - 1
    delta = [[0.0] * n_windows for _ in range(n_keys)]
    resets, rollovers, bad, readings = [0] * n_keys, [0] * n_keys, [0] * n_keys, [0] * n_keys
    for k, rows in enumerate(_grouped(t, key, value, n_keys)):
        channel = k % N_CHANNELS
        prev = None
        for ti, v in rows:
            v = float(v)
            if not _is_valid_reading(v):
                bad[k] += 1
                continue
            readings[k] += 1
            if prev is None:
                prev = (ti, v)
                continue
            t0, v0 = prev
            d, kind = _counter_step(v0, v, float(modulus[channel]))
            resets[k] += kind == "reset"
            rollovers[k] += kind == "rollover"
            if d > 0:
                if continuous[channel] and ti > t0:
                    for w, lo, hi in _overlaps(edges, t0, ti):
                        delta[k][w] += d * (hi - lo) / (ti - t0)
                else:
                    w = _window_of(edges, ti, closed_last=True)
                    if w is not None:
                        delta[k][w] += d
            prev = (ti, v)
    return delta, resets, rollovers, bad, readings


def trapezoid_energy(t, unit, kw, n_units, edges):
    """(kwh[u][w], covered_s[u][w], bad[u]) from power samples in kW."""
    edges = [float(e) for e in edges]
    n_windows = len(edges) - 1
    kwh = [[0.0] * n_windows for _ in range(n_units)]
    covered = [[0.0] * n_windows for _ in range(n_units)]
    bad = [0] * n_units
    for u, rows in enumerate(_grouped(t, unit, kw, n_units)):
        prev = None
        for t1, p1 in rows:
            p1 = float(p1)
            if math.isnan(p1) or math.isinf(p1):
                bad[u] += 1
                continue
            if prev is not None and t1 > prev[0]:
                t0, p0 = prev
                slope = (p1 - p0) / (t1 - t0)

                def power_at(x):
                    if x == t0:
                        return p0
                    if x == t1:
                        return p1
                    return p0 + slope * (x - t0)

                for w, lo, hi in _overlaps(edges, t0, t1):
                    kwh[u][w] += (power_at(lo) + power_at(hi)) * (hi - lo) / 7200.0
                    covered[u][w] += hi - lo
            prev = (t1, p1)
    return kwh, covered, bad


def ideal_time(c_t, c_key, c_value, p_t, p_unit, p_code, default_product, ideal_cycle_s, edges,
               modulus_produced):
    """(ideal_s[station][w], unknown_units[station][w]): PRODUCED increases x PRU of the current product."""
    edges = [float(e) for e in edges]
    n_windows = len(edges) - 1
    n_stations = len(default_product)
    n_keys = max([int(k) for k in c_key] + [n_stations * N_CHANNELS - 1]) + 1
    n_units = max([int(u) for u in p_unit] + [n_stations - 1]) + 1
    counters = _grouped(c_t, c_key, c_value, n_keys)
    products = _grouped(p_t, p_unit, p_code, n_units)
    ideal = [[0.0] * n_windows for _ in range(n_stations)]
    unknown = [[0.0] * n_windows for _ in range(n_stations)]
    for s in range(n_stations):
        n_products = len(ideal_cycle_s[s])
        prev = None
        for ti, v in counters[s * N_CHANNELS + Channel.PRODUCED]:
            v = float(v)
            if not _is_valid_reading(v):
                continue
            if prev is None:
                prev = v
                continue
            d, _ = _counter_step(prev, v, float(modulus_produced))
            prev = v
            if d <= 0:
                continue
            product = int(default_product[s])
            for tp, code in products[s]:
                if tp < ti:
                    product = int(code)
            w = _window_of(edges, ti, closed_last=True)
            if w is None:
                continue
            if 0 <= product < n_products:
                ideal[s][w] += d * float(ideal_cycle_s[s][product])
            else:
                unknown[s][w] += d
    return ideal, unknown


def gap_parts(c_t, c_key, c_value, s_t, s_unit, s_code, p_t, p_unit, p_code, default_product, ideal_cycle_s,
              edges, t_end, modulus_produced):
    """(in_gap[s][w], ideal_gap_s[s][w], apt_gap_s[s][w]): PRODUCED increments whose two readings
    bracket UNKNOWN time, their ideal time, and the PRODUCING time between those readings."""
    edges = [float(e) for e in edges]
    n_windows = len(edges) - 1
    n_stations = len(default_product)
    n_keys = max([int(k) for k in c_key] + [n_stations * N_CHANNELS - 1]) + 1
    n_units = max([int(u) for u in list(s_unit) + list(p_unit)] + [n_stations - 1]) + 1
    counters = _grouped(c_t, c_key, c_value, n_keys)
    states = _grouped(s_t, s_unit, s_code, n_units)
    products = _grouped(p_t, p_unit, p_code, n_units)
    in_gap = [[0.0] * n_windows for _ in range(n_stations)]
    ideal_gap = [[0.0] * n_windows for _ in range(n_stations)]
    apt_gap = [[0.0] * n_windows for _ in range(n_stations)]
    for s in range(n_stations):
        timeline = []  # (start, end, state), as state_durations reads the samples
        start, state = -math.inf, int(State.UNKNOWN)
        for ti, c in states[s]:
            c = int(c) if 0 <= int(c) < N_STATES else int(State.UNKNOWN)
            timeline.append((start, min(ti, t_end), state))
            start, state = ti, c
        timeline.append((start, t_end, state))
        timeline.append((t_end, math.inf, int(State.UNKNOWN)))
        prev = None
        for ti, v in counters[s * N_CHANNELS + Channel.PRODUCED]:
            v = float(v)
            if not _is_valid_reading(v):
                continue
            if prev is None:
                prev = (ti, v)
                continue
            t0, v0 = prev
            d, _ = _counter_step(v0, v, float(modulus_produced))
            prev = (ti, v)
            pieces = [(max(a, t0), min(b, ti), st) for a, b, st in timeline if min(b, ti) > max(a, t0)]
            if d <= 0 or not any(st == State.UNKNOWN and b > edges[0] for _, b, st in pieces):
                continue
            w = _window_of(edges, ti, closed_last=True)
            if w is not None:
                product = int(default_product[s])
                for tp, code in products[s]:
                    if tp < ti:
                        product = int(code)
                in_gap[s][w] += d
                if 0 <= product < len(ideal_cycle_s[s]):
                    ideal_gap[s][w] += d * float(ideal_cycle_s[s][product])
            for a, b, st in pieces:
                if st == State.PRODUCING:
                    for k, lo, hi in _overlaps(edges, a, b):
                        apt_gap[s][k] += hi - lo
    return in_gap, ideal_gap, apt_gap
