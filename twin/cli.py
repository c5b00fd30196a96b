"""``factory-twin``: the command line. Machine-readable output on stdout with ``--json``; logs on stderr."""

from __future__ import annotations

from importlib.metadata import version as dist_version
from pathlib import Path
from typing import Optional

import typer

from factory_models import ConfigError

from twin import runtime
from twin.runtime.summary import dump_json, print_live, print_tables, site_time
from twin.cli_support import Command, Group, check_output, check_store, check_yaml
from twin.cli_browse import browse
from twin.cli_experiment import experiment
from twin.cli_pact import pact_api
from twin.store import StoreError
from twin.cli_options import (
    CarbonOpt, DashboardAllowedHostOpt, DashboardHostOpt, DashboardOpt, DashboardPortOpt, DashboardTokenFileOpt,
    InfluxBucketOpt, InfluxOrgOpt, InfluxSpoolOpt, InfluxUrlOpt, JsonOpt, LinesOpt, MetersOpt, NoStoreOpt, StoreOpt,
    VerboseOpt, WindowOpt, checked, fail, load, setup_logging, sink_options,
)
from twin.cli_rollup import rollup, run_partition


app = typer.Typer(
    name="factory-twin",
    cls=Group,
    help="Digital twin of a shop floor: ISO 22400 KPIs, energy and CO2, from a SimPy model or live data.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"factory-twin {dist_version('factory-twin')}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    pass

@app.command(cls=Command)
def simulate(
    config: Path = typer.Argument(..., help="Factory model (YAML), e.g. configs/demo_smt.yaml."),
    hours: float = typer.Option(24.0, "--hours", "-H", min=0.001, help="Simulated hours from simulation.start."),
    seed: int = typer.Option(0, "--seed", "-s", help="Random seed: the same seed gives the same result."),
    window: Optional[str] = WindowOpt,
    carbon_file: Optional[Path] = CarbonOpt,
    store: Path = StoreOpt,
    no_store: bool = NoStoreOpt,
    influx_url: Optional[str] = InfluxUrlOpt,
    influx_org: str = InfluxOrgOpt,
    influx_bucket: Optional[str] = InfluxBucketOpt,
    influx_spool: Path = InfluxSpoolOpt,
    json_out: bool = JsonOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Run the SimPy twin faster than real time and report KPIs, energy and emissions."""
    setup_logging(verbose)
    factory = load(config)
    checked(check_yaml, carbon_file)
    try:
        doc, report = runtime.simulate_summary(
            factory, config, hours=hours, seed=seed, window=window, carbon_file=carbon_file,
            sinks=sink_options(store, no_store, influx_url, influx_org, influx_bucket, influx_spool))
    except (ValueError, StoreError) as exc:
        fail(str(exc))
    if json_out:
        dump_json(doc)
    else:
        tz = factory.calendar.timezone
        print_tables(report, f"{factory.site.name}: {hours:g} h simulated from {site_time(doc['start'], tz)} "
                             f"(seed {seed})", runtime.text_footer(doc), tz=tz,
                     emissions=doc["emissions"])


@app.command(cls=Command)
def replay(
    config: Path = typer.Argument(..., help="Factory model (YAML) the samples belong to."),
    samples: Path = typer.Argument(..., help="CSV with a header ts,signal,value[,quality]."),
    window: Optional[str] = WindowOpt,
    carbon_file: Optional[Path] = CarbonOpt,
    store: Path = StoreOpt,
    no_store: bool = NoStoreOpt,
    influx_url: Optional[str] = InfluxUrlOpt,
    influx_org: str = InfluxOrgOpt,
    influx_bucket: Optional[str] = InfluxBucketOpt,
    influx_spool: Path = InfluxSpoolOpt,
    json_out: bool = JsonOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Recompute KPIs, energy and emissions from recorded samples, with the live twin's KPI core."""
    setup_logging(verbose)
    factory = load(config)
    if samples.is_dir():
        fail(f"{samples}: is a directory; expected a CSV file")
    if not samples.is_file():
        fail(f"{samples}: no such file")
    checked(check_yaml, carbon_file)
    try:
        doc, report = runtime.replay_summary(
            factory, config, samples, window=window, carbon_file=carbon_file,
            sinks=sink_options(store, no_store, influx_url, influx_org, influx_bucket, influx_spool))
    except (ValueError, StoreError) as exc:
        fail(str(exc))
    if json_out:
        dump_json(doc)
    else:
        tz = factory.calendar.timezone
        print_tables(report, f"{factory.site.name}: replay of {samples} "
                             f"({site_time(doc['start'], tz)} to {site_time(doc['end'], tz)})",
                     runtime.text_footer(doc), tz=tz,
                     emissions=doc["emissions"])


@app.command(cls=Command)
def report(
    date_from: str = typer.Option(..., "--from", help="Period start: a date or time in the site's time zone "
                                  "(2026-01-05, 2026-01-05T08:00) or RFC 3339 with an offset."),
    date_to: str = typer.Option(..., "--to", help="Period end (exclusive), read as --from."),
    fmt: str = typer.Option(..., "--format", "-f", help="csv, xlsx, json, pdf, pact (PACT v3 footprints) or cbam (CBAM report contents)."),
    out: Path = typer.Option(..., "--out", "-o", help="File to write."),
    store: Path = StoreOpt,
    config: Optional[Path] = typer.Option(None, "--config", help="Factory model: product masses (CBAM table) and carbon settings."),
    carbon_file: Optional[Path] = CarbonOpt,
    site: Optional[str] = typer.Option(None, "--site", help="Site, when the store holds several."),
    origin: str = typer.Option("measured", "--origin", help="measured (replay, run) or simulated (simulate, demo); never mixed."),
    json_out: bool = JsonOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Write the emissions report of a period from the embedded store (inventory, products, CBAM)."""
    setup_logging(verbose)
    from twin.emissions import report as reporting
    from twin.emissions.account import carbon_setup

    if origin not in reporting.ORIGINS:
        fail(f"--origin {origin!r}: expected measured or simulated")
    if store.is_dir():
        fail(f"{store}: is a directory; expected an SQLite store file")
    if not store.is_file():
        fail(f"{store}: no such store; run simulate, replay or demo with --store {store} first")
    checked(check_store, store)
    checked(check_yaml, carbon_file)
    checked(check_output, out)
    factory = load(config) if config else None
    try:
        tz = reporting.period_zone(store, factory, site, config)  # None: an old store, read in UTC with a note
        t0, t1 = reporting.parse_period(date_from, date_to, tz or "UTC")
    except (ValueError, StoreError) as exc:
        fail(str(exc))
    try:
        if factory is not None:
            cfg, registry = carbon_setup(factory, config, carbon_file)
        else:
            import carbon as _carbon

            cfg, registry = _carbon.load_carbon_config(carbon_file) if carbon_file else (None, _carbon.Registry.default())
        inv = reporting.write_period_report(store, t0, t1, fmt, out, factory=factory, carbon_cfg=cfg,
                                            registry=registry, site=site, origin=origin, tz=tz)
    except ConfigError as exc:
        fail(str(exc))
    except (ValueError, StoreError) as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{out}: cannot write the report: {exc.strerror or exc}")
    summary = {"out": str(out), "format": fmt, "inputs_sha256": inv.get("inputs_sha256"),
               "origin": inv.get("origin"), "period": inv.get("period"), "totals": inv.get("totals"),
               "coverage": {k: v for k, v in (inv.get("coverage") or {}).items() if k != "meters"},
               "disclosures": inv.get("disclosures", []), "notes": inv.get("notes", [])}
    if json_out:
        dump_json(summary)
    else:
        typer.echo(f"wrote {out} ({fmt}); inputs SHA-256 {summary['inputs_sha256']}")
        for line in summary["disclosures"] + summary["notes"]:
            typer.echo(f"  {line}")


def _live_options(duration, speed, seed, mqtt_url, store, no_store, influx_url, influx_org, influx_bucket,
                  influx_spool, json_out, dashboard, dashboard_host, dashboard_port, dashboard_token_file,
                  dashboard_allowed_hosts=()):
    from twin.dashboard import DashboardAuthError, load_token
    from twin.dashboard.auth import split_host
    from twin.runtime.live import DashboardOptions, LiveOptions

    board = None
    if dashboard:
        try:
            token = load_token(file=dashboard_token_file)
        except (DashboardAuthError, OSError, ValueError) as exc:
            fail(f"dashboard token: {exc}")
        for name in dashboard_allowed_hosts or ():
            if split_host(name) is None:  # before the plant starts, not after
                fail(f"--dashboard-allowed-host {name!r}: not a host name (NAME or NAME:PORT)")
        board = DashboardOptions(host=dashboard_host, port=dashboard_port, token=token,
                                 allowed_hosts=tuple(dashboard_allowed_hosts or ()))
    return LiveOptions(duration_s=duration, speed=speed, seed=seed, mqtt_url=mqtt_url,
                       sinks=sink_options(store, no_store, influx_url, influx_org, influx_bucket, influx_spool),
                       progress=not json_out, dashboard=board)


@app.command(cls=Command)
def demo(
    config: Path = typer.Option(Path("configs/demo_smt.yaml"), "--config", "-c", help="Factory model to run."),
    speed: float = typer.Option(60.0, "--speed", min=0.1, max=10_000, help="Simulated seconds per wall second."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d", min=1, help="Wall seconds; default: until Ctrl-C."),
    seed: int = typer.Option(0, "--seed", "-s"),
    mqtt_url: Optional[str] = typer.Option(None, "--mqtt-url", help="Use this broker (mqtt://host:port) instead of the embedded one."),
    plc_port: int = typer.Option(4840, "--plc-port", min=0, max=65535, envvar="FACTORY_TWIN_PLC_PORT",
                                 help="Port of the simulated PLC (OPC UA); 0: any free port."),
    broker_port: int = typer.Option(1883, "--broker-port", min=0, max=65535, envvar="FACTORY_TWIN_BROKER_PORT",
                                    help="Port of the embedded MQTT broker; 0: any free port."),
    store: Path = StoreOpt,
    no_store: bool = NoStoreOpt,
    influx_url: Optional[str] = InfluxUrlOpt,
    influx_org: str = InfluxOrgOpt,
    influx_bucket: Optional[str] = InfluxBucketOpt,
    influx_spool: Path = InfluxSpoolOpt,
    dashboard: bool = DashboardOpt,
    dashboard_host: str = DashboardHostOpt,
    dashboard_port: int = DashboardPortOpt,
    dashboard_token_file: Optional[Path] = DashboardTokenFileOpt,
    dashboard_allowed_host: list[str] = DashboardAllowedHostOpt,
    json_out: bool = JsonOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """The demonstration plant on loopback: simulated PLC (OPC UA) and meters (MQTT) into the live twin."""
    from twin.runtime.live import run_demo

    setup_logging(verbose)
    if not config.is_file():
        packaged = Path(__file__).resolve().parent.parent / config
        config = packaged if packaged.is_file() else config
    factory = load(config)
    opts = _live_options(duration, speed, seed, mqtt_url, store, no_store, influx_url, influx_org, influx_bucket,
                         influx_spool, json_out, dashboard, dashboard_host, dashboard_port, dashboard_token_file,
                         dashboard_allowed_host)
    opts.plc_port, opts.broker_port = plc_port, broker_port
    _run_live("demo", run_demo(factory, config, opts), json_out, factory.calendar.timezone)


@app.command(cls=Command)
def run(
    config: Path = typer.Argument(..., help="Factory model (YAML) of the plant."),
    mapping: Path = typer.Option(..., "--mapping", "-m", help="Connection mapping (YAML): OPC UA nodes, MQTT topics."),
    duration: Optional[float] = typer.Option(None, "--duration", "-d", min=1, help="Wall seconds; default: until Ctrl-C."),
    lines: Optional[str] = LinesOpt,
    meters: Optional[bool] = MetersOpt,
    store: Path = StoreOpt,
    no_store: bool = NoStoreOpt,
    influx_url: Optional[str] = InfluxUrlOpt,
    influx_org: str = InfluxOrgOpt,
    influx_bucket: Optional[str] = InfluxBucketOpt,
    influx_spool: Path = InfluxSpoolOpt,
    dashboard: bool = DashboardOpt,
    dashboard_host: str = DashboardHostOpt,
    dashboard_port: int = DashboardPortOpt,
    dashboard_token_file: Optional[Path] = DashboardTokenFileOpt,
    dashboard_allowed_host: list[str] = DashboardAllowedHostOpt,
    json_out: bool = JsonOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Shadow a real line: the sources a mapping names, into the live twin and its sinks (with --lines,
    only some lines of the site: one process of several sharing a broker and a store)."""
    from connectors.mapping import load_mapping

    from twin.runtime.live import run_mapping

    setup_logging(verbose)
    factory = load(config)
    try:
        m = load_mapping(mapping, factory)
    except ConfigError as exc:
        fail(str(exc))
    part, influx_spool = run_partition(factory, lines, meters, influx_spool)
    opts = _live_options(duration, 1.0, 0, None, store, no_store, influx_url, influx_org, influx_bucket,
                         influx_spool, json_out, dashboard, dashboard_host, dashboard_port, dashboard_token_file,
                         dashboard_allowed_host)
    opts.partition = part
    _run_live("run", run_mapping(factory, config, m, opts), json_out, factory.calendar.timezone)


def _run_live(name: str, coro, json_out: bool, tz: str | None = None) -> None:
    """Run ``demo`` or ``run`` to its end and print the summary; start-up failures are one clear line."""
    import asyncio

    from twin.runtime.live import SourcesUnreachable

    try:
        doc = asyncio.run(coro)
    except KeyboardInterrupt:
        raise typer.Exit(130)
    except SourcesUnreachable as exc:  # exit 3: not one source could be reached
        fail(f"{name}: {exc}", 3)
    except StoreError as exc:
        fail(str(exc))
    except (OSError, ValueError) as exc:  # a port taken, no token beyond loopback, a refused source
        fail(f"{name}: {exc}")
    if json_out:
        dump_json(doc)
    else:
        print_live(doc, tz)
    from twin.runtime.supervisor import lost_work

    lost = lost_work(doc.get("errors") or {}, doc.get("sinks"))
    if lost:  # exit 4: the run finished, but its twin or sinks stopped working on the way
        fail(f"{name}: {lost}", 4)


app.command(cls=Command)(rollup)


app.command(cls=Command)(browse)  # its body: twin/cli_browse.py


@app.command(cls=Command)
def check(
    files: list[Path] = typer.Argument(..., metavar="FILE", help="A factory model (YAML), a connection mapping, or both.",
                                       show_default=False),
    mapping: Optional[Path] = typer.Option(None, "--mapping", "-m", help="Also check this mapping against the factory."),
    json_out: bool = JsonOpt,
) -> None:
    """Validate a factory model or a connection mapping and print what it declares; given both, check
    every signal the mapping names against the factory."""
    from twin.cli_check import describe_mapping, is_mapping_file, print_mapping
    from twin.runtime.summary import console

    mappings = [f for f in files if is_mapping_file(f)] + ([mapping] if mapping else [])
    configs = [f for f in files if f not in mappings]
    if len(configs) > 1 or len(mappings) > 1:
        fail("check takes one factory model and at most one mapping (the mapping also as --mapping)")
    factory = load(configs[0]) if configs else None
    if not mappings:
        doc = runtime.describe(factory, configs[0])
        if json_out:
            dump_json(doc)
        else:
            runtime.print_description(doc)
        return
    try:
        doc = describe_mapping(mappings[0], configs[0] if configs else None, factory)
    except ConfigError as exc:
        fail(str(exc))
    if json_out:
        dump_json(doc)
    else:
        print_mapping(doc, console())


app.command(cls=Command)(experiment)  # its body: twin/cli_experiment.py


app.command("pact-api", cls=Command)(pact_api)  # its body: twin/cli_pact.py


def main() -> None:  # pragma: no cover - console entry point alias
    app()


if __name__ == "__main__":  # pragma: no cover
    app()
