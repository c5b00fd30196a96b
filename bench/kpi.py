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

The synthetic data (``bench.kpi_streams``): 64 stations, one day, one-minute windows; each stream
has ``--samples`` rows spread evenly over the units (or unit-channel keys), times jittered on a grid
so they are sorted within a key, as ``EventLog.freeze`` leaves them. The NumPy versions are in
``bench.kpi_numpy``.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time

import numpy as np

from bench.kpi_numpy import NUMPY
from bench.kpi_streams import (
    CONTINUOUS,
    EDGES,
    MICRO_STOP_S,
    MOD,
    MODULUS,
    N_CHANNELS,
    N_UNITS,
    T_END,
    bytes_read,
    make_stream,
)
from twin.kpi import kernels, reference


def run_numba(name: str, d: dict):
    if name == "state_durations":
        return kernels.state_durations(_csr(d), EDGES, T_END)[:2]
    if name == "counter_deltas":
        return kernels.counter_deltas(_csr(d), EDGES, MOD, CONTINUOUS)[:1]
    if name == "trapezoid_energy":
        return kernels.trapezoid_energy(_csr(d), EDGES)[:2]
    if name == "failure_spells":
        return kernels.failure_spells(_csr(d), EDGES, T_END, MICRO_STOP_S)
    mix = kernels.product_mix(kernels.Csr(d["p_offsets"], d["p_t"], d["p_code"]), d["default"], d["ideal_cycle_s"])
    if name == "gap_parts":
        return kernels.gap_parts(_csr(d), kernels.Csr(d["s_offsets"], d["s_t"], d["s_code"]), mix, EDGES, T_END, MODULUS)
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
    elif name == "failure_spells":
        call = lambda: reference.failure_spells(t, key, value, N_UNITS, edges, T_END, MICRO_STOP_S)  # noqa: E731
    elif name == "gap_parts":
        p = (d["p_t"].tolist(), d["p_key"].tolist(), d["p_code"].tolist())
        s = (d["s_t"].tolist(), d["s_key"].tolist(), d["s_code"].tolist())
        call = lambda: reference.gap_parts(t, key, value, *s, *p, d["default"].tolist(),  # noqa: E731
                                           d["ideal_cycle_s"].tolist(), edges, T_END, MODULUS)
    else:
        p = (d["p_t"].tolist(), d["p_key"].tolist(), d["p_code"].tolist())
        call = lambda: reference.ideal_time(t, key, value, *p, d["default"].tolist(),  # noqa: E731
                                            d["ideal_cycle_s"].tolist(), edges, MODULUS)
    return call


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
