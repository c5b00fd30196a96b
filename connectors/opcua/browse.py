"""Walking a server's address space: browse patterns for the client, draft mappings for engineers.

``walk`` expands a mapping's browse pattern (``Objects/{site}/{line}/{station}/{signal}``) level by
level, one batched Browse request per level (OPC UA Part 4 section 5.8.2) following hierarchical
references forward. ``browse_to_mapping`` walks everything under Objects that is not a standard
node and writes a draft mapping YAML with ``nsu=`` ids, so nobody types a thousand node ids by hand
(telegraf #8275); the engineer reviews the guessed signal names.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import yaml
from asyncua import Client, ua

from connectors.mapping import OpcUaSecurity, PathPattern

#: Browse results asked per request; servers cap the size of one response.
BATCH = 200
#: Deepest level ``browse_to_mapping`` descends below Objects (guards against reference cycles).
MAX_DEPTH = 8

_OBJECTS = ua.NodeId(ua.ObjectIds.ObjectsFolder)
_ROOT = ua.NodeId(ua.ObjectIds.RootFolder)
_CLASSES = ua.NodeClass.Object | ua.NodeClass.Variable


@dataclass
class Leaf:
    """A variable found by a walk: its id, its browse-name path and the pattern's placeholder values."""

    nodeid: ua.NodeId
    path: str
    values: dict[str, str] = field(default_factory=dict)

    def expanded_id(self, namespaces: list[str]) -> str:
        """The ``nsu=<uri>;<id>`` text of the node (namespace 0 ids stay plain)."""
        return expanded_id(self.nodeid, namespaces)


def expanded_id(nodeid: ua.NodeId, namespaces: list[str]) -> str:
    kind = {
        ua.NodeIdType.String: "s",
        ua.NodeIdType.Guid: "g",
        ua.NodeIdType.ByteString: "b",
    }.get(nodeid.NodeIdType, "i")
    ident = nodeid.Identifier.hex() if kind == "b" else nodeid.Identifier
    if nodeid.NamespaceIndex == 0:
        return f"{kind}={ident}"
    return f"nsu={namespaces[nodeid.NamespaceIndex]};{kind}={ident}"


async def _children(client: Client, parents: list[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    """Hierarchical forward children (objects and variables) of each parent, continuation points followed."""
    out: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(parents), BATCH):
        params = ua.BrowseParameters()
        params.View = ua.ViewDescription()
        params.RequestedMaxReferencesPerNode = 0
        for nodeid in parents[start : start + BATCH]:
            desc = ua.BrowseDescription()
            desc.NodeId = nodeid
            desc.BrowseDirection = ua.BrowseDirection.Forward
            desc.ReferenceTypeId = ua.NodeId(ua.ObjectIds.HierarchicalReferences)
            desc.IncludeSubtypes = True
            desc.NodeClassMask = int(_CLASSES)
            desc.ResultMask = int(ua.BrowseResultMask.All)
            params.NodesToBrowse.append(desc)
        results = await client.uaclient.browse(params)
        for result in results:
            refs = list(result.References or [])
            point = result.ContinuationPoint
            while point:
                more = await client.uaclient.browse_next(
                    ua.BrowseNextParameters(ReleaseContinuationPoints=False, ContinuationPoints=[point])
                )
                refs.extend(more[0].References or [])
                point = more[0].ContinuationPoint
            out.append(refs)
    return out


async def walk(client: Client, pattern: PathPattern) -> list[Leaf]:
    """Every variable whose browse-name path matches ``pattern``, with the placeholder values.

    A pattern starting with ``Objects`` is read from the Root folder; any other from Objects.
    ``{name}`` matches one level whose browse name is a valid signal segment, ``+`` any one level,
    ``#`` every variable below.
    """
    levels = list(pattern.levels)
    start = _ROOT if levels and levels[0] == ("lit", "Objects") else _OBJECTS
    # frontier: (node id, path so far, placeholder values, node class)
    frontier = [(start, "" if start == _ROOT else "Objects", {}, ua.NodeClass.Object)]
    found: list[Leaf] = []
    for depth, (kind, text) in enumerate(levels):
        last = depth == len(levels) - 1
        if kind == "hash":
            for nodeid, path, values, _ in frontier:
                found.extend(Leaf(n, p, values) for n, p in await _all_variables(client, nodeid, path))
            return found
        refs_per_parent = await _children(client, [n for n, *_ in frontier])
        nxt = []
        for (_, path, values, _), refs in zip(frontier, refs_per_parent):
            for ref in refs:
                name = ref.BrowseName.Name
                if kind == "lit" and name != text:
                    continue
                if kind == "var" and not _valid_segment(name):
                    continue
                if kind in ("var", "plus") and ref.NodeId.NamespaceIndex == 0:
                    continue  # the standard address space (Server object) is never a station
                new_values = {**values, text: name} if kind == "var" else values
                child = (ref.NodeId, f"{path}/{name}" if path else name, new_values, ref.NodeClass)
                nxt.append(child)
        frontier = nxt
        if last:
            found = [Leaf(n, p, v) for n, p, v, cls in frontier if cls == ua.NodeClass.Variable]
    return found


async def _all_variables(client: Client, root: ua.NodeId, root_path: str) -> list[tuple[ua.NodeId, str]]:
    """Every non-standard variable below ``root`` down to MAX_DEPTH levels, with its path."""
    frontier = [(root, root_path)]
    seen = {root}
    found = []
    for _ in range(MAX_DEPTH):
        if not frontier:
            break
        refs_per_parent = await _children(client, [n for n, _ in frontier])
        nxt = []
        for (_, path), refs in zip(frontier, refs_per_parent):
            for ref in refs:
                nodeid = ref.NodeId
                # namespace 0 is the standard address space (the Server object and its diagnostics)
                if nodeid.NamespaceIndex == 0 or nodeid in seen:
                    continue
                seen.add(nodeid)
                child_path = f"{path}/{ref.BrowseName.Name}"
                if ref.NodeClass == ua.NodeClass.Variable:
                    found.append((nodeid, child_path))
                nxt.append((nodeid, child_path))
        frontier = nxt
    return found


_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def _valid_segment(name: str) -> bool:
    return bool(_SEGMENT.match(name)) and len(name) <= 64


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
    from .client import open_client  # the client imports walk from here

    security = security or OpcUaSecurity()
    client = await open_client(
        url, security, username=username, password=password, source_name=source_name, timeout_s=timeout_s
    )
    try:
        namespaces = await client.get_namespace_array()
        leaves = await _all_variables(client, _OBJECTS, "Objects")
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
