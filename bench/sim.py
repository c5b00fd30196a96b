"""Speed of the offline twin against a bare SimPy line of the same size, measured in the same run.

    python -m bench.sim [--days 7] [--config configs/demo_smt.yaml] [--seed 0] [--json]

The bare line has the same machines (one process each), the same buffers with the same capacities,
the same release queue and the same cycle times (first product, ideal x slowdown), written the
idiomatic SimPy way (``yield store.get()``, ``yield env.timeout()``, ``yield store.put()``), with no
logging, failures, setups, shifts or meters. Events are counted the same way for both: the number
of events the environment scheduled (``env._eid``), which includes every timeout, store request and
process resumption. Parts processed per wall second (finished operations summed over machines)
is printed beside it, as the twin skips suspending on buffer requests that are already served.
Each side runs ``--repeat`` times, interleaved, and its fastest run counts; events per CPU second
are printed too, being steadier than wall time on a shared machine. The goal is at least 0.8x the
bare line's events per second (the twin does the bookkeeping the bare line leaves out: state and
counter rows, energy per state, the site power integral, shifts, failures, meters).

``--profile N`` also runs the twin once under cProfile and prints its N costliest functions (own
time), which is how the recorder, the energy bookkeeping and the buffers were found and made cheaper.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import time
from pathlib import Path

import simpy

from factory_models import load_factory
from factory_models.schema import Factory
from twin.model import FactorySim

ROOT = Path(__file__).resolve().parent.parent
TARGET = 0.8  # twin / bare events per second (issue 13; was 0.5)


def _events(env: simpy.Environment) -> int:
    """Events scheduled so far (reads SimPy's event id counter without consuming an id twice)."""
    return next(env._eid)


def bare_line(factory: Factory, days: float) -> dict:
    """Run the bare line for ``days`` of simulated time; return events, operations and wall time."""
    env = simpy.Environment()
    first = factory.product_names()[0]
    done = [0]
    for line in factory.lines:
        stations = line.stations
        stores = [simpy.Store(env, line.release.batch_size)] + [simpy.Store(env, st.buffer_after) for st in stations[:-1]]

        def source(store):
            while True:
                yield store.put(0)

        def machine(inp, out, cycle_s):
            while True:
                part = yield inp.get()
                yield env.timeout(cycle_s)
                done[0] += 1
                if out is not None:
                    yield out.put(part)

        env.process(source(stores[0]))
        for i, st in enumerate(stations):
            out = stores[i + 1] if i + 1 < len(stations) else None
            for _ in range(st.machines):
                env.process(machine(stores[i], out, st.cycle_time_s[first] * st.slowdown))
    e0 = _events(env)
    c, t = time.process_time(), time.perf_counter()
    env.run(until=days * 86400.0)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    return {"events": _events(env) - e0 - 1, "operations": done[0], "wall_s": wall, "cpu_s": cpu}


def twin(factory: Factory, days: float, seed: int) -> dict:
    sim = FactorySim(factory, seed)
    e0 = _events(sim.env)
    c, t = time.process_time(), time.perf_counter()
    sim.run(days * 86400.0)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    ops = sum(m.produced for m in sim.machines)
    return {"events": _events(sim.env) - e0 - 1, "operations": ops, "wall_s": wall, "cpu_s": cpu,
            "log_rows": len(sim.log)}


def profile(factory: Factory, days: float, seed: int, top: int) -> str:
    """The twin's ``top`` costliest functions by own time over one run, as pstats prints them."""
    sim = FactorySim(factory, seed)
    prof = cProfile.Profile()
    prof.runcall(sim.run, days * 86400.0)
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.sim", description=__doc__.split("\n\n")[0])
    ap.add_argument("--days", type=float, default=7.0, help="simulated days (default 7)")
    ap.add_argument("--config", default=str(ROOT / "configs" / "demo_smt.yaml"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs of each, interleaved; the fastest counts (default 3: the machine is shared)")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    ap.add_argument("--profile", type=int, default=0, metavar="N",
                    help="also profile one twin run (cProfile) and print its N costliest functions")
    args = ap.parse_args(argv)
    factory = load_factory(args.config)
    sim_s = args.days * 86400.0
    # warm both code paths (imports, first-call costs) before timing
    bare_line(factory, 0.05)
    twin(factory, 0.05, args.seed)
    runs_b, runs_w = [], []
    for _ in range(max(args.repeat, 1)):
        runs_b.append(bare_line(factory, args.days))
        runs_w.append(twin(factory, args.days, args.seed))
    b = min(runs_b, key=lambda r: r["wall_s"])
    w = min(runs_w, key=lambda r: r["wall_s"])
    # fastest run by wall time and, separately, by CPU time
    b = dict(b, cpu_s=min(r["cpu_s"] for r in runs_b))
    w = dict(w, cpu_s=min(r["cpu_s"] for r in runs_w))
    for r in (b, w):
        r["events_per_s"] = r["events"] / r["wall_s"]
        r["operations_per_s"] = r["operations"] / r["wall_s"]
        r["sim_s_per_wall_s"] = sim_s / r["wall_s"]
        r["events_per_cpu_s"] = r["events"] / r["cpu_s"]
    result = {
        "config": Path(args.config).name,
        "days": args.days,
        "repeat": max(args.repeat, 1),
        "stations": len(factory.station_units()),
        "bare": b,
        "twin": w,
        "events_per_s_ratio": w["events_per_s"] / b["events_per_s"],
        "operations_per_s_ratio": w["operations_per_s"] / b["operations_per_s"],
        "sim_speed_ratio": w["sim_s_per_wall_s"] / b["sim_s_per_wall_s"],
        # CPU time is steadier than wall time when other jobs share the cores
        "events_per_cpu_s_ratio": w["events_per_cpu_s"] / b["events_per_cpu_s"],
        "target_events_per_s_ratio": TARGET,
    }
    if args.profile > 0:
        result["profile"] = profile(factory, args.days, args.seed, args.profile)
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{result['config']}: {args.days:g} simulated days, {result['stations']} machines, "
          f"best of {result['repeat']} runs each")
    print(f"{'':10s}{'events':>10s}{'events/s':>12s}{'ops/s':>10s}{'sim s/wall s':>14s}{'wall s':>9s}")
    for name, r in (("bare line", b), ("twin", w)):
        print(f"{name:10s}{r['events']:10d}{r['events_per_s']:12.0f}{r['operations_per_s']:10.0f}"
              f"{r['sim_s_per_wall_s']:14.0f}{r['wall_s']:9.2f}")
    verdict = "meets" if result["events_per_s_ratio"] >= TARGET else "misses"
    print(f"twin / bare: events/s {result['events_per_s_ratio']:.2f}x ({verdict} the {TARGET}x target), "
          f"operations/s {result['operations_per_s_ratio']:.2f}x, simulated time/wall {result['sim_speed_ratio']:.2f}x; "
          f"events per CPU second {result['events_per_cpu_s_ratio']:.2f}x")
    if args.profile > 0:
        print(result["profile"], end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
