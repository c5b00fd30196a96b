"""Warm-up compiles the kernels for exactly the argument types the KPI computation passes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
from numba.core.registry import CPUDispatcher

import twin.kpi
from factory_models.states import State
from tests.support.factories import small_factory
from twin.kpi import compute_kpis
from twin.kpi.eventlog import Channel
from twin.kpi import warmup
from twin.kpi.kernels import counters, energy, states, walk
from twin.shadow.router import new_log


def _signatures() -> dict[str, set]:
    return {f"{mod.__name__}.{name}": set(obj.signatures)
            for mod in (walk, states, counters, energy) for name, obj in vars(mod).items()
            if isinstance(obj, CPUDispatcher)}


def test_compute_after_warm_up_compiles_nothing_new():
    twin.kpi.warm_up(background=False)
    compiled = _signatures()
    assert compiled["twin.kpi.kernels.states._state_chunk"]  # the warm-up did compile (or load) them
    f, log = _small_log()
    report = compute_kpis(log, f, np.arange(0.0, 601.0, 60.0))
    assert report.site.oee is not None
    assert _signatures() == compiled


def _small_log():
    f = small_factory()
    log = new_log(f, 0.0, 600.0)
    log.incremental = True  # as the live twin keeps it
    for u in range(len(f.station_units())):
        log.state(0.0, u, int(State.PRODUCING))
        log.product(0.0, u, 0)
        for t, v in ((0.0, 0.0), (300.0, 10.0), (600.0, 20.0)):
            log.count(t, u, Channel.PRODUCED, v)
            log.power(t, u, 5.0)
    return f, log


def test_compute_waits_for_a_warm_up_in_progress(monkeypatch):
    release = threading.Event()
    pending = threading.Thread(target=release.wait, daemon=True)  # a warm-up that has not finished
    pending.start()
    monkeypatch.setattr(warmup, "_started", pending)
    f, log = _small_log()
    done = threading.Event()
    worker = threading.Thread(target=lambda: (compute_kpis(log, f), done.set()), daemon=True)
    worker.start()
    assert not done.wait(0.5)  # held while the warm-up runs
    release.set()
    assert done.wait(120)


def test_warm_up_starts_once_in_the_background():
    code = ("import twin.kpi as k; a = k.warm_up(); b = k.warm_up(); "
            "print(a is b, a.daemon, a.name); a.join(); print(a.is_alive())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["True", "True", "kpi-warm-up", "False"]


def test_warm_up_command_runs():
    out = subprocess.run([sys.executable, "-m", "twin.kpi.warmup"], capture_output=True, text=True, check=True,
                         timeout=300)
    assert out.stdout.startswith("KPI kernels compiled") and "RuntimeWarning" not in out.stderr


def test_warm_up_in_a_child_process_fills_an_empty_cache(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    probe = [sys.executable, "-c", "from twin.kpi.warmup import cache_is_warm; print(cache_is_warm())"]
    assert subprocess.run(probe, env=env, capture_output=True, text=True, check=True).stdout.strip() == "False"
    code = "import twin.kpi as k; k.warm_up(child=True).join()"
    subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, timeout=300)
    assert subprocess.run(probe, env=env, capture_output=True, text=True, check=True).stdout.strip() == "True"
