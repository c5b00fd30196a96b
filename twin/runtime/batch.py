"""``simulate``, ``replay`` and ``check``: the batch commands' documents (a run from start to end,
no live sources), written to the same sinks as a live run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.table import Table

from factory_models import Factory
from factory_models.records import iso_utc
from twin.emissions.account import account_log, carbon_setup
from twin.kpi import compute_kpis
from twin.kpi.windows import parse_window_s, window_edges
from twin.model import simulate
from twin.runtime.sinks import Sinks, write_sinks
from twin.runtime.summary import console as make_console
from twin.runtime.summary import kpi_json, reasons_in_words
from twin.shadow.replay import read_samples_csv


def _edges(factory: Factory, t0: float, t1: float, window: str | None):
    if window is None:
        return None
    return window_edges(t0, t1, parse_window_s(window), factory.calendar.timezone)


def _kpis_and_emissions(factory: Factory, config: Path, frozen, window: str | None, carbon_file: Path | None,
                        origin: str):
    edges = _edges(factory, frozen.t_start, frozen.t_end, window)
    report = compute_kpis(frozen, factory, edges)
    cfg, registry = carbon_setup(factory, config, carbon_file)
    em = account_log(factory, frozen, report, cfg, registry, origin=origin)
    return report, em


def emissions_json(em) -> dict:
    """The ``emissions`` block of every run summary: sums of the ledger records the run wrote."""
    return {**em.summary, "grid_factor": em.config.grid_factor, "gwp_set": em.config.gwp_set,
            "scope1_method": em.config.scope1_method, "registry_version": em.registry.version,
            "meters": em.meters, "notes": [*em.notes, MARKET_NOTE]}


#: why no run prints a market-based figure (issue 11: certificates are claimed once, by ``report``)
MARKET_NOTE = "market-based Scope 2: made by `report`, which claims the contractual instruments once per period"


def simulate_summary(factory: Factory, config: Path, *, hours: float, seed: int, window: str | None,
                     carbon_file: Path | None = None, sinks: Sinks = Sinks(store=None)):
    """Run the SimPy twin for ``hours`` and summarise it; same seed, same document."""
    warmup_s = factory.simulation.warmup_s
    log = simulate(factory, hours + warmup_s / 3600.0, seed=seed)
    frozen = log.freeze()
    # the warm-up fills the buffers; its time and output are not part of the result
    frozen.t_start += warmup_s
    report, em = _kpis_and_emissions(factory, config, frozen, window, carbon_file, "simulated")
    doc: dict[str, Any] = {
        "command": "simulate",
        "config": str(config),
        "seed": seed,
        "hours": hours,
        "warmup_s": warmup_s,
        "start": iso_utc(frozen.t_start),
        "end": iso_utc(frozen.t_end),
        **kpi_json(report, with_windows=window is not None),
        "emissions": emissions_json(em),
        "events": {"states": len(frozen.states.t), "counters": len(frozen.counters.t),
                   "power": len(frozen.power.t), "products": len(frozen.products_stream.t)},
        "diagnostics": report.diagnostics,
        "sinks": write_sinks(factory, sinks, report, em, frozen),
    }
    return doc, report


def replay_summary(factory: Factory, config: Path, samples: Path, *, window: str | None,
                   carbon_file: Path | None = None, sinks: Sinks = Sinks(store=None)):
    """KPIs from a recorded samples CSV, through the same router and KPI core as the live twin."""
    data = read_samples_csv(samples, factory)
    if data.router.used == 0:
        rejected = reasons_in_words(data.summary()["rejected_by_reason"]) or "none rejected"
        raise ValueError(f"{samples}: no usable samples ({rejected}; {data.bad_rows} bad rows)")
    frozen = data.log.freeze()
    report, em = _kpis_and_emissions(factory, config, frozen, window, carbon_file, "measured")
    doc: dict[str, Any] = {
        "command": "replay",
        "config": str(config),
        "samples_file": str(samples),
        "start": iso_utc(frozen.t_start),
        "end": iso_utc(frozen.t_end),
        **kpi_json(report, with_windows=window is not None),
        "emissions": emissions_json(em),
        "samples": data.summary(),
        "diagnostics": report.diagnostics,
        "sinks": write_sinks(factory, sinks, report, em, frozen),
    }
    return doc, report


def text_footer(doc: dict) -> list[str]:
    lines = []
    s = doc.get("samples")
    if s:
        why = f" ({reasons_in_words(s['rejected_by_reason'])})" if s.get("rejected_by_reason") else ""
        lines.append(f"samples: {s['received']} received, {s['used']} used, {s['rejected']} rejected{why}; "
                     f"{s.get('bad_rows', 0)} bad CSV rows")
        for err in s.get("errors", [])[:10]:
            lines.append(f"  line {err['line']}: {err['reason']}")
    return lines


def describe(factory: Factory, config: Path) -> dict:
    """What a factory model declares, for ``check``."""
    return {
        "config": str(config),
        "valid": True,
        "site": factory.site.model_dump(mode="json"),
        "products": [p.model_dump(mode="json") for p in factory.products],
        "calendar": factory.calendar.model_dump(mode="json"),
        "lines": [
            {
                "line": ln.name,
                "output_station": ln.output,
                "stations": [
                    {
                        "station": st.name,
                        "kind": st.kind,
                        "machines": st.machines,
                        "cycle_time_s": st.cycle_time_s,
                        "setup_s": st.setup_s,
                        "scrap_rate": st.scrap_rate,
                        "rework": st.rework.model_dump() if st.rework else None,
                        "failures": [f.name for f in st.failures],
                        "buffer_after": st.buffer_after,
                        "power_kw": st.power_kw.model_dump(),
                    }
                    for st in ln.stations
                ],
            }
            for ln in factory.lines
        ],
        "meters": [m.model_dump(mode="json") for m in factory.meters],
        "signals": len(factory.unit_names()),
    }


def print_description(doc: dict) -> None:
    console = make_console()
    site = doc["site"]
    console.print(f"[bold green]valid[/bold green] {doc['config']}: site [bold]{site['name']}[/bold] "
                  f"({site['country']}{', grid ' + site['grid_region'] if site.get('grid_region') else ''})")
    cal = doc["calendar"]
    shifts = ", ".join(f"{s['name']} {s['start'][:5]}-{s['end'][:5]}" for s in cal["shifts"]) or "around the clock"
    console.print(f"calendar ({cal['timezone']}): {shifts}; workdays {' '.join(cal['workdays'])}")
    console.print("products: " + ", ".join(p["name"] for p in doc["products"]))
    for ln in doc["lines"]:
        table = Table(title=f"line {ln['line']} (output: {ln['output_station']})", title_justify="left")
        for col in ("station", "kind", "machines", "ideal cycle s", "setup s", "scrap", "rework", "failures",
                    "buffer", "kW producing/idle/down"):
            table.add_column(col)
        for st in ln["stations"]:
            p = st["power_kw"]
            table.add_row(
                st["station"], st["kind"], str(st["machines"]),
                ", ".join(f"{k} {v:g}" for k, v in st["cycle_time_s"].items()), f"{st['setup_s']:g}",
                f"{st['scrap_rate']:.2%}", f"{st['rework']['rate']:.1%} to {st['rework']['to']}" if st["rework"] else "-",
                ", ".join(st["failures"]) or "-", str(st["buffer_after"]),
                f"{p['producing']:g}/{p['idle']:g}/{p['down']:g}",
            )
        console.print(table)
    for m in doc["meters"]:
        console.print(f"meter {m['name']}: {m['kind']}")
