"""Benchmark of the KPI kernels: Numba against vectorised NumPy and plain Python, and memory bandwidth.

    python -m bench.kpi [--samples N] [--json]

For each kernel of ``twin.kpi.kernels`` it measures samples per second of the Numba kernel (after a
warm-up call, best of a few runs), of a vectorised NumPy version of the same computation written
here (checked to agree with the kernel), and of the plain-Python reference ``twin.kpi.reference``
on a smaller subset (scaled to samples per second). ``bandwidth_fraction`` is the kernel's bytes
read per second (the input arrays it actually reads, ``READS``) over this machine's memory-read
bandwidth, measured in the same run as the best time of ``numpy.sum`` over an 800 MB float64 array
(best of the sums before and after the kernels). ``ns_per_sample_1_thread`` is the kernel's time
per sample with one Numba thread.

The synthetic data: 64 stations, one day, one-minute windows; each stream has ``--samples`` rows
spread evenly over the units (or unit-channel keys), times jittered on a grid so they are sorted
within a key, as ``EventLog.freeze`` leaves them.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

import numpy as np

from factory_models.states import N_STATES, State
from twin.kpi.eventlog import CONTINUOUS, N_CHANNELS, Channel, csr_offsets
from twin.kpi import kernels, reference

T0 = 1_772_409_600.0  # 2026-03-02T00:00:00Z
SPAN_S = 86_400.0
N_UNITS = 64
N_PRODUCTS = 4
WINDOW_S = 60.0
MODULUS = 65_536.0
UNKNOWN, DOWN = int(State.UNKNOWN), int(State.DOWN)


# --- synthetic streams --------------------------------------------------------------------------


def _keyed_times(n: int, n_keys: int, rng: np.random.Generator, keys: np.ndarray | None = None):
    """(t, key, offsets): n rows over the given keys, sorted by (key, t), jittered on an even grid."""
    keys = np.arange(n_keys) if keys is None else keys
    per = max(n // len(keys), 1)
    key = np.repeat(keys, per).astype(np.int64)
    grid = (np.tile(np.arange(per, dtype=np.float64), len(keys)) + rng.random(key.size)) * (SPAN_S / per)
    return T0 - 60.0 + grid * (SPAN_S + 120.0) / SPAN_S, key, csr_offsets(key, n_keys)


def make_stream(name: str, n: int, seed: int = 1) -> dict:
    rng = np.random.default_rng(seed)
    if name == "state_durations":
        t, key, off = _keyed_times(n, N_UNITS, rng)
        return {"t": t, "key": key, "offsets": off, "value": rng.integers(0, N_STATES - 1, t.size).astype(np.int8)}
    if name == "counter_deltas":
        t, key, off = _keyed_times(n, N_UNITS * N_CHANNELS, rng)
        steps = rng.integers(0, 3, t.size).astype(np.float64)
        value = np.empty_like(steps)
        for k in range(N_UNITS * N_CHANNELS):  # cumulative per key, wrapping like a 16-bit PLC counter
            s = slice(off[k], off[k + 1])
            value[s] = np.cumsum(steps[s]) % MODULUS
        return {"t": t, "key": key, "offsets": off, "value": value}
    if name == "trapezoid_energy":
        t, key, off = _keyed_times(n, N_UNITS, rng)
        return {"t": t, "key": key, "offsets": off, "value": rng.random(t.size) * 20.0}
    if name == "ideal_time":
        produced_keys = np.arange(N_UNITS) * N_CHANNELS + int(Channel.PRODUCED)
        t, key, off = _keyed_times(n, N_UNITS * N_CHANNELS, rng, keys=produced_keys)
        value = np.empty(t.size)
        steps = rng.integers(0, 3, t.size).astype(np.float64)
        for u in range(N_UNITS):
            s = slice(off[produced_keys[u]], off[produced_keys[u] + 1])
            value[s] = np.cumsum(steps[s]) % MODULUS
        pt, pkey, poff = _keyed_times(N_UNITS * 200, N_UNITS, rng)
        return {"t": t, "key": key, "offsets": off, "value": value, "p_t": pt, "p_key": pkey, "p_offsets": poff,
                "p_code": rng.integers(-1, N_PRODUCTS, pt.size).astype(np.int32),
                "default": np.zeros(N_UNITS, dtype=np.int64),
                "ideal_cycle_s": rng.uniform(5.0, 60.0, (N_UNITS, N_PRODUCTS))}
    raise ValueError(name)


#: The arrays each kernel reads (each once, front to back), for the bytes-read figure: only what the
#: kernel touches, never the key column (the kernels walk the CSR offsets instead).
READS = {"state_durations": ("t", "value", "offsets"), "counter_deltas": ("t", "value", "offsets"),
         "trapezoid_energy": ("t", "value", "offsets"),
         "ideal_time": ("t", "value", "offsets", "p_t", "p_code", "p_offsets")}


def bytes_read(name: str, d: dict) -> int:
    """Bytes of the input arrays the kernel reads (every row of the bench's streams is read)."""
    return sum(d[a].nbytes for a in READS[name]) + EDGES.nbytes
EDGES = T0 + np.arange(int(SPAN_S / WINDOW_S) + 1) * WINDOW_S
T_END = T0 + SPAN_S - 30.0
MOD = np.where(CONTINUOUS, 0.0, MODULUS)


def run_numba(name: str, d: dict):
    if name == "state_durations":
        return kernels.state_durations(_csr(d), EDGES, T_END)[:2]
    if name == "counter_deltas":
        return kernels.counter_deltas(_csr(d), EDGES, MOD, CONTINUOUS)[:1]
    if name == "trapezoid_energy":
        return kernels.trapezoid_energy(_csr(d), EDGES)[:2]
    mix = kernels.product_mix(kernels.Csr(d["p_offsets"], d["p_t"], d["p_code"]), d["default"], d["ideal_cycle_s"])
    return kernels.ideal_time(_csr(d), mix, EDGES, MODULUS)


def _csr(d: dict) -> kernels.Csr:
    return kernels.Csr(d["offsets"], d["t"], d["value"])


def run_python(name: str, d: dict):
    t, key, value = d["t"].tolist(), d["key"].tolist(), d["value"].tolist()
    edges = EDGES.tolist()
    if name == "state_durations":
        call = lambda: reference.state_durations(t, key, value, N_UNITS, edges, T_END)  # noqa: E731
    elif name == "counter_deltas":
        call = lambda: reference.counter_deltas(t, key, value, N_UNITS * N_CHANNELS, edges,  # noqa: E731
                                                MOD.tolist(), CONTINUOUS.tolist())
    elif name == "trapezoid_energy":
        call = lambda: reference.trapezoid_energy(t, key, value, N_UNITS, edges)  # noqa: E731
    else:
        p = (d["p_t"].tolist(), d["p_key"].tolist(), d["p_code"].tolist())
        call = lambda: reference.ideal_time(t, key, value, *p, d["default"].tolist(),  # noqa: E731
                                            d["ideal_cycle_s"].tolist(), edges, MODULUS)
    return call


# --- vectorised NumPy versions of the same computations -------------------------------------------


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


NUMPY = {"state_durations": numpy_state_durations, "counter_deltas": numpy_counter_deltas,
         "trapezoid_energy": numpy_trapezoid_energy, "ideal_time": numpy_ideal_time}


# --- measurement ----------------------------------------------------------------------------------


def best_time(call, repeat: int) -> float:
    best = np.inf
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    return best


def memory_bandwidth_gb_s(n_bytes: int = 800_000_000, repeat: int = 5) -> float:
    """Best-of-``repeat`` read bandwidth of numpy.sum over an ``n_bytes`` float64 array, GB/s.

    The array is written first (np.ones), so no page is faulted in during the timed sums.
    """
    a = np.ones(n_bytes // 8)
    seconds = best_time(a.sum, repeat)
    del a
    return n_bytes / seconds / 1e9


def single_thread_ns(call, n: int, repeat: int) -> float:
    """Best-of-``repeat`` nanoseconds per sample of ``call`` with the kernels on one thread."""
    with kernels.threads(1):
        return best_time(call, repeat) / n * 1e9


def max_rel_diff(got, want) -> float:
    worst = 0.0
    for g, w in zip(got, want):
        g, w = np.asarray(g, dtype=np.float64), np.asarray(w, dtype=np.float64)
        scale = max(float(np.abs(w).max()), 1e-300)
        worst = max(worst, float(np.abs(g - w).max()) / scale)
    return worst


def bench(n_samples: int, n_python: int, repeat: int = 5) -> dict:
    """Kernels timed best of ``repeat``; the bandwidth is the best of the same number of sums taken
    before and after the kernels (the higher, so the fractions are not flattered by a busy moment)."""
    bandwidth_before = memory_bandwidth_gb_s(repeat=repeat)
    out = {"samples": n_samples, "python_samples": n_python, "kernels": {}}
    for name in NUMPY:
        small = make_stream(name, 50_000)
        run_numba(name, small)  # warm-up: load or compile the cached kernel
        d = make_stream(name, n_samples)
        n = d["t"].size
        t_numba = best_time(lambda: run_numba(name, d), repeat)
        ns_1t = single_thread_ns(lambda: run_numba(name, d), n, repeat)
        n_bytes = bytes_read(name, d)
        numba_out = run_numba(name, d)
        t_numpy = best_time(lambda: NUMPY[name](d), 1)
        numpy_out = NUMPY[name](d)
        agree = max_rel_diff(numba_out, numpy_out)
        del d, numba_out, numpy_out
        gc.collect()
        sub = make_stream(name, n_python)
        t_python = best_time(run_python(name, sub), 1)
        rate = n / t_numba
        out["kernels"][name] = {
            "samples_per_s": rate,
            "vs_numpy": t_numpy / t_numba,
            "vs_python": rate / (sub["t"].size / t_python),
            "bytes_read_per_s": n_bytes / t_numba,
            "bytes_per_sample": n_bytes / n,
            "ns_per_sample_1_thread": ns_1t,
            "numpy_max_rel_diff": agree,
        }
    bandwidth = max(bandwidth_before, memory_bandwidth_gb_s(repeat=repeat))
    out["bandwidth_gb_s"] = bandwidth
    for k in out["kernels"].values():
        k["bandwidth_fraction"] = k["bytes_read_per_s"] / (bandwidth * 1e9)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kpi", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=10_000_000, help="rows per stream (default 10,000,000)")
    parser.add_argument("--python-samples", type=int, default=200_000,
                        help="rows for the plain-Python baseline, scaled to samples/s (default 200,000)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.samples < 10_000 or args.python_samples < 1_000:
        parser.error("--samples must be >= 10000 and --python-samples >= 1000")
    from twin.kpi.kernels.walk import default_threads

    result = bench(args.samples, min(args.python_samples, args.samples))
    result["numba_threads"] = default_threads()
    if args.json:
        json.dump(result, sys.stdout)
        print()
        return 0
    print(f"memory-read bandwidth (numpy.sum over 800 MB): {result['bandwidth_gb_s']:.2f} GB/s; "
          f"{args.samples:,} samples per stream; Numba threads: {result['numba_threads']}")
    print(f"{'kernel':<18} {'samples/s':>12} {'vs numpy':>9} {'vs python':>10} {'of bandwidth':>13} "
          f"{'ns/sample 1T':>13} {'numpy diff':>11}")
    for name, k in result["kernels"].items():
        print(f"{name:<18} {k['samples_per_s']:>12.3e} {k['vs_numpy']:>8.1f}x {k['vs_python']:>9.0f}x "
              f"{k['bandwidth_fraction']:>12.0%} {k['ns_per_sample_1_thread']:>13.2f} {k['numpy_max_rel_diff']:>11.1e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
