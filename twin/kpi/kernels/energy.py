"""kWh per unit and window from a power gauge, by the trapezoid rule."""

from __future__ import annotations

import numpy as np
from numba import njit

from twin.kpi.kernels.walk import advance, csr, run_chunks


@njit(cache=True, nogil=True)
def _trapezoid_run(kwh, covered, s, u, edges):
    """One unit's power samples into its rows ``kwh[window]``, ``covered[window]``; returns bad samples."""
    t, kw = s.t, s.value
    lo_edge = edges[0]
    hi_edge = edges[edges.shape[0] - 1]
    n_bad = 0
    w = 0
    lo_w = edges[0]
    hi_w = edges[1]
    have = False
    t0 = 0.0
    p0 = 0.0
    for i in range(s.offsets[u], s.offsets[u + 1]):
        p1 = kw[i]
        t1 = t[i]
        if not (p1 > -np.inf and p1 < np.inf):
            n_bad += 1
            continue
        if have and t1 > t0 and t0 >= lo_w and t1 <= hi_w:
            kwh[w] += (p0 + p1) * (t1 - t0) / 7200.0  # fast path: the segment inside one window
            covered[w] += t1 - t0
        elif have and t1 > t0:
            a = t0 if t0 > lo_edge else lo_edge
            b = t1 if t1 < hi_edge else hi_edge
            if a < b:
                dt = t1 - t0
                slope = (p1 - p0) / dt
                w = advance(edges, w, a)
                pa = p0 if a == t0 else p0 + slope * (a - t0)
                while True:
                    hi = edges[w + 1]
                    if b <= hi:
                        pb = p1 if b == t1 else p0 + slope * (b - t0)
                        kwh[w] += (pa + pb) * (b - a) / 7200.0
                        covered[w] += b - a
                        break
                    pb = p0 + slope * (hi - t0)
                    kwh[w] += (pa + pb) * (hi - a) / 7200.0
                    covered[w] += hi - a
                    a = hi
                    pa = pb
                    w += 1
                lo_w = edges[w]
                hi_w = edges[w + 1]
        have = True
        t0 = t1
        p0 = p1
    return n_bad


@njit(cache=True, nogil=True)
def _energy_chunk(k0, k1, s, edges, kwh, covered, bad):
    for u in range(k0, k1):
        bad[u] = _trapezoid_run(kwh[u], covered[u], s, u, edges)


def trapezoid_energy(power, edges):
    """kWh per unit and window from the ``power`` stream (kW), trapezoid rule with linear interpolation.

    Consecutive valid samples of a unit bound a segment; its part inside each window is integrated
    exactly (power linear between the samples). NaN or infinite samples are skipped (the segment
    then bridges them) and counted. Time outside every segment is not covered: ``covered_s`` says
    how much of each window the samples span.

    Returns ``kwh[n_units, n_windows]``, ``covered_s[n_units, n_windows]``, ``bad[n_units]`` (int64).
    """
    s = csr(power, np.float64)
    edges = np.ascontiguousarray(edges, dtype=np.float64)
    n_units, nw = s.offsets.shape[0] - 1, edges.shape[0] - 1
    kwh = np.zeros((n_units, nw))
    covered = np.zeros((n_units, nw))
    bad = np.zeros(n_units, dtype=np.int64)
    run_chunks(_energy_chunk, np.diff(s.offsets), s, edges, kwh, covered, bad)
    return kwh, covered, bad
