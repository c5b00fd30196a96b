"""The options the commands share, and what checks their values before any work: a wrong file or
setting is one line on stderr and exit code 2, never a traceback and never after a simulated day."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import typer

from connectors.influxdb.spool import check_usable as check_spool_usable
from factory_models import ConfigError, load_factory
from twin import runtime
from twin.cli_support import check_spool, check_store
from twin.store import StoreError

JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout instead of tables.")
WindowOpt = typer.Option(None, "--window", "-w", help="Also report aligned windows of this length: 15m, 1h, 8h, 1d.")
CarbonOpt = typer.Option(None, "--carbon", help="Carbon settings (YAML with a carbon: block); default: the factory's own.")
StoreOpt = typer.Option(Path("factory-twin.sqlite"), "--store", help="Embedded SQLite store (KPI windows, emissions).")
NoStoreOpt = typer.Option(False, "--no-store", help="Write no embedded store.")
InfluxUrlOpt = typer.Option(None, "--influx-url", help="InfluxDB (v2 write API) URL; the token comes from $INFLUX_TOKEN.")
InfluxOrgOpt = typer.Option("", "--influx-org", help="InfluxDB organisation (empty for 1.8).")
InfluxBucketOpt = typer.Option(None, "--influx-bucket", help="InfluxDB bucket (1.8: database/retention-policy).")
InfluxSpoolOpt = typer.Option(Path("influx-spool"), "--influx-spool", help="Durable store-and-forward spool (a directory).")
DashboardOpt = typer.Option(True, "--dashboard/--no-dashboard", help="Serve the operators' live page.")
DashboardHostOpt = typer.Option("127.0.0.1", "--dashboard-host", help="Address the page binds to; beyond loopback a token is required.")
DashboardPortOpt = typer.Option(8050, "--dashboard-port", min=0, max=65535, help="Port of the page (0: any free port).")
DashboardTokenFileOpt = typer.Option(None, "--dashboard-token-file", help="File holding the page's token (else $FACTORY_TWIN_DASHBOARD_TOKEN).")
DashboardAllowedHostOpt = typer.Option(
    [], "--dashboard-allowed-host", metavar="NAME[:PORT]",
    help="Another name the page may be addressed by (a DNS name, a proxy); repeatable. Other Host names get 421.")
VerboseOpt = typer.Option(False, "--verbose", "-v", help="Debug logging on stderr.")
LinesOpt = typer.Option(None, "--lines", metavar="L1,L2",
                        help="Own only these lines: subscribe to, compute and write them (docs/deployment.md).")
MetersOpt = typer.Option(None, "--meters/--no-meters",
                         help="With --lines: own the site meters and the emissions ledger "
                              "(default: the process whose lines include the site's first line).")


def setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"factory-twin: {message}", err=True)
    raise typer.Exit(code)


def checked(check, path: Path | None) -> None:
    """Run a file check of twin.cli_support before any work; a wrong file is one line, exit 2."""
    try:
        if path is not None:
            check(path)
    except (ConfigError, StoreError, ValueError) as exc:
        fail(str(exc))


def sink_options(store: Path, no_store: bool, influx_url, influx_org, influx_bucket, influx_spool):
    if not no_store:
        checked(check_store, store)
    influx = None
    if influx_url:
        if not influx_bucket:
            fail("--influx-url needs --influx-bucket")
        checked(check_spool, influx_spool)
        checked(check_spool_usable, influx_spool)  # before the run: an unwritable spool is bad input
        try:
            influx = runtime.InfluxConfig(url=influx_url, org=influx_org, bucket=influx_bucket, spool_path=influx_spool)
        except ValueError as exc:
            fail(f"InfluxDB settings: {exc}")
    return runtime.Sinks(store=None if no_store else store, influx=influx)


def load(config: Path):
    try:
        return load_factory(config)
    except ConfigError as exc:
        fail(str(exc))
