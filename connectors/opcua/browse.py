"""Draft mappings for engineers: ``browse_to_mapping`` walks everything under Objects that is not a
standard node and writes a draft mapping YAML with ``nsu=`` ids, so nobody types a thousand node
ids by hand (telegraf #8275); the engineer reviews the guessed signal names.
"""

from __future__ import annotations

import asyncio
import re
from datetime import datetime, timezone

import yaml

from .config import OpcUaSecurity

from .address_space import OBJECTS, all_variables, expanded_id
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
    username: str | None = None,
    password: str | None = None,
    known: set[str] | None = None,
    timeout_s: float = 10.0,
) -> str:
    """Walk ``url``'s Objects folder and return a draft mapping YAML covering every variable.

    ``site`` defaults to the first level under Objects when every variable sits four levels deep
    (``Objects/<site>/<line>/<station>/<name>``). With ``known`` (``known_signals(factory)``)
    nodes whose guessed signal is unknown are written commented out, for the engineer to assign.
    """

    security = security or OpcUaSecurity()
    client = await open_client(
        url, security, username=username, password=password, source_name=source_name, timeout_s=timeout_s
    )
    try:
        namespaces = await client.get_namespace_array()
        leaves = await all_variables(client, OBJECTS, "Objects")
    finally:
        await client.disconnect()
    # server order: for a PLC usually the declaration order of its stations and tags
    if site is None:
        firsts = {p.split("/")[1] for _, p in leaves if len(p.split("/")) == 5}
        site = firsts.pop() if len(firsts) == 1 else "CHANGE-ME"
    nodes, unknown = [], []
    for nodeid, path in leaves:
        entry = {"node": expanded_id(nodeid, namespaces), "signal": guess_signal(path)}
        (unknown if known is not None and entry["signal"] not in known else nodes).append((entry, path))
    source: dict = {"name": source_name, "endpoint": url, "security": _security_dict(security)}
    source["subscription"] = {
        "publishing_interval_ms": 500,
        "sampling_interval_ms": 250,
        "queue_size": 10,
        "batch_size": 100,
    }
    source["nodes"] = [e for e, _ in nodes]
    doc = {"site": site, "opcua": [source]}
    header = (
        f"# Draft mapping written by `factory-twin browse {url}` on "
        f"{datetime.now(timezone.utc).isoformat(timespec='seconds')}.\n"
        f"# {len(leaves)} variables found under Objects. Signal names are guessed from the browse path:\n"
        "# review each one, add scale/offset/unit/deadband/timestamp where needed, and delete what the\n"
        "# twin does not use. Credentials go in username_env / password_env, never in this file.\n"
    )
    body = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120)
    if unknown:
        body += "  # Variables whose guessed signal is not a signal of this factory: assign or delete.\n"
        for entry, path in unknown:
            body += f"  # - node: {_quote(entry['node'])}   # {path}\n"
            body += f"  #   signal: {entry['signal']}\n"
    if not nodes:
        # an empty node list is not a valid mapping; keep the file loadable after the engineer edits
        body = body.replace("  nodes: []\n", "  nodes:\n")
    return header + body


def browse_to_mapping(url: str, **kwargs) -> str:
    """Blocking form of ``browse_to_mapping_async`` for the command line."""
    return asyncio.run(browse_to_mapping_async(url, **kwargs))


def _security_dict(security: OpcUaSecurity) -> dict:
    return {k: str(v) for k, v in security.model_dump(exclude_none=True).items()}


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
