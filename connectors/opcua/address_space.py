"""Walking a server's address space, level by level, in batched Browse requests.

``walk`` expands a mapping's browse pattern (``Objects/{site}/{line}/{station}/{signal}``) one level
at a time, one Browse request per batch of parents (OPC UA Part 4 section 5.8.2), following
hierarchical references forward; ``all_variables`` lists every non-standard variable below a node.
The client uses the first at each (re)connect, ``browse`` the second to draft mappings. Properties
(HasProperty children such as a variable's EngineeringUnits) are never leaves: they describe a
variable, they are not signals of their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from asyncua import Client, ua

from connectors.transform import PathPattern

#: Browse results asked per request; servers cap the size of one response.
BATCH = 200
#: Deepest level ``browse_to_mapping`` descends below Objects (guards against reference cycles).
MAX_DEPTH = 8

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def valid_segment(name: str) -> bool:
    """A browse name that can be a level of a signal name (no '/', no spaces, at most 64 characters)."""
    return bool(_SEGMENT.match(name)) and len(name) <= 64


OBJECTS = ua.NodeId(ua.ObjectIds.ObjectsFolder)
_ROOT = ua.NodeId(ua.ObjectIds.RootFolder)
_CLASSES = ua.NodeClass.Object | ua.NodeClass.Variable
_HAS_PROPERTY = ua.NodeId(ua.ObjectIds.HasProperty)


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


async def browse_refs(client: Client, nodes: list[ua.NodeId], reference: int, *, subtypes: bool = True,
                      classes: int = 0) -> list[list[ua.ReferenceDescription]]:
    """Forward references of type ``reference`` (an ObjectIds number) of each node, in batches of
    BATCH nodes, continuation points followed; ``classes`` a NodeClass mask (0: any)."""
    out: list[list[ua.ReferenceDescription]] = []
    for start in range(0, len(nodes), BATCH):
        params = ua.BrowseParameters()
        params.View = ua.ViewDescription()
        params.RequestedMaxReferencesPerNode = 0
        for nodeid in nodes[start : start + BATCH]:
            desc = ua.BrowseDescription()
            desc.NodeId = nodeid
            desc.BrowseDirection = ua.BrowseDirection.Forward
            desc.ReferenceTypeId = ua.NodeId(reference)
            desc.IncludeSubtypes = subtypes
            desc.NodeClassMask = int(classes)
            desc.ResultMask = int(ua.BrowseResultMask.All)
            params.NodesToBrowse.append(desc)
        for result in await client.uaclient.browse(params):
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


async def _children(client: Client, parents: list[ua.NodeId]) -> list[list[ua.ReferenceDescription]]:
    """Hierarchical forward children (objects and variables) of each parent."""
    found = await browse_refs(client, parents, ua.ObjectIds.HierarchicalReferences, classes=int(_CLASSES))
    # a property (EngineeringUnits, EURange, EnumStrings) describes its variable; it is no signal
    return [[r for r in refs if r.ReferenceTypeId != _HAS_PROPERTY] for refs in found]


async def walk(client: Client, pattern: PathPattern, name_of: Callable[[str], str] | None = None) -> list[Leaf]:
    """Every variable whose browse-name path matches ``pattern``, with the placeholder values.

    A pattern starting with ``Objects`` is read from the Root folder; any other from Objects.
    ``{name}`` matches one level whose browse name is a valid signal segment, ``+`` any one level,
    ``#`` every variable below. ``name_of`` (a browse entry's ``rename`` and ``case``) turns a
    browse name into the twin's name first: a placeholder takes that name, and a text level matches
    the browse name or that name.
    """
    levels = list(pattern.levels)
    start = _ROOT if levels and levels[0] == ("lit", "Objects") else OBJECTS
    # frontier: (node id, path so far, placeholder values, node class)
    frontier = [(start, "" if start == _ROOT else "Objects", {}, ua.NodeClass.Object)]
    found: list[Leaf] = []
    for depth, (kind, text) in enumerate(levels):
        last = depth == len(levels) - 1
        if kind == "hash":
            for nodeid, path, values, _ in frontier:
                found.extend(Leaf(n, p, values) for n, p in await all_variables(client, nodeid, path))
            return found
        refs_per_parent = await _children(client, [n for n, *_ in frontier])
        nxt = []
        for (_, path, values, _), refs in zip(frontier, refs_per_parent):
            for ref in refs:
                name = ref.BrowseName.Name
                twin = name_of(name) if name_of is not None else name
                if kind == "lit" and name != text and twin != text:
                    continue
                if kind == "var" and not valid_segment(twin):
                    continue
                if kind in ("var", "plus") and ref.NodeId.NamespaceIndex == 0:
                    continue  # the standard address space (Server object) is never a station
                new_values = {**values, text: twin} if kind == "var" else values
                child = (ref.NodeId, f"{path}/{name}" if path else name, new_values, ref.NodeClass)
                nxt.append(child)
        frontier = nxt
        if last:
            found = [Leaf(n, p, v) for n, p, v, cls in frontier if cls == ua.NodeClass.Variable]
    return found


async def all_variables(client: Client, root: ua.NodeId, root_path: str) -> list[tuple[ua.NodeId, str]]:
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
