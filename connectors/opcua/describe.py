"""What a draft mapping says about each variable: its data type, its type definition, and for an
analog item its EngineeringUnits and EURange (OPC 10000-8, Data Access, v1.05, sections 5.3.2.3
and 5.6.3: properties of an AnalogItemType, reached by HasProperty references).

Read in batches (one Browse per 200 variables for their properties, one Read per 500 attributes),
so a server with thousands of tags is described in a handful of requests.
"""

from __future__ import annotations

from dataclasses import dataclass

from asyncua import Client, ua

from .address_space import browse_refs
from .engineering_units import CEFACT_URI, symbol_of

READ_BATCH = 500  # attributes per Read request

#: UNECE Rec. 20 common codes outside the signal vocabulary that plant variables often carry,
#: spelled so pint reads them (engineering_units.UNITS has the vocabulary's own)
MORE_UNECE = {
    "CEL": "degC", "FAH": "degF", "KEL": "K", "BAR": "bar", "MBR": "mbar", "PAL": "Pa", "KPA": "kPa",
    "HTZ": "Hz", "AMP": "A", "VLT": "V", "KVT": "kV", "KVA": "kVA", "KGM": "kg", "TNE": "t", "GRM": "g",
    "MTR": "m", "MMT": "mm", "SEC": "s", "MIN": "min", "HUR": "h", "P1": "percent", "MQH": "m3/h",
    "LTR": "l", "MTS": "m/s", "RPM": "rpm", "NEW": "N", "NU": "N*m", "KJO": "kJ", "MJ": "MJ", "JOU": "J",
}


@dataclass
class Described:
    data_type: str | None = None
    type_definition: str | None = None
    unit: str | None = None  # pint-readable symbol from EngineeringUnits
    unit_text: str | None = None  # how the server wrote it: display name and UNECE code
    eu_range: tuple[float, float] | None = None


def _code(unit_id: int) -> str:
    """The UNECE common code packed in an EUInformation unitId (Part 8 section 5.6.3.4)."""
    chars = []
    while unit_id > 0:
        chars.append(chr(unit_id & 0xFF))
        unit_id >>= 8
    return "".join(reversed(chars))


def unit_of(eu: ua.EUInformation | None) -> tuple[str | None, str | None]:
    """(pint-readable symbol, the server's own words) of an EngineeringUnits value."""
    if eu is None:
        return None, None
    shown = eu.DisplayName.Text if eu.DisplayName is not None else None
    code = _code(eu.UnitId) if eu.NamespaceUri == CEFACT_URI and eu.UnitId and eu.UnitId > 0 else None
    text = " ".join(x for x in (shown, f"(UNECE {code})" if code else None) if x) or None
    symbol = symbol_of(eu)
    if code and code in MORE_UNECE and (symbol is None or symbol == shown):
        symbol = MORE_UNECE[code]
    return symbol, text


async def _read(client: Client, ids: list[tuple[ua.NodeId, int]]) -> list:
    """The values of (node, attribute) pairs, None where the server refused one."""
    out: list = []
    for start in range(0, len(ids), READ_BATCH):
        params = ua.ReadParameters()
        for nodeid, attr in ids[start : start + READ_BATCH]:
            rv = ua.ReadValueId()
            rv.NodeId, rv.AttributeId = nodeid, attr
            params.NodesToRead.append(rv)
        for dv in await client.uaclient.read(params):
            good = dv.StatusCode is None or dv.StatusCode.is_good()
            out.append(dv.Value.Value if good and dv.Value is not None else None)
    return out


async def _properties(client: Client, nodes: list[ua.NodeId]) -> list[dict[str, ua.NodeId]]:
    """Each node's properties by browse name (EngineeringUnits, EURange, ...)."""
    found = await browse_refs(client, nodes, ua.ObjectIds.HasProperty, classes=int(ua.NodeClass.Variable))
    return [{r.BrowseName.Name: r.NodeId for r in refs} for refs in found]


async def _names(client: Client, ids: list[ua.NodeId]) -> dict[ua.NodeId, str]:
    """Browse names of type nodes; the standard ones without asking the server."""
    names: dict[ua.NodeId, str] = {}
    ask = []
    for nodeid in set(ids):
        if nodeid is None:
            continue
        if nodeid.NamespaceIndex == 0 and nodeid.Identifier in ua.ObjectIdNames:
            names[nodeid] = ua.ObjectIdNames[nodeid.Identifier]
        else:
            ask.append(nodeid)
    for nodeid, name in zip(ask, await _read(client, [(n, ua.AttributeIds.BrowseName) for n in ask])):
        names[nodeid] = name.Name if name is not None else nodeid.to_string()
    return names


async def describe(client: Client, nodes: list[ua.NodeId]) -> list[Described]:
    """A ``Described`` per variable of ``nodes``, in order."""
    data_types = await _read(client, [(n, ua.AttributeIds.DataType) for n in nodes])
    props = await _properties(client, nodes)
    type_defs = await _type_definitions(client, nodes)
    wanted = [(i, name, p[name]) for i, p in enumerate(props) for name in ("EngineeringUnits", "EURange") if name in p]
    values = await _read(client, [(nid, ua.AttributeIds.Value) for _, _, nid in wanted])
    names = await _names(client, [d for d in data_types if d is not None] + [t for t in type_defs if t is not None])
    out = [Described(data_type=names.get(d), type_definition=names.get(t)) for d, t in zip(data_types, type_defs)]
    for (i, name, _), value in zip(wanted, values):
        if name == "EngineeringUnits" and isinstance(value, ua.EUInformation):
            out[i].unit, out[i].unit_text = unit_of(value)
        elif name == "EURange" and isinstance(value, ua.Range):
            out[i].eu_range = (float(value.Low), float(value.High))
    return out


async def _type_definitions(client: Client, nodes: list[ua.NodeId]) -> list[ua.NodeId | None]:
    found = await browse_refs(client, nodes, ua.ObjectIds.HasTypeDefinition, subtypes=False)
    return [refs[0].NodeId if refs else None for refs in found]
