"""What an experiment shows: the terminal table, and under ``--out DIR`` the JSON document
(``experiment.json``), every replication (``replications.csv``) and a chart of each KPI's 95 %
intervals per scenario (``experiment.png``).

``--out`` is all or nothing: the files are written in a fresh directory beside DIR and that directory
is renamed to DIR only when all three are complete (an earlier output of ``experiment`` in DIR is
replaced the same way). A DIR holding anything else is refused before the experiment runs.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from twin.experiment.replication import TIME_ELEMENTS
from twin.experiment.stats import KPIS

OUT_FILES = ("experiment.json", "replications.csv", "experiment.png")
LABELS = {
    "throughput_per_h": "good / h", "oee": "OEE %", "availability": "availability %", "performance": "performance %",
    "quality": "quality %", "energy_kwh": "energy kWh", "kwh_per_good": "kWh / good",
    "co2e_kg_per_good": "kg CO2e / good", "scope2_location_co2e_kg": "Scope 2 loc. kg",
    "scope1_co2e_kg": "Scope 1 kg",
}
RATIOS = {"oee", "availability", "performance", "quality"}
DIGITS = {"throughput_per_h": 2, "energy_kwh": 1, "kwh_per_good": 3, "co2e_kg_per_good": 3,
          "scope2_location_co2e_kg": 1, "scope1_co2e_kg": 1}
CHARTED = [k for k in KPIS if k != "scope1_co2e_kg"]  # Scope 1 is in the table and JSON; the chart keeps 3 x 3
COUNTS = ("produced", "good", "scrap", "rework", "failures")


def _fmt(kpi: str, x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    if kpi in RATIOS:  # in per cent, their differences in percentage points
        return f"{x * 100:+.2f}" if signed else f"{x * 100:.2f}"
    digits = DIGITS.get(kpi, 3)
    return f"{x:+,.{digits}f}" if signed else f"{x:,.{digits}f}"


def _ci(kpi: str, low: float | None, high: float | None, signed: bool = False) -> str:
    if low is None or high is None:
        return "-"
    return f"[{_fmt(kpi, low, signed)}, {_fmt(kpi, high, signed)}]"


def print_table(doc: dict, console: Console) -> None:
    """One row per KPI and scenario: mean, 95 % interval, difference to the reference and verdict."""
    plan = doc["plan"]
    title = (f"{escape(plan['path'])}: {plan['replications']} replications of {plan['hours']:g} h after "
             f"{plan['warmup_hours']:g} h warm-up, seeds {plan['seed']}..{plan['seed'] + plan['replications'] - 1} "
             f"in every scenario; compared with {plan['reference']!r}")
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD,
                  caption="differences are paired (same seeds); of a % in percentage points", caption_justify="left")
    for col, just in (("KPI", "left"), ("scenario", "left"), ("mean", "right"), ("95 % interval", "right"),
                      ("vs " + plan["reference"], "right"), ("95 % interval", "right"), ("verdict", "left")):
        table.add_column(col, justify=just)
    for kpi in KPIS:
        for i, s in enumerate(doc["scenarios"]):
            k, d = s["kpis"][kpi], s["vs_base"].get(kpi)
            verdict = (d or {}).get("verdict") or ""
            style = {"better": "green", "worse": "red"}.get(verdict, "")
            table.add_row(LABELS[kpi] if i == 0 else "", s["name"], _fmt(kpi, k["mean"]),
                          _ci(kpi, k["ci95_low"], k["ci95_high"]),
                          _fmt(kpi, d["diff_mean"], True) if d else "", _ci(kpi, d["ci95_low"], d["ci95_high"], True) if d else "",
                          f"[{style}]{verdict}[/{style}]" if style else verdict,
                          end_section=i == len(doc["scenarios"]) - 1)
    for i, s in enumerate(doc["scenarios"]):
        b = s["kpis"]["bottleneck"]
        share = "" if b["share"] is None else f"in {b['share'] * 100:.0f} % of runs"
        table.add_row("bottleneck" if i == 0 else "", s["name"], b["station"] or "-", share, "", "", "")
    console.print(table)
    for s in doc["scenarios"]:
        if s.get("tradeoff"):
            console.print(tradeoff_line(s["name"], s["tradeoff"], plan["reference"], plan["hours"]), markup=False)
    seq = plan.get("sequential")
    if seq:
        met = "met" if seq["met"] else f"NOT met at the cap of {seq['max_replications']}"
        targets = ", ".join(f"{k} +-{v:g}" for k, v in seq["targets"].items())
        console.print(f"sequential: half-width targets {targets} {met}; replications per round {seq['rounds']}")


def tradeoff_line(name: str, t: dict, ref: str, hours: float) -> str:
    """``standby`` against ``base`` per 24 h: energy and CO2e saved, good units lost, with intervals
    (a negative saving is said as "uses ... more", a negative loss as "makes ... more")."""
    def part(key: str, unit: str, positive: str, negative: str) -> str:
        x = t[key]
        if x["mean"] is None:
            return f"{positive} - {unit}"
        sign = 1.0 if x["mean"] >= 0 else -1.0
        word = positive if sign > 0 else negative
        ci = "" if x["ci95_low"] is None else \
            f" [{min(sign * x['ci95_low'], sign * x['ci95_high']):,.1f}, {max(sign * x['ci95_low'], sign * x['ci95_high']):,.1f}]"
        more = "" if sign > 0 else " more"
        return f"{word} {sign * x['mean']:,.1f} {unit}{more}{ci}{'' if x['significant'] else ' (not significant)'}"

    return (f"{name} against {ref}, per {hours:g} h: {part('energy_saved_kwh', 'kWh', 'saves', 'uses')}, "
            f"{part('co2e_saved_kg', 'kg CO2e', 'saves', 'emits')}; {part('good_lost', 'good units', 'loses', 'makes')}")


def check_out(out: Path) -> None:
    """Before any work: ``out`` must be a new directory, an empty one or an earlier experiment's output."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: exists and is not a directory")
    parent = out.absolute().parent
    while not parent.exists():  # the directories --out would create
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"--out {out}: cannot create it in {parent} (not a writable directory)")
    if out.is_dir():
        other = sorted(p.name for p in out.iterdir() if p.name not in OUT_FILES)
        if other:
            raise ValueError(f"--out {out}: holds other files ({', '.join(other[:3])}{'...' if len(other) > 3 else ''}); "
                             f"give a new or empty directory")


def write_csv(results: dict[str, list[dict]], path: Path) -> None:
    """One row per replication: scenario, seed, the KPIs, counts, time elements and the bottleneck."""
    cols = ["scenario", "replication", "seed", "hours", "warmup_hours", *KPIS, *COUNTS, *TIME_ELEMENTS, "bottleneck"]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(cols)
        for name, rows in results.items():
            for i, r in enumerate(rows):
                flat = {**r, **(r.get("time") or {}), "scenario": name, "replication": i}
                w.writerow(["" if flat.get(c) is None else flat.get(c) for c in cols])


def write_chart(doc: dict, path: Path) -> None:
    """One panel per KPI: each scenario's mean and 95 % interval, the reference's interval shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scen = doc["scenarios"]
    names = [s["name"] for s in scen]
    ref = doc["plan"]["reference"]
    kpis = [k for k in CHARTED if any(s["kpis"][k]["mean"] is not None for s in scen)]
    cols = 3
    rows = math.ceil(len(kpis) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 0.5 * len(names) * rows + 1.3 * rows), squeeze=False)
    colours = {"better": "tab:green", "worse": "tab:red"}
    for ax, kpi in zip(axes.flat, kpis):
        scale = 100.0 if kpi in RATIOS else 1.0
        for y, s in enumerate(scen):
            k = s["kpis"][kpi]
            if k["mean"] is None:
                continue
            verdict = (s["vs_base"].get(kpi) or {}).get("verdict")
            colour = colours.get(verdict, "tab:blue" if s["name"] == ref else "0.35")
            lo, hi = k["ci95_low"], k["ci95_high"]
            err = None if lo is None else [[(k["mean"] - lo) * scale], [(hi - k["mean"]) * scale]]
            ax.errorbar([k["mean"] * scale], [y], xerr=err, fmt="o", color=colour, capsize=4, markersize=4)
            if s["name"] == ref and lo is not None:
                ax.axvspan(lo * scale, hi * scale, color="tab:blue", alpha=0.12, lw=0)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_ylim(-0.6, len(names) - 0.4)
        ax.invert_yaxis()
        ax.set_title(LABELS[kpi], fontsize=9)
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
    for ax in list(axes.flat)[len(kpis):]:
        ax.set_visible(False)
    plan = doc["plan"]
    fig.suptitle(f"Means and 95 % intervals, {plan['replications']} replications of {plan['hours']:g} h "
                 f"(green better, red worse than {ref}, paired)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_out(doc: dict, results: dict[str, list[dict]], out: Path) -> None:
    """Write the three files into ``out`` all at once: see the module's docstring."""
    out = Path(out)
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    old = None
    try:
        (tmp / "experiment.json").write_text(json.dumps(doc, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        write_csv(results, tmp / "replications.csv")
        write_chart(doc, tmp / "experiment.png")
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; the output is an ordinary directory
        if out.exists():
            old = out.with_name(f".{out.name}.{os.getpid()}.old")
            os.replace(out, old)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not out.exists():
            os.replace(old, out)  # put the earlier output back
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
