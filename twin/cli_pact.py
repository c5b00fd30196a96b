"""``factory-twin pact-api``: serve the store's product footprints to customers over the PACT v3 API.

HTTPS only: without ``--tls-cert`` and ``--tls-key`` the command refuses to start (exit 2), so a
misconfigured plant never sends footprints or tokens in clear. Client credentials come from
``PACT_CLIENT_ID``/``PACT_CLIENT_SECRET`` or ``--clients FILE``, never from the factory config.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
from pathlib import Path
from typing import Optional

import typer

from twin.cli_options import VerboseOpt, checked, fail, load, setup_logging
from twin.cli_support import check_store
from twin.store import StoreError


def pact_api(
    store: Path = typer.Option(..., "--store", help="Embedded SQLite store holding the published footprints."),
    config: Path = typer.Option(..., "--config", help="Factory model (YAML) of the plant whose footprints are served."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8443, "--port", min=0, max=65535, help="HTTPS port (0: any free port)."),
    tls_cert: Optional[Path] = typer.Option(None, "--tls-cert", help="TLS certificate chain (PEM). Required."),
    tls_key: Optional[Path] = typer.Option(None, "--tls-key", help="TLS private key (PEM). Required."),
    clients: Optional[Path] = typer.Option(
        None, "--clients", help="YAML file of customers (client_id, secret_env or secret, product_ids, company_ids); "
                                "else $PACT_CLIENT_ID and $PACT_CLIENT_SECRET."),
    rate: float = typer.Option(20.0, "--rate-limit", min=0.01, help="Requests per second each client may sustain."),
    burst: int = typer.Option(100, "--burst", min=1, help="Requests a client may send back to back before the rate "
                              "applies (the PACT conformance tool sends about 40 in a row)."),
    verbose: bool = VerboseOpt,
) -> None:
    """Serve product footprints over the PACT Technical Specifications v3 API (HTTPS only)."""
    setup_logging(verbose)
    logging.getLogger("twin.pact_api").setLevel(logging.DEBUG if verbose else logging.INFO)
    from twin.pact_api.app import create_app, serve_forever, server_ssl
    from twin.pact_api.auth import ClientsError, load_clients

    if tls_cert is None or tls_key is None:
        fail("the PACT API is served over HTTPS only: give --tls-cert FILE and --tls-key FILE")
    try:
        ssl_ctx = server_ssl(tls_cert, tls_key)
    except ValueError as exc:
        fail(str(exc))
    if store.is_dir():
        fail(f"{store}: is a directory; expected an SQLite store file")
    if not store.is_file():
        fail(f"{store}: no such store; publish footprints into it first (report --format pact --store {store})")
    checked(check_store, store)
    factory = load(config)
    try:
        registry = load_clients(clients)
    except ClientsError as exc:
        fail(str(exc))
    from twin.pact_api.delivery import Courier, RecipientError, load_recipients
    from twin.pact_api.events import EventHandler
    from twin.pact_api.repository import FootprintRepository

    try:
        repo = FootprintRepository(store)
    except StoreError as exc:
        fail(str(exc))
    try:  # customers' own events endpoints (the clients file's events: blocks) for the answers and notices
        handler = EventHandler(repo, registry, load_recipients(clients, os.environ), Courier())
    except (RecipientError, ValueError) as exc:
        fail(str(exc))
    try:
        docs, _ = repo.list(None)
    except (sqlite3.Error, ValueError) as exc:
        fail(f"{store}: cannot read its footprints: {type(exc).__name__}: {exc}")
    active = sum(1 for d in docs if d.get("status") == "Active")
    app = create_app(repo, registry, handle_event=handler, rate=rate, burst=burst)
    handler.attach(app)

    def started(bound: int) -> None:
        shown = f"[{host}]" if ":" in host else host
        handler.source = f"https://{shown}:{bound}/3/events"
        typer.echo(f"factory-twin: PACT API of {factory.site.name} on https://{shown}:{bound} "
                   f"({len(registry)} client(s), {len(docs)} footprint(s), {active} active); Ctrl-C stops", err=True)
        if not docs:
            typer.echo(f"factory-twin: {store} holds no footprints yet: publish with "
                       f"report --format pact --store {store}", err=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve_forever(app, host, port, ssl_ctx, started, stop)

    try:
        asyncio.run(main())
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
