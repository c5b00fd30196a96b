"""``factory-twin``: the command line. Machine-readable output on stdout with ``--json``; logs on stderr."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Optional

import typer

from factory_models import ConfigError, load_factory

from . import runtime
from .summary import dump_json, print_tables

app = typer.Typer(
    name="factory-twin",
    help="Digital twin of a shop floor: ISO 22400 KPIs, energy and CO2, from a SimPy model or live data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout instead of tables.")
WindowOpt = typer.Option(None, "--window", "-w", help="Also report aligned windows of this length: 15m, 1h, 8h, 1d.")
VerboseOpt = typer.Option(False, "--verbose", "-v", help="Debug logging on stderr.")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"factory-twin: {message}", err=True)
    raise typer.Exit(code)


def _load(config: Path):
    try:
        return load_factory(config)
    except ConfigError as exc:
        _fail(str(exc))


@app.command()
def simulate(
    config: Path = typer.Argument(..., help="Factory model (YAML), e.g. configs/demo_smt.yaml."),
    hours: float = typer.Option(24.0, "--hours", "-H", min=0.001, help="Simulated hours from simulation.start."),
    seed: int = typer.Option(0, "--seed", "-s", help="Random seed: the same seed gives the same result."),
    window: Optional[str] = WindowOpt,
    json_out: bool = JsonOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Run the SimPy twin faster than real time and report KPIs, energy and emissions."""
    _setup_logging(verbose)
    factory = _load(config)
    try:
        doc, report = runtime.simulate_summary(factory, config, hours=hours, seed=seed, window=window)
    except ValueError as exc:
        _fail(str(exc))
    if json_out:
        dump_json(doc)
    else:
        print_tables(report, f"{factory.site.name}: {hours:g} h simulated from {doc['start']} (seed {seed})",
                     runtime.text_footer(doc))


@app.command()
def replay(
    config: Path = typer.Argument(..., help="Factory model (YAML) the samples belong to."),
    samples: Path = typer.Argument(..., help="CSV with a header ts,signal,value[,quality]."),
    window: Optional[str] = WindowOpt,
    json_out: bool = JsonOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Recompute KPIs, energy and emissions from recorded samples, with the live twin's KPI core."""
    _setup_logging(verbose)
    factory = _load(config)
    if not samples.is_file():
        _fail(f"{samples}: no such file")
    try:
        doc, report = runtime.replay_summary(factory, config, samples, window=window)
    except ValueError as exc:
        _fail(str(exc))
    if json_out:
        dump_json(doc)
    else:
        print_tables(report, f"{factory.site.name}: replay of {samples} ({doc['start']} to {doc['end']})",
                     runtime.text_footer(doc))


@app.command()
def check(
    config: Path = typer.Argument(..., help="Factory model (YAML) to validate."),
    json_out: bool = JsonOpt,
) -> None:
    """Validate a factory model and print what it describes."""
    factory = _load(config)
    doc = runtime.describe(factory, config)
    if json_out:
        dump_json(doc)
    else:
        runtime.print_description(doc)


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
