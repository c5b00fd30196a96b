"""The KPI summary that ``simulate``, ``replay``, ``demo`` and ``run`` print: JSON and a rich table."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console
from rich.table import Table

from factory_models import KpiWindow


def kpi_json(report, *, with_windows: bool) -> dict[str, Any]:
    """The ``stations``, ``lines``, ``site`` and (with windows) ``windows`` blocks of the contract."""
    out: dict[str, Any] = {
        "stations": [w.to_json() for w in report.stations],
        "lines": [w.to_json() for w in report.lines],
        "site": report.site.to_json(),
    }
    if with_windows:
        out["windows"] = [w.to_json() for w in report.windows]
    return out


def dump_json(doc: dict, stream=None) -> None:
    stream = stream or sys.stdout
    json.dump(doc, stream, indent=2, sort_keys=False, allow_nan=False)
    stream.write("\n")
    stream.flush()


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def _num(x: float | None, fmt: str = ".1f") -> str:
    return "-" if x is None else format(x, fmt)


def _hours(x: float) -> str:
    return f"{x / 3600:.2f}"


def kpi_table(title: str, items: list[KpiWindow]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for col, justify in (
        ("station", "left"), ("PBT h", "right"), ("APT h", "right"), ("setup h", "right"),
        ("delay h", "right"), ("idle h", "right"), ("produced", "right"), ("good", "right"),
        ("avail.", "right"), ("perf.", "right"), ("quality", "right"), ("OEE", "right"),
        ("MTBF h", "right"), ("MTTR min", "right"), ("kWh", "right"), ("kWh/good", "right"),
        ("kg CO2e", "right"),
    ):
        table.add_column(col, justify=justify)
    for w in items:
        name = "/".join(p for p in (w.line, w.station) if p) or w.site
        table.add_row(
            name, _hours(w.pbt_s), _hours(w.apt_s), _hours(w.asut_s), _hours(w.adet_s), _hours(w.adot_s),
            f"{w.produced:.0f}", f"{w.good:.0f}", _pct(w.availability), _pct(w.performance),
            _pct(w.quality), _pct(w.oee),
            _num(None if w.mtbf_s is None else w.mtbf_s / 3600, ".1f"),
            _num(None if w.mttr_s is None else w.mttr_s / 60, ".1f"),
            _num(w.energy_kwh), _num(w.kwh_per_good, ".3f"), _num(w.co2e_kg),
        )
    return table


def print_tables(report, header: str, extra: list[str] | None = None) -> None:
    console = Console()
    console.print(f"[bold]{header}[/bold]")
    console.print(kpi_table("Stations", report.stations))
    console.print(kpi_table("Lines and site", [*report.lines, report.site]))
    flagged = [w for w in [*report.stations, *report.lines, report.site] if w.flags]
    for w in flagged:
        console.print(f"[yellow]flag[/yellow] {w.line or ''}/{w.station or ''}: {', '.join(w.flags)}")
    for line in extra or []:
        console.print(line)
