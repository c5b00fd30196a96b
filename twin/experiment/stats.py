"""Statistics of an experiment's replications: mean, standard deviation and a 95 % Student t interval
per scenario and KPI, the paired difference of each scenario against the base (common random
numbers: replication i of every scenario ran with the same seed), a plain verdict, and the station
named bottleneck most often.

The t quantile is computed here rather than taken from SciPy (not a dependency of the twin): the
distribution function of Student's t with an integer number of degrees of freedom is a finite sum
(Abramowitz and Stegun, Handbook of Mathematical Functions, 1964, formulas 26.7.3 and 26.7.4),
inverted by bisection. tests/unit/test_experiment_stats.py checks it against published table values.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Iterable, Sequence

#: the numeric KPIs of a replication and which way is better: +1 higher, -1 lower
KPIS: dict[str, int] = {
    "throughput_per_h": +1,
    "oee": +1,
    "availability": +1,
    "performance": +1,
    "quality": +1,
    "energy_kwh": -1,
    "kwh_per_good": -1,
    "co2e_kg_per_good": -1,
    "scope2_location_co2e_kg": -1,
    "scope1_co2e_kg": -1,
}

BETTER, WORSE, SAME = "better", "worse", "no significant difference"
CONFIDENCE = 0.95


def t_two_sided_probability(t: float, df: int) -> float:
    """P(|T| <= t) for Student's t with ``df`` (a positive integer) degrees of freedom."""
    if df < 1 or int(df) != df:
        raise ValueError(f"degrees of freedom must be a positive integer, got {df!r}")
    if t <= 0:
        return 0.0
    theta = math.atan(t / math.sqrt(df))
    sin, cos2 = math.sin(theta), math.cos(theta) ** 2
    if df % 2 == 0:
        # sin(theta) * (1 + 1/2 cos^2 + (1*3)/(2*4) cos^4 + ... up to cos^(df-2))
        term = total = 1.0
        for k in range(2, df - 1, 2):
            term *= (k - 1) / k * cos2
            total += term
        return min(1.0, sin * total)
    if df == 1:
        return 2.0 * theta / math.pi
    # (2/pi) (theta + sin(theta) (cos + 2/3 cos^3 + (2*4)/(3*5) cos^5 + ... up to cos^(df-2)))
    term = total = math.cos(theta)
    for k in range(3, df - 1, 2):
        term *= (k - 1) / k * cos2
        total += term
    return min(1.0, 2.0 / math.pi * (theta + sin * total))


def t_quantile(confidence: float, df: int) -> float:
    """The t with P(|T| <= t) = ``confidence``: the multiplier of a two-sided interval (2.776 for 95 %
    and 4 degrees of freedom)."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    lo, hi = 0.0, 1.0
    while t_two_sided_probability(hi, df) < confidence:
        lo, hi = hi, hi * 2.0
    for _ in range(200):  # bisection to the float's resolution
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if t_two_sided_probability(mid, df) < confidence:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _numbers(values: Iterable[float | None]) -> list[float]:
    out = []
    for v in values:
        if v is None or isinstance(v, bool):
            continue
        f = float(v)
        if math.isfinite(f):
            out.append(f)
    return out


def interval(values: Sequence[float]) -> tuple[float, float | None, float | None]:
    """(mean, sample standard deviation, half-width of the 95 % t interval); None below 2 values."""
    n = len(values)
    if n == 0:
        raise ValueError("no values")
    mean = math.fsum(values) / n
    if n < 2:
        return mean, None, None
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    return mean, std, t_quantile(CONFIDENCE, n - 1) * std / math.sqrt(n)


def summarize(values: Iterable[float | None]) -> dict:
    """Mean, std and 95 % interval of one KPI over a scenario's replications. ``n`` counts the
    replications that had the KPI (kWh per good has none in a replication without good output)."""
    nums = _numbers(values)
    if not nums:
        return {"mean": None, "std": None, "ci95_low": None, "ci95_high": None, "n": 0}
    mean, std, half = interval(nums)
    return {"mean": mean, "std": std, "ci95_low": None if half is None else mean - half,
            "ci95_high": None if half is None else mean + half, "n": len(nums)}


def verdict(low: float | None, high: float | None, direction: int) -> str | None:
    """``better`` or ``worse`` when the interval of the difference excludes 0, else no significant
    difference; ``direction`` +1 when higher is better, -1 when lower is."""
    if low is None or high is None:
        return None
    if low > 0 or high < 0:
        return BETTER if (low > 0) == (direction > 0) else WORSE
    return SAME


def paired(scenario: Sequence[float | None], base: Sequence[float | None], direction: int) -> dict:
    """The paired difference scenario - base over replications of the same seed (pairs where either
    side lacks the KPI are left out and ``n`` says how many pairs were used)."""
    if len(scenario) != len(base):
        raise ValueError(f"paired differences need the same replications: {len(scenario)} against {len(base)}")
    diffs = _numbers(s - b for s, b in zip(scenario, base)
                     if s is not None and b is not None and math.isfinite(s) and math.isfinite(b))
    if not diffs:
        return {"diff_mean": None, "ci95_low": None, "ci95_high": None, "verdict": None, "n": 0}
    mean, _, half = interval(diffs)
    low, high = (None, None) if half is None else (mean - half, mean + half)
    return {"diff_mean": mean, "ci95_low": low, "ci95_high": high, "verdict": verdict(low, high, direction),
            "n": len(diffs)}


def bottleneck(names: Iterable[str | None]) -> dict:
    """The station named bottleneck in most replications and its share of them (a tie goes to the
    name first in alphabetical order, so the answer does not depend on replication order)."""
    names = list(names)
    counts = Counter(n for n in names if n)
    if not counts:
        return {"station": None, "share": None, "counts": {}}
    station = min(counts, key=lambda n: (-counts[n], n))
    return {"station": station, "share": counts[station] / len(names), "counts": dict(sorted(counts.items()))}


def halfwidth(values: Iterable[float | None]) -> float | None:
    """The 95 % interval's half-width of one KPI (None below 2 values): the sequential mode's measure."""
    nums = _numbers(values)
    return interval(nums)[2] if nums else None


def tradeoff(results: Sequence[dict], base: Sequence[dict]) -> dict:
    """What a scenario saves against what it loses over one replication's span, paired with the base:
    ``energy_saved_kwh`` (base - scenario), ``co2e_saved_kg`` (Scope 1 + Scope 2 location, base -
    scenario) and ``good_lost`` (base - scenario good units), each with its 95 % interval."""
    def co2e(r: dict) -> float | None:
        a, b = r.get("scope1_co2e_kg"), r.get("scope2_location_co2e_kg")
        return None if a is None or b is None else a + b

    out = {}
    for key, of in (("energy_saved_kwh", lambda r: r.get("energy_kwh")), ("co2e_saved_kg", co2e),
                    ("good_lost", lambda r: r.get("good"))):
        d = paired([of(r) for r in base], [of(r) for r in results], +1)
        out[key] = {"mean": d["diff_mean"], "ci95_low": d["ci95_low"], "ci95_high": d["ci95_high"],
                    "significant": d["verdict"] in (BETTER, WORSE)}
    return out


def scenario_statistics(results: Sequence[dict], base: Sequence[dict] | None) -> dict:
    """``kpis`` and ``vs_base`` of one scenario from its replication results (dicts of
    ``run_replication``), in replication order; ``base`` None for the base scenario itself."""
    kpis = {k: summarize(r.get(k) for r in results) for k in KPIS}
    kpis["bottleneck"] = bottleneck(r.get("bottleneck") for r in results)
    if base is None:
        return {"kpis": kpis, "vs_base": {}}
    vs_base = {k: paired([r.get(k) for r in results], [r.get(k) for r in base], d) for k, d in KPIS.items()}
    return {"kpis": kpis, "vs_base": vs_base, "tradeoff": tradeoff(results, base)}
