"""``factory-twin rollup``: the site's KPIs of a period from the lines' windows in the store (twin/rollup.py),
and the checks of ``run --lines`` (twin/runtime/lines.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from twin.cli_options import JsonOpt, StoreOpt, checked, fail, load, setup_logging
from twin.cli_support import check_store
from twin.store import Store, StoreError

_SHOWN = ("pot_s", "apt_s", "adet_s", "produced", "good", "scrap", "failures", "availability", "performance",
          "quality", "oee", "energy_kwh")


def rollup(
    date_from: str = typer.Option(..., "--from", help="Period start: a date or time in the site's time zone "
                                  "(2026-01-05, 2026-01-05T08:00) or RFC 3339 with an offset."),
    date_to: str = typer.Option(..., "--to", help="Period end, read as --from; windows wholly inside count."),
    store: Path = StoreOpt,
    config: Optional[Path] = typer.Option(None, "--config", help="Factory model: its time zone, and its lines "
                                          "(a line without windows is named as missing)."),
    site: Optional[str] = typer.Option(None, "--site", help="Site, when the store holds several."),
    json_out: bool = JsonOpt,
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging on stderr."),
) -> None:
    """Sum the lines' windows (from every `run --lines` process) into the site's KPIs of a period:
    time elements and counts summed, ratios recomputed, with which lines reported when."""
    from carbon.periods import parse_site_time
    from twin.emissions.report import period_zone
    from twin.rollup import rollup as make_rollup
    from twin.runtime.summary import dump_json

    setup_logging(verbose)
    if store.is_dir():
        fail(f"{store}: is a directory; expected an SQLite store file")
    if not store.is_file():
        fail(f"{store}: no such store; run `run --lines` or simulate with --store {store} first")
    checked(check_store, store)
    factory = load(config) if config else None
    try:
        tz = period_zone(store, factory, site, config) or "UTC"
        t0, t1 = parse_site_time(date_from, tz), parse_site_time(date_to, tz)
        if t1 <= t0:
            raise ValueError(f"--to {date_to} must be after --from {date_from}")
        name = site or (factory.site.name if factory is not None else None)
        with Store(store) as db:
            windows = db.line_windows(t0, t1, site=name)
        doc = make_rollup(windows, t0, t1, expected_lines=[ln.name for ln in factory.lines] if factory else None)
    except (ValueError, StoreError) as exc:
        fail(str(exc))
    if json_out:
        dump_json(doc)
        return
    _print(doc)


def run_partition(factory, lines: str | None, meters: bool | None, influx_spool: Path):
    """``run --lines``: (the partition or None, the InfluxDB spool); a bad option is one line, exit 2."""
    from twin.runtime.lines import partition

    if lines is None:
        if meters is not None:
            fail("--meters/--no-meters go with --lines")
        return None, influx_spool
    try:
        part = partition(factory, lines, meters)
    except ValueError as exc:
        fail(str(exc))
    if influx_spool == Path("influx-spool"):  # the default: processes never share a spool
        influx_spool = Path(f"influx-spool-{part.tag()}")
    return part, influx_spool


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.4f}" if abs(v) < 10 else f"{v:,.1f}"
    return f"{int(v):,}" if isinstance(v, (int, float)) else str(v)


def _print(doc: dict) -> None:
    from rich.table import Table

    from twin.runtime.summary import console

    table = Table(title=f"{doc['site']}: {doc['period']['from']} to {doc['period']['to']}")
    table.add_column("")
    for name in _SHOWN:
        table.add_column(name, justify="right")
    for ln, k in doc["lines"].items():
        table.add_row(ln, *(_fmt(k[n]) for n in _SHOWN))
    table.add_row("site", *(_fmt(doc["site_kpis"][n]) for n in _SHOWN), style="bold")
    out = console()
    out.print(table)
    cov = doc["coverage"]
    out.print(f"coverage: {'complete' if cov['complete'] else 'incomplete'}", highlight=False)
    if not cov["complete"]:
        for s in cov["spans"]:
            out.print(f"  {s['from']} to {s['to']}: {', '.join(s['lines']) or 'no line'}", highlight=False)
    for note in doc["notes"]:
        out.print(f"  {note}", highlight=False)
