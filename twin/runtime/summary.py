"""The KPI summary that ``simulate``, ``replay``, ``demo`` and ``run`` print: JSON and a rich table."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

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


def site_time(when: float | str | None, tz: str | None) -> str:
    """An instant as the site's wall clock with its UTC offset (``2026-01-05 08:00+08:00``): what
    an operator on the floor reads. JSON keeps UTC; only the text output is local."""
    if when is None:
        return "-"
    if isinstance(when, str):
        moment = datetime.fromisoformat(when.replace("Z", "+00:00"))
    else:
        moment = datetime.fromtimestamp(when, tz=timezone.utc)
    local = moment.astimezone(ZoneInfo(tz) if tz else timezone.utc)
    seconds = ":%S" if local.second else ""
    return local.strftime(f"%Y-%m-%d %H:%M{seconds}") + local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:]


_KPI_COLUMNS = ("produced", "good", "avail.", "perf.", "quality", "OEE", "MTBF h", "MTTR min", "kWh", "kWh/good",
                "kg CO2e")
_WINDOW_COLUMNS = ("produced", "good", "avail.", "perf.", "quality", "OEE", "kWh", "kg CO2e")


def kpi_table(title: str, items: list[KpiWindow], labels: list[str] | None = None) -> Table:
    """OEE and its factors, output, reliability, energy and CO2e: what an operator reads first.
    ``labels`` (one per item) adds a first column, the window each row belongs to, and keeps to the
    columns that fit beside it in 132 characters."""
    table = Table(title=title, title_justify="left", header_style="bold")
    columns = _KPI_COLUMNS if labels is None else _WINDOW_COLUMNS
    if labels is not None:
        table.add_column("window", justify="left", no_wrap=True)
    table.add_column("", justify="left", no_wrap=True)
    for col in columns:
        table.add_column(col, justify="right")
    for i, w in enumerate(items):
        cells = {
            "produced": f"{w.produced:.0f}", "good": f"{w.good:.0f}", "avail.": _pct(w.availability),
            "perf.": _pct(w.performance), "quality": _pct(w.quality), "OEE": _pct(w.oee),
            "MTBF h": _num(None if w.mtbf_s is None else w.mtbf_s / 3600, ".1f"),
            "MTTR min": _num(None if w.mttr_s is None else w.mttr_s / 60, ".1f"),
            "kWh": _num(w.energy_kwh), "kWh/good": _num(w.kwh_per_good, ".3f"), "kg CO2e": _num(w.co2e_kg),
        }
        table.add_row(*([labels[i]] if labels is not None else []), _name(w), *(cells[c] for c in columns))
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


def _window_labels(windows: list[KpiWindow], tz: str | None) -> tuple[str, list[str]]:
    """The offset of the first window (for the title) and each window's span on its first row only,
    so that the rows of one window read as a group; an offset other than the first is written out."""
    offset = site_time(windows[0].start, tz)[-6:]
    labels, previous = [], None
    for w in windows:
        span = (w.start, w.end)
        if span == previous:
            labels.append("")
        else:
            start, end = site_time(w.start, tz), site_time(w.end, tz)
            to = end[11:-6] if end[:10] == start[:10] else end[:-6]
            if w.end - w.start <= 86_400 and end[11:-6] == "00:00":
                to = "24:00"  # a window ending at the next midnight stays on its own day
            text = f"{start[:-6]}-{to}"
            labels.append(text if start[-6:] == offset else f"{text} ({start[-6:]})")
        previous = span
    return offset, labels


def print_tables(report, header: str, extra: list[str] | None = None, tz: str | None = None,
                 emissions: dict | None = None) -> None:
    """The whole span, then (when ``--window`` asked for them) every window, then the emissions
    totals; times in site time."""
    out = console()
    out.print(f"[bold]{header}[/bold]", highlight=False)
    everything = [*report.stations, *report.lines, report.site]
    out.print(kpi_table("KPIs", everything))
    out.print(loss_table("Time elements (ISO 22400-2)", everything))
    windows = list(getattr(report, "windows", None) or [])
    if windows:
        offset, labels = _window_labels(windows, tz)
        out.print(kpi_table(f"KPIs by window, site time ({tz or 'UTC'}, UTC{offset})", windows, labels))
    for w in everything:
        if w.flags:
            out.print(f"[yellow]flag[/yellow] {_name(w)}: {', '.join(w.flags)}", highlight=False)
    for line in [*emissions_lines(emissions), *(extra or [])]:
        out.print(line, highlight=False, markup=False, soft_wrap=True)


def _back(item: dict) -> KpiWindow:
    """A KpiWindow again from its JSON block, to draw the same table as ``simulate``."""
    fields = {k: v for k, v in item.items() if k in KpiWindow.__dataclass_fields__ and k not in ("start", "end")}
    return KpiWindow(start=None, end=None, **{"line": None, "station": None, **fields})


def emissions_lines(em: dict | None) -> list[str]:
    if not em:
        return []
    out = [f"emissions: Scope 1 {_num(em.get('scope1_co2e_kg'))} kg CO2e; Scope 2 location-based "
           f"{_num(em.get('scope2_location_co2e_kg'))} kg; {em.get('hours', 0)} clock hour(s) in the ledger"
           f"{' (' + ', '.join(em['origin']) + ')' if em.get('origin') else ''}; market-based: made by `report`"]
    for src in em.get("by_source", []):
        est = f", {src['estimated_hours']} h estimated" if src.get("estimated_hours") else ""
        out.append(f"  {src['source']} (Scope {src['scope']}, {src['method']}): {src['activity']:.1f} "
                   f"{src['activity_unit']}, {_num(src['co2e_kg'])} kg CO2e [{src['factor_id']}]{est}")
    for m in em.get("meters", []):
        if m.get("resets") or m.get("rollovers") or m.get("rejected"):
            rej = ", ".join(f"{n} {k}" for k, n in sorted(m.get("rejected", {}).items()))
            out.append(f"  meter {m['meter']}: {m['readings_used']} readings, {m['resets']} reset(s), "
                       f"{m['rollovers']} rollover(s){'; rejected ' + rej if rej else ''}")
    return out


def ground_truth_table(block: dict) -> Table:
    """The model's own log against what reached the twin over the wire, station by station."""
    table = Table(title="Ground truth (model) against the twin (over the wire)", title_justify="left",
                  header_style="bold")
    table.add_column("", no_wrap=True)
    for col in ("APT h truth", "twin", "good truth", "twin", "OEE truth", "twin", "kWh truth", "twin"):
        table.add_column(col, justify="right")
    for st in block.get("stations", []):
        cells = []
        for key, fmt in (("apt_s", lambda x: _num(None if x is None else x / 3600, ".2f")),
                         ("good", lambda x: _num(x, ".0f")), ("oee", _pct), ("energy_kwh", _num)):
            pair = st.get(key) or {}
            cells += [fmt(pair.get("truth")), fmt(pair.get("twin"))]
        table.add_row(f"{st['line']}/{st['station']}", *cells)
    return table


def print_live(doc: dict, tz: str | None = None) -> None:
    """The text summary of ``demo`` and ``run``: the blocks of ``--json`` as tables and lines."""
    out = console()
    items = [_back(x) for x in [*doc["stations"], *doc["lines"], doc["site"]]]
    out.print(kpi_table(f"{doc['command']}: {site_time(doc['start'], tz)} to {site_time(doc['end'], tz)}", items))
    for line in emissions_lines(doc.get("emissions")):
        out.print(line, highlight=False, markup=False, soft_wrap=True)  # factor ids: [brackets], long
    if doc.get("ground_truth"):
        out.print(ground_truth_table(doc["ground_truth"]))
    for line in run_health_lines(doc):
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    f = doc.get("forecast")
    if f:
        oee = "-" if f.get("oee") is None else f"{100 * f['oee']:.1f} %"
        out.print(f"forecast for the end of shift {f['shift']} ({site_time(f['shift_end'], tz)}): "
                  f"{f['expected_good']:.0f} good, OEE {oee}, {f.get('energy_kwh') or 0:.0f} kWh", highlight=False)


def reasons_in_words(by_reason: dict) -> str:
    """``{'nan': 5, 'bad_json': 2}`` as words an operator reads: "nan 5, bad json 2"."""
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in sorted(by_reason.items(), key=lambda kv: -kv[1]))


def run_health_lines(doc: dict) -> list[str]:
    """What a live run lost or suffered, in the text summary as in ``--json``: samples rejected by
    reason, messages lost per source (``seq``), the demo's slowed clock, errors by component, the
    event loop's lag, and each sink's counts."""
    s = doc["samples"]
    lines = [f"samples: {s['received']} received, {s['used']} used, {s['rejected']} rejected"
             + (f" ({reasons_in_words(s['rejected_by_reason'])})" if s.get("rejected_by_reason") else "")]
    from twin.runtime.diagnostics import source_lines

    lines += source_lines(doc.get("sources") or {})
    for name, st in (s.get("sources") or {}).items():
        if st.get("lost"):
            lines.append(f"  {name}: {st['lost']} messages lost (gaps in seq), {st.get('seq_resets', 0)} publisher restarts")
    bp = (doc.get("demo") or {}).get("backpressure") or {}
    if bp.get("slowed_s"):
        lines.append(f"demo: the simulated clock waited {bp['slowed_s']:.1f} s for the twin ({bp.get('slowdowns', 0)} "
                     f"times; speed reached {bp.get('speed_reached', 0):g}x): nothing was dropped")
    for component, err in (doc.get("errors") or {}).items():
        lines.append(f"errors: {component}: {err.get('count', 0)}, last: {err.get('last', '')}")
    lag = doc.get("loop_lag_s")
    if lag:
        lines.append(f"event loop lag: p50 {lag.get('p50', 0):.3f} s, p99 {lag.get('p99', 0):.3f} s, "
                     f"max {lag.get('max', 0):.3f} s")
    for name, block in (doc.get("sinks") or {}).items():
        figures = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in block.items()
                            if isinstance(v, (int, float)) and not isinstance(v, bool))
        if figures:
            lines.append(f"sink {name}: {figures}")
    return lines
