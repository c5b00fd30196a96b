"""The kernels' driver: groups of keys on threads give the one-thread answer; threads set at the call."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from factory_models.states import N_STATES
from twin.kpi import kernels
from twin.kpi.eventlog import CONTINUOUS, N_CHANNELS, csr_offsets
from twin.kpi.kernels import walk


def _stream(n_keys, per_key, values, seed=3):
    rng = np.random.default_rng(seed)
    key = np.repeat(np.arange(n_keys), per_key)
    t = np.tile(np.arange(per_key, dtype=np.float64), n_keys) * 0.5 + rng.random(key.size) * 0.25
    return kernels.Csr(csr_offsets(key, n_keys), t, values(rng, key.size))


def test_balanced_chunks_split_by_rows_not_keys():
    b = kernels.balanced_chunks([1000, 1, 1, 1, 1000], 2)
    assert b[0] == 0 and b[-1] == 5 and len(b) == 3
    assert b[1] in (1, 2, 3, 4)  # one group holds the first big key, the other the last


def test_threads_must_be_positive():
    with pytest.raises(ValueError, match="threads must be >= 1"):
        with kernels.threads(0):
            pass


def test_pooled_groups_give_the_single_thread_answer(monkeypatch):
    edges = np.arange(0.0, 101.0, 7.0)
    st = _stream(5, 40, lambda rng, n: rng.integers(-1, N_STATES + 1, n).astype(np.int8))
    ct = _stream(3 * N_CHANNELS, 40, lambda rng, n: np.cumsum(rng.integers(0, 3, n)).astype(np.float64) % 50)
    pw = _stream(5, 40, lambda rng, n: rng.random(n) * 10)
    mod = np.full(N_CHANNELS, 50.0)

    def run_all():
        return (*kernels.state_durations(st, edges, 90.0), *kernels.counter_deltas(ct, edges, mod, CONTINUOUS),
                *kernels.trapezoid_energy(pw, edges))

    with kernels.threads(1):
        one = run_all()
    calls = []
    real = walk.balanced_chunks
    monkeypatch.setattr(walk, "MIN_ROWS_PER_THREAD", 1)  # hand even this small log to the pool
    monkeypatch.setattr(walk, "balanced_chunks", lambda *a: calls.append(real(*a)) or calls[-1])
    with kernels.threads(3):
        pooled = run_all()
    assert calls and all(len(b) > 2 for b in calls)  # really split into groups
    for a, b in zip(one, pooled):
        np.testing.assert_array_equal(a, b)


def test_importing_the_kernels_changes_no_environment():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    code = "import os, twin.kpi.kernels; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "None"
