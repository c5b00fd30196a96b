"""``factory-twin rollup``: the site's KPIs over a period, summed from the lines' windows in the store.

Processes that each own some lines (``run --lines``, docs/deployment.md) write their lines' windows
into one store and no site rows; this module makes the site of them the way the KPI core makes a
site of its lines (twin/kpi/compute.py): time elements, counts, failures, repair time, ideal time
and energy are summed, and every ratio is computed again from the sums, never averaged.

- The windows of a line taken are the shortest ones first, then any longer one that overlaps none
  taken: a live run writes one-minute windows and, at its end, one window over the whole run; the
  minutes are summed and the whole-run row, which counts the same time again, is left out (counted
  in ``coverage.overlapping_skipped``). Only windows lying wholly within [from, to] count.
- Ideal time is not stored; a window's is its performance x APT (exact to rounding). A window with
  parts across a connection gap left some PRODUCING time out of its performance that the store does
  not hold: the site's performance then carries the flag ``produced_in_gap`` (approximate).
- Repair time = MTTR x failures; MTBF = (APT + ASUT) / failures, MTTR = repair time / failures.
- Energy is the sum of the lines' (station meters); a line window without energy makes the sum
  partial (flag ``energy_partial``). Site meters are in the emissions ledger (``report``).
- ``coverage`` says which lines reported for which spans: the period cut at every window edge,
  consecutive pieces with the same lines merged, so a process that was down shows as a span
  without its lines, and ``complete`` is true only when every line covered the whole period.
"""

from __future__ import annotations

import bisect
import math
from collections import defaultdict

from factory_models.records import KpiWindow, iso_utc

TIME = ("pot_s", "pbt_s", "apt_s", "asut_s", "adet_s", "adot_s", "unknown_s")
COUNTS = ("produced", "good", "scrap", "rework", "produced_in_gap")


def pick_windows(windows: list[KpiWindow]) -> tuple[list[KpiWindow], int]:
    """One line's windows that do not overlap, shortest first; (taken in time order, skipped)."""
    taken: list[tuple[float, float]] = []  # sorted, disjoint
    out, skipped = [], 0
    for w in sorted(windows, key=lambda w: (w.end - w.start, w.start)):
        i = bisect.bisect_left(taken, (w.start, w.end))
        before = taken[i - 1] if i > 0 else None
        after = taken[i] if i < len(taken) else None
        if (before is not None and before[1] > w.start) or (after is not None and after[0] < w.end):
            skipped += 1
            continue
        taken.insert(i, (w.start, w.end))
        out.append(w)
    return sorted(out, key=lambda w: w.start), skipped


def sum_windows(windows: list[KpiWindow]) -> dict:
    """Totals of windows (time elements, counts, failures, repair and ideal time, energy, CO2e) and
    every ratio recomputed from them; the KPI fields of ``KpiWindow`` plus ``windows`` and ``flags``."""
    t = {name: math.fsum(getattr(w, name) for w in windows) for name in (*TIME, *COUNTS)}
    failures = sum(int(w.failures) for w in windows)
    repair_s = math.fsum((w.mttr_s or 0.0) * w.failures for w in windows)
    ideal_s = math.fsum(w.performance * w.apt_s for w in windows if w.performance is not None)
    energy = [w.energy_kwh for w in windows]
    co2e = [w.co2e_kg for w in windows]
    flags = set()
    if any(w.produced_in_gap > 0 for w in windows):
        flags.add("produced_in_gap")
    if any(e is None for e in energy) and any(e is not None for e in energy):
        flags.add("energy_partial")
    energy_kwh = math.fsum(e for e in energy if e is not None) if any(e is not None for e in energy) else None
    co2e_kg = math.fsum(c for c in co2e if c is not None) if any(c is not None for c in co2e) else None

    def ratio(num: float, den: float) -> float | None:
        return num / den if den > 0 else None

    apt, pbt, aupt = t["apt_s"], t["pbt_s"], t["apt_s"] + t["asut_s"]
    availability = ratio(apt, pbt)
    performance = ratio(ideal_s, apt) if t["produced"] - t["produced_in_gap"] > 0 else None
    quality = ratio(t["good"], t["produced"])
    both = availability is not None and performance is not None and quality is not None
    out = {**t, "failures": failures, "repair_s": repair_s, "ideal_s": ideal_s,
           "availability": availability, "performance": performance, "quality": quality,
           "oee": availability * performance * quality if both else None,
           "nee": aupt / pbt * performance * quality if both and pbt > 0 else None,
           "mtbf_s": aupt / failures if failures else None,
           "mttr_s": repair_s / failures if failures else None,
           "energy_kwh": energy_kwh,
           "kwh_per_good": energy_kwh / t["good"] if energy_kwh is not None and t["good"] > 0 else None,
           "co2e_kg": co2e_kg, "windows": len(windows), "flags": sorted(flags)}
    return out


def coverage(by_line: dict[str, list[KpiWindow]], t0: float, t1: float) -> dict:
    """Which lines reported for which spans of [t0, t1] (merged), and whether every line covered it all."""
    edges = sorted({t0, t1, *(x for ws in by_line.values() for w in ws for x in (w.start, w.end))})
    spans: list[dict] = []
    intervals = {ln: [(w.start, w.end) for w in ws] for ln, ws in by_line.items()}
    starts = {ln: [a for a, _ in iv] for ln, iv in intervals.items()}

    def covers(ln: str, a: float, b: float) -> bool:
        i = bisect.bisect_right(starts[ln], a) - 1
        return i >= 0 and intervals[ln][i][1] >= b

    for a, b in zip(edges, edges[1:]):
        lines = sorted(ln for ln in by_line if covers(ln, a, b))
        if spans and spans[-1]["lines"] == lines and spans[-1]["_to"] == a:
            spans[-1]["_to"] = b
        else:
            spans.append({"_from": a, "_to": b, "lines": lines})
    every = sorted(by_line)
    complete = bool(every) and all(s["lines"] == every for s in spans)
    return {"lines": every, "complete": complete,
            "spans": [{"from": iso_utc(s["_from"]), "to": iso_utc(s["_to"]), "seconds": s["_to"] - s["_from"],
                       "lines": s["lines"]} for s in spans]}


def rollup(windows: list[KpiWindow], t0: float, t1: float, *, expected_lines: list[str] | None = None) -> dict:
    """The ``rollup --json`` document of one site's line windows in [t0, t1] (``Store.line_windows``).
    ``expected_lines`` (from ``--config``): lines with no window at all are named as missing."""
    sites = sorted({w.site for w in windows})
    if len(sites) > 1:
        raise ValueError(f"the store holds several sites ({', '.join(sites)}); say which with --site")
    grouped: dict[str, list[KpiWindow]] = defaultdict(list)
    for w in windows:
        grouped[w.line].append(w)
    by_line, skipped = {}, {}
    for ln, ws in grouped.items():
        by_line[ln], n = pick_windows(ws)
        if n:
            skipped[ln] = n
    taken = [w for ws in by_line.values() for w in ws]
    cov = coverage(by_line, t0, t1)
    cov["overlapping_skipped"] = dict(sorted(skipped.items()))
    missing = sorted(set(expected_lines or ()) - set(by_line))
    cov["missing_lines"] = missing
    if missing:
        cov["complete"] = False
    notes = []
    if not taken:
        notes.append("no line windows lie within the period")
    if missing:
        notes.append(f"no windows of line(s) {', '.join(missing)} in the period: the site figures leave them out")
    return {"site": sites[0] if sites else None, "period": {"from": iso_utc(t0), "to": iso_utc(t1)},
            "site_kpis": sum_windows(taken),
            "lines": {ln: sum_windows(ws) for ln, ws in sorted(by_line.items())},
            "coverage": cov, "notes": notes}
