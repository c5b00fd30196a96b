"""Experiment replications on a local Dask cluster of 2 workers against 1 worker, in the same run.

    python -m bench.experiment [--replications 200] [--repeat 1] [--hours 24] [--warmup-hours 0]
                               [--config configs/demo_smt.yaml] [--seed 1] [--json]

Both local clusters (worker processes, one thread each, as ``experiment`` starts them) are started
and every worker warmed first (the Numba KPI kernels loaded, the twin imported: not timed). Then
``run_on`` over the same tasks (seeds ``seed .. seed + replications - 1`` of the config) is timed on
1 worker and on 2, alternately, ``--repeat`` times each; the fastest run of each side counts, as
other work on a shared machine only ever slows a run down.

It prints each side's wall seconds, replications per second, the speed-up of 2 workers over 1 (goal
at least 1.7x on 2 cores) and whether every run returned the same numbers (they must). The load
average before each run and the share of a core each worker got (its CPU seconds / wall seconds)
are printed too: well below 100 % means other processes had the cores, and the speed-up then says
more about them than about Dask.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import yaml

from twin.experiment.cluster import default_workers, open_client, run_on, warm

ROOT = Path(__file__).resolve().parent.parent
GOAL = 1.7


def timed(client, tasks: list, workers: int) -> dict:
    """Wall and worker CPU seconds of ``tasks`` on a warmed cluster of ``workers`` processes."""
    load = os.getloadavg()[0]
    cpu0 = client.run(_cpu_s)
    start = time.perf_counter()
    results = run_on(client, tasks, progress=False)
    wall = time.perf_counter() - start
    cpu = sum(v - cpu0[k] for k, v in client.run(_cpu_s).items())
    return {"workers": workers, "wall_s": wall, "replications_per_s": len(tasks) / wall,
            "worker_cpu_s": cpu, "core_share_per_worker": cpu / (wall * workers),
            "load_avg_1min_before": load, "results": results}


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def measure(tasks: list, repeat: int) -> tuple[dict, dict, list[dict], bool]:
    """(fastest 1-worker run, fastest 2-worker run, every run in order, all results identical)."""
    runs: list[dict] = []
    with ExitStack() as stack:
        clients = {n: stack.enter_context(open_client(workers=n)) for n in (1, 2)}
        for client in clients.values():
            warm(client)
        for _ in range(repeat):
            for n, client in clients.items():
                runs.append(timed(client, tasks, n))
    first = runs[0]["results"]
    same = all(r.pop("results") == first for r in runs)
    best = {n: min((r for r in runs if r["workers"] == n), key=lambda r: r["wall_s"]) for n in (1, 2)}
    return best[1], best[2], runs, same


def _line(side: dict) -> str:
    return (f"{side['workers']} worker{'s' if side['workers'] > 1 else ''}: {side['wall_s']:.2f} s, "
            f"{side['replications_per_s']:.2f} replications/s; worker CPU {side['worker_cpu_s']:.1f} s, "
            f"{side['core_share_per_worker']:.0%} of a core each (1-min load average before: "
            f"{side['load_avg_1min_before']:.2f})")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.experiment", description=__doc__.splitlines()[0])
    p.add_argument("--replications", type=int, default=200)
    p.add_argument("--repeat", type=int, default=1, help="timed runs of each side, alternating; the fastest counts")
    p.add_argument("--hours", type=float, default=24.0)
    p.add_argument("--warmup-hours", type=float, default=0.0)
    p.add_argument("--config", type=Path, default=ROOT / "configs/demo_smt.yaml")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    if a.replications < 1 or a.repeat < 1:
        p.error("--replications and --repeat must be at least 1")
    doc = yaml.safe_load(a.config.read_text())
    tasks = [("base", doc, a.hours, a.warmup_hours, a.seed + i, str(a.config)) for i in range(a.replications)]
    one, two, runs, same = measure(tasks, a.repeat)
    speedup = one["wall_s"] / two["wall_s"]
    out = {"replications": a.replications, "repeat": a.repeat, "hours": a.hours, "warmup_hours": a.warmup_hours,
           "config": str(a.config), "cores_available": default_workers(), "one_worker": one, "two_workers": two,
           "runs": runs, "speedup": speedup, "goal": GOAL, "identical_results": same}
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"{a.replications} replications of {a.hours:g} h ({a.warmup_hours:g} h warm-up) of {a.config.name}, "
              f"{out['cores_available']} cores available, fastest of {a.repeat} run(s) per side")
        for side in (one, two):
            print("  " + _line(side))
        print(f"  speed-up 2 vs 1 workers: {speedup:.2f}x (goal >= {GOAL}x); identical results: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
