"""Draft mappings for engineers: ``browse_to_mapping`` walks everything under Objects that is not a
standard node and writes a draft mapping YAML with ``nsu=`` ids, so nobody types a thousand node
ids by hand (telegraf #8275); the engineer reviews the guessed signal names.

It connects as a mapping source does (security policy and mode, client certificate and key, the
pinned server certificate, user name and password from the environment or a file) and writes
those settings into the draft. Each node says what the server says of it: ``unit:`` from its
EngineeringUnits when that converts to the guessed signal's unit, ``eu_range:`` from its EURange,
and a comment with the data type, the type definition and the units as the server wrote them.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone

import yaml

from ..config_base import Credentials
from ..units import conversion_factor
from .address_space import OBJECTS, all_variables, expanded_id
from .config import OpcUaSecurity
from .describe import Described, describe
from .session import open_client

#: Common PLC tag names and the twin's signal name they most likely mean (a guess to review).
SYNONYMS = {
    "status": "state",
    "machinestate": "state",
    "count": "produced",
    "partcount": "produced",
    "goodcount": "good",
    "scrapcount": "scrap",
    "power": "power_kw",
    "energy": "energy_kwh",
    "productname": "product",
}


def _segment(name: str) -> str:
    """A path segment made safe for a signal name: lower case, other characters as '_'."""
    text = re.sub(r"[^a-z0-9_.-]+", "_", name.strip().lower()).strip("_.-")
    return text or "unnamed"


def guess_signal(path: str) -> str:
    """A signal name ``<line>/<station>/<name>`` guessed from a browse path below Objects.

    ``Objects/<site>/<line>/<station>/<name>`` (the simulated PLC's layout) maps one to one; other
    layouts take the last three levels, padded with ``unassigned``.
    """
    parts = [p for p in path.split("/") if p][1:]  # drop "Objects"
    tail = [_segment(p) for p in parts[-3:]]
    while len(tail) < 3:
        tail.insert(0, "unassigned")
    tail[2] = SYNONYMS.get(tail[2].replace("_", ""), tail[2])
    return "/".join(tail)


async def browse_to_mapping_async(
    url: str,
    *,
    site: str | None = None,
    source_name: str = "plc",
    security: OpcUaSecurity | None = None,
    credentials: Credentials | None = None,
    known: set[str] | None = None,
    timeout_s: float = 10.0,
) -> str:
    """Walk ``url``'s Objects folder and return a draft mapping YAML covering every variable.

    ``site`` defaults to the first level under Objects when every variable sits four levels deep
    (``Objects/<site>/<line>/<station>/<name>``). With ``known`` (``known_signals(factory)``)
    nodes whose guessed signal is unknown are written commented out, for the engineer to assign.
    """

    security = security or OpcUaSecurity()
    credentials = credentials or Credentials()
    username, password = credentials.resolve_credentials()
    client = await open_client(
        url, security, username=username, password=password, source_name=source_name, timeout_s=timeout_s
    )
    try:
        namespaces = await client.get_namespace_array()
        leaves = await all_variables(client, OBJECTS, "Objects")
        details = await describe(client, [n for n, _ in leaves])
    finally:
        await client.disconnect()
    # server order: for a PLC usually the declaration order of its stations and tags
    if site is None:
        firsts = {p.split("/")[1] for _, p in leaves if len(p.split("/")) == 5}
        site = firsts.pop() if len(firsts) == 1 else "CHANGE-ME"
    nodes, unknown = [], []
    for (nodeid, path), info in zip(leaves, details):
        entry = {"node": expanded_id(nodeid, namespaces), "signal": guess_signal(path)}
        (unknown if known is not None and entry["signal"] not in known else nodes).append((entry, path, info))
    source: dict = {"name": source_name, "endpoint": url, "security": _security_dict(security)}
    source.update(credentials.model_dump(exclude_none=True, mode="json"))
    source["subscription"] = {
        "publishing_interval_ms": 500,
        "sampling_interval_ms": 250,
        "queue_size": 10,
        "batch_size": 100,
    }
    source["nodes"] = []
    doc = {"site": site, "opcua": [source]}
    header = (
        f"# Draft mapping written by `factory-twin browse {url}` on "
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}.\n"
        f"# {len(leaves)} variables found under Objects. Signal names are guessed from the browse path:\n"
        "# review each one, add scale/offset/unit/deadband/timestamp where needed, and delete what the\n"
        "# twin does not use. Credentials go in username_env / password_env, never in this file.\n"
    )
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)
    # the node list by hand: each entry with a comment of what the server says of the variable
    listed = "".join(draft_node(entry, path, info) for entry, path, info in nodes)
    body = body.replace("  nodes: []\n", "  nodes:\n" + listed)
    if unknown:
        body += "  # Variables whose guessed signal is not a signal of this factory: assign or delete.\n"
        for entry, path, info in unknown:
            body += "".join(f"  # {line[2:]}\n" for line in draft_node(entry, path, info).splitlines())
    return header + body


def connection_settings(*, policy: str = "None", mode: str | None = None, client_cert=None, client_key=None,
                        server_cert=None, username_env: str | None = None, password_env: str | None = None,
                        password_file=None) -> tuple[OpcUaSecurity, Credentials]:
    """The ``security`` and credential keys of a mapping source from the command line's options;
    ValueError with the model's own words when they do not go together."""
    from pydantic import ValidationError

    try:
        security = OpcUaSecurity(policy=policy, mode=mode, client_cert=client_cert, client_key=client_key,
                                 server_cert=server_cert)
        credentials = Credentials(username_env=username_env, password_env=password_env, password_file=password_file)
    except ValidationError as exc:
        raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
    return security, credentials


def browse_to_mapping(url: str, **kwargs) -> str:
    """Blocking form of ``browse_to_mapping_async`` for the command line."""
    return asyncio.run(browse_to_mapping_async(url, **kwargs))


def draft_node(entry: dict, path: str, info: Described) -> str:
    """One node of the draft: node, signal, unit and eu_range as keys, the rest as a comment."""
    signal = entry["signal"]
    lines = [f"- node: {_quote(entry['node'])}", f"  signal: {signal}"]
    said = [x for x in (info.data_type, info.type_definition) if x]
    if info.unit_text:
        said.append(f"EngineeringUnits {info.unit_text}")
    if info.unit is not None:
        try:
            factor = conversion_factor(info.unit, signal)
        except ValueError as exc:
            said.append(f"unit not set: {exc}")
        else:
            lines.append(f"  unit: {_quote(info.unit)}" + (f"  # x {factor:g} to the signal's unit" if factor != 1 else ""))
    if info.eu_range is not None:
        low, high = info.eu_range
        if low < high:
            lines.append(f"  eu_range: {yaml.safe_dump([low, high], default_flow_style=True).strip()}")
        else:
            said.append(f"EURange [{low:g}, {high:g}] (not low < high: left out)")
    lines.append(f"  # {path}" + (f": {'; '.join(said)}" if said else ""))
    return "".join(f"  {line}\n" for line in lines)


def _security_dict(security: OpcUaSecurity) -> dict:
    return {k: str(v) for k, v in security.model_dump(exclude_none=True).items()}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
