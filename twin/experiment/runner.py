"""An experiment from a checked plan to its document: every scenario's replications on Dask with the
same seeds (common random numbers), the statistics, and the optional sequential mode that adds
replications until the intervals named by ``targets`` are narrow enough.

The document is what ``experiment --json`` prints::

    {"plan": {...}, "scenarios": [{"name", "replications", "kpis": {KPI: {"mean", "std", "ci95_low",
     "ci95_high", "n"}}, "vs_base": {KPI: {"diff_mean", "ci95_low", "ci95_high", "verdict", "n"}}}]}

``kpis.bottleneck`` is ``{"station", "share", "counts"}`` (the station named most often); the
reference scenario's ``vs_base`` is empty. The raw replications are returned beside it (the CSV).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from twin.experiment import stats
from twin.experiment.plan import Plan

DEFAULT_MAX_REPLICATIONS = 200


@dataclass
class Outcome:
    doc: dict
    results: dict[str, list[dict]]  # scenario name -> its replications, in seed order


def parse_targets(items: list[str]) -> dict[str, float]:
    """``KPI=VALUE`` half-width targets of the sequential mode; a bad one is a ValueError naming it."""
    out: dict[str, float] = {}
    for item in items:
        kpi, sep, value = item.partition("=")
        kpi = kpi.strip()
        if not sep or kpi not in stats.KPIS:
            raise ValueError(f"--target-halfwidth {item!r}: expected KPI=VALUE with KPI one of {', '.join(stats.KPIS)}")
        try:
            target = float(value)
        except ValueError:
            target = math.nan
        if not (math.isfinite(target) and target > 0):
            raise ValueError(f"--target-halfwidth {item!r}: the half-width must be a number > 0")
        out[kpi] = target
    return out


def replications_needed(results: dict[str, list[dict]], targets: dict[str, float]) -> int:
    """How many replications every targeted interval needs, from the half-widths so far: the
    half-width shrinks as 1/sqrt(n) for a steady standard deviation, so n * (h / target)^2."""
    n = min(len(r) for r in results.values())
    need = n
    for rows in results.values():
        for kpi, target in targets.items():
            h = stats.halfwidth(r.get(kpi) for r in rows)
            if h is not None and h > target:
                need = max(need, n + 1, math.ceil(n * (h / target) ** 2))
    return need


def _tasks(plan: Plan, start: int, stop: int) -> list[tuple]:
    return [(s.name, s.factory_doc, plan.hours, plan.warmup_hours, plan.seed + i, str(plan.base_path))
            for s in plan.scenarios for i in range(start, stop)]


def run_experiment(plan: Plan, *, replications: int | None = None, workers: int | None = None,
                   scheduler: str | None = None, progress: bool = True, targets: dict[str, float] | None = None,
                   max_replications: int = DEFAULT_MAX_REPLICATIONS) -> Outcome:
    """Run the plan (``replications`` overrides the plan's) and summarise it: see the module's docstring."""
    from twin.experiment.cluster import open_client, run_on

    n = plan.replications if replications is None else replications
    targets = targets or {}
    results: dict[str, list[dict]] = {s.name: [] for s in plan.scenarios}
    rounds = []
    with open_client(workers, scheduler) as client:
        done = 0
        while True:
            out = run_on(client, _tasks(plan, done, n), progress=progress)
            per = n - done
            for k, s in enumerate(plan.scenarios):
                results[s.name].extend(out[k * per:(k + 1) * per])
            rounds.append(n)
            done = n
            if not targets:
                break
            need = replications_needed(results, targets)
            if need <= n or n >= max_replications:
                break
            n = min(max_replications, need)
    doc = summarise(plan, results)
    if targets:
        met = replications_needed(results, targets) <= n
        doc["plan"]["sequential"] = {"targets": targets, "max_replications": max_replications, "rounds": rounds,
                                     "met": met}
    return Outcome(doc, results)


def summarise(plan: Plan, results: dict[str, list[dict]]) -> dict:
    """The experiment document from the replications of every scenario (in seed order)."""
    ref = plan.reference
    n = len(results[ref])
    scenarios = []
    for s in plan.scenarios:
        rows = results[s.name]
        st = stats.scenario_statistics(rows, None if s.name == ref else results[ref])
        scenarios.append({"name": s.name, "replications": len(rows), **st})
    return {
        "plan": {
            "path": str(plan.path), "base": plan.base, "hours": plan.hours, "warmup_hours": plan.warmup_hours,
            "replications": n, "seed": plan.seed, "seeds": plan.seeds(n), "reference": ref,
            "scenarios": {s.name: {o.path: o.value for o in s.overrides} for s in plan.scenarios},
        },
        "scenarios": scenarios,
    }
