"""``factory-twin browse``: a draft mapping from an OPC UA server's address space (connectors/opcua/browse.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from factory_models import ConfigError
from twin.cli_options import VerboseOpt, fail, setup_logging


def browse(
    url: str = typer.Argument(..., help="OPC UA endpoint, e.g. opc.tcp://127.0.0.1:4840."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the draft mapping here (default: stdout)."),
    name: str = typer.Option("plc", "--name", help="The source's name in the draft."),
    security_policy: str = typer.Option("None", "--security-policy", help="None or Basic256Sha256, as security.policy."),
    security_mode: Optional[str] = typer.Option(None, "--security-mode", help="Sign or SignAndEncrypt (security.mode)."),
    client_cert: Optional[Path] = typer.Option(None, "--client-cert", help="Our certificate (made once when missing)."),
    client_key: Optional[Path] = typer.Option(None, "--client-key", help="Its private key."),
    server_cert: Optional[Path] = typer.Option(None, "--server-cert", help="The pinned server certificate (DER)."),
    username_env: Optional[str] = typer.Option(None, "--username-env", help="Environment variable holding the user name."),
    password_env: Optional[str] = typer.Option(None, "--password-env", help="Environment variable holding the password."),
    password_file: Optional[Path] = typer.Option(None, "--password-file", help="File holding the password."),
    verbose: bool = VerboseOpt,
) -> None:
    """Walk an OPC UA server's address space and write a draft mapping to edit (with the same security
    and credentials as a mapping source; types, units and ranges of each variable)."""
    from connectors.opcua.browse import browse_to_mapping, connection_settings

    setup_logging(verbose)
    try:
        security, credentials = connection_settings(
            policy=security_policy, mode=security_mode, client_cert=client_cert, client_key=client_key,
            server_cert=server_cert, username_env=username_env, password_env=password_env, password_file=password_file)
        text = browse_to_mapping(url, source_name=name, security=security, credentials=credentials)
    except (ValueError, ConfigError) as exc:
        fail(f"browse: {exc}")
    except (OSError, ConnectionError, TimeoutError) as exc:  # a refused user or a changed pinned certificate too
        fail(f"{url}: cannot browse: {exc}")
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}", err=True)
