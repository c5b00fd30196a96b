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


def _name(w: KpiWindow) -> str:
    return "/".join(p for p in (w.line, w.station) if p) or f"site {w.site}"


def kpi_table(title: str, items: list[KpiWindow]) -> Table:
    """OEE and its factors, output, reliability, energy and CO2e: what an operator reads first."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in ("", "produced", "good", "avail.", "perf.", "quality", "OEE", "MTBF h", "MTTR min",
                "kWh", "kWh/good", "kg CO2e"):
        table.add_column(col, justify="left" if not col else "right")
    for w in items:
        table.add_row(
            _name(w), f"{w.produced:.0f}", f"{w.good:.0f}", _pct(w.availability), _pct(w.performance),
            _pct(w.quality), _pct(w.oee),
            _num(None if w.mtbf_s is None else w.mtbf_s / 3600, ".1f"),
            _num(None if w.mttr_s is None else w.mttr_s / 60, ".1f"),
            _num(w.energy_kwh), _num(w.kwh_per_good, ".3f"), _num(w.co2e_kg),
        )
    return table


def loss_table(title: str, items: list[KpiWindow]) -> Table:
    """Where the time went, in ISO 22400-2 time elements (hours)."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for col in ("", "POT h", "PBT h", "APT h", "setup h", "delay h", "idle h", "unknown h", "failures"):
        table.add_column(col, justify="left" if not col else "right")
    for w in items:
        table.add_row(_name(w), _hours(w.pot_s), _hours(w.pbt_s), _hours(w.apt_s), _hours(w.asut_s),
                      _hours(w.adet_s), _hours(w.adot_s), _hours(w.unknown_s), str(w.failures))
    return table


def console() -> Console:
    """stdout, as wide as the terminal, or 132 columns when it is a pipe or a file."""
    return Console(width=None if sys.stdout.isatty() else 132)


def print_tables(report, header: str, extra: list[str] | None = None) -> None:
    out = console()
    out.print(f"[bold]{header}[/bold]")
    everything = [*report.stations, *report.lines, report.site]
    out.print(kpi_table("KPIs", everything))
    out.print(loss_table("Time elements (ISO 22400-2)", everything))
    for w in everything:
        if w.flags:
            out.print(f"[yellow]flag[/yellow] {_name(w)}: {', '.join(w.flags)}")
    for line in extra or []:
        out.print(line)
