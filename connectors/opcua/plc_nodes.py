"""Typed variables of the simulated PLC's address space, as a vendor's server declares them.

OPC 10000-8 (Part 8: Data Access, v1.05): a measured value is an ``AnalogItemType`` (section
5.3.2.3; i=2368) with the properties ``EngineeringUnits`` (EUInformation, 5.6.3) and ``EURange``
(Range: the values expected in normal operation, 5.6.2); a state read as a small integer is a
``MultiStateDiscreteType`` (5.3.3.3; i=2376) with ``EnumStrings``, the name of each value from 0
upward. asyncua's ``add_variable`` makes only BaseDataVariableType, so the nodes are added here
with their type definition, and the properties with their standard (namespace 0) browse names.
"""

from __future__ import annotations

from asyncua import Node, ua

from .engineering_units import eu_information


def _attributes(name: str, variant: ua.Variant, datatype: int, rank: int = ua.ValueRank.Scalar) -> ua.VariableAttributes:
    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name)
    attrs.Description = ua.LocalizedText(name)
    attrs.DataType = ua.NodeId(datatype)
    attrs.Value = variant
    attrs.ValueRank = rank
    attrs.AccessLevel = ua.AccessLevel.CurrentRead.mask
    attrs.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
    attrs.WriteMask = attrs.UserWriteMask = 0
    attrs.Historizing = False
    return attrs


async def _add(parent: Node, nodeid: ua.NodeId, name: ua.QualifiedName, attrs: ua.VariableAttributes,
               type_def: int, reference: int) -> Node:
    item = ua.AddNodesItem()
    item.RequestedNewNodeId = nodeid
    item.BrowseName = name
    item.NodeClass = ua.NodeClass.Variable
    item.ParentNodeId = parent.nodeid
    item.ReferenceTypeId = ua.NodeId(reference)
    item.TypeDefinition = ua.NodeId(type_def)
    item.NodeAttributes = attrs
    (result,) = await parent.session.add_nodes([item])
    result.StatusCode.check()
    return Node(parent.session, result.AddedNodeId)


async def _property(var: Node, name: str, variant: ua.Variant, datatype: int, rank: int = ua.ValueRank.Scalar) -> None:
    # a property's id extends its variable's (``<signal>.EURange``): string ids all the way down
    nodeid = ua.NodeId(f"{var.nodeid.Identifier}.{name}", var.nodeid.NamespaceIndex, ua.NodeIdType.String)
    await _add(var, nodeid, ua.QualifiedName(name, 0), _attributes(name, variant, datatype, rank),
               ua.ObjectIds.PropertyType, ua.ObjectIds.HasProperty)


async def add_analog(parent: Node, nodeid: ua.NodeId, name: str, ns: int, value: float, unit: str,
                     eu_range: tuple[float, float]) -> Node:
    """A Double AnalogItemType holding ``value``, its EngineeringUnits (``unit``, a symbol of
    ``engineering_units.UNITS``) and its EURange ``(low, high)``."""
    var = await _add(parent, nodeid, ua.QualifiedName(name, ns),
                     _attributes(name, ua.Variant(float(value), ua.VariantType.Double), ua.ObjectIds.Double),
                     ua.ObjectIds.AnalogItemType, ua.ObjectIds.HasComponent)
    await _property(var, "EngineeringUnits", ua.Variant(eu_information(unit), ua.VariantType.ExtensionObject),
                    ua.ObjectIds.EUInformation)
    low, high = eu_range
    await _property(var, "EURange", ua.Variant(ua.Range(Low=float(low), High=float(high)), ua.VariantType.ExtensionObject),
                    ua.ObjectIds.Range)
    return var


async def add_multistate(parent: Node, nodeid: ua.NodeId, name: str, ns: int, value: int, names: tuple[str, ...]) -> Node:
    """A UInt32 MultiStateDiscreteType holding ``value``, with ``names`` as its EnumStrings."""
    var = await _add(parent, nodeid, ua.QualifiedName(name, ns),
                     _attributes(name, ua.Variant(int(value), ua.VariantType.UInt32), ua.ObjectIds.UInt32),
                     ua.ObjectIds.MultiStateDiscreteType, ua.ObjectIds.HasComponent)
    texts = [ua.LocalizedText(n) for n in names]
    await _property(var, "EnumStrings", ua.Variant(texts, ua.VariantType.LocalizedText), ua.ObjectIds.LocalizedText,
                    ua.ValueRank.OneDimension)
    return var


async def add_plain(parent: Node, nodeid: ua.NodeId, name: str, ns: int, value, vtype: ua.VariantType) -> Node:
    """A BaseDataVariableType (counters, the product) holding ``value``."""
    datatype = {ua.VariantType.UInt32: ua.ObjectIds.UInt32, ua.VariantType.String: ua.ObjectIds.String,
                ua.VariantType.Double: ua.ObjectIds.Double}[vtype]
    return await _add(parent, nodeid, ua.QualifiedName(name, ns),
                      _attributes(name, ua.Variant(value, vtype), datatype),
                      ua.ObjectIds.BaseDataVariableType, ua.ObjectIds.HasComponent)
