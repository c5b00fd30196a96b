"""A third-party-style OPC UA server for the tests: not the project's simulated PLC.

It behaves like an S7-style PLC behind a vendor's OPC UA server: string node ids in the vendor's
namespace URI (``nsu=urn:acme:s7-1500;s=DB10.Press.State``), analog variables of AnalogItemType
with EngineeringUnits and EURange, and values that keep their source time until they change. A
restart is a new server on the same port whose values keep the source times they had (what a PLC
re-sends after a reconnect).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from asyncua import Server, ua

from connectors.opcua.engineering_units import eu_information

VENDOR_URI = "urn:acme:s7-1500"

#: tag -> (browse path under Objects/PLC/, initial value, variant type, unit symbol, EURange)
TAGS: dict[str, tuple] = {
    "Press.State": ("PRODUCING", ua.VariantType.String, None, None),
    "Press.Power": (2500.0, ua.VariantType.Double, "W", (0.0, 20000.0)),
    "Press.Good": (10, ua.VariantType.UInt16, None, None),
}


def node_id(tag: str) -> str:
    return f"nsu={VENDOR_URI};s=DB10.{tag}"


class VendorPlc:
    """One vendor server on ``port`` (0: a free one, then kept across restarts)."""

    def __init__(self, port: int, values: dict[str, tuple] | None = None, tags: dict[str, tuple] | None = None):
        self.port = port
        self.tags = TAGS if tags is None else tags  # tag -> (initial value, variant type, unit, EURange)
        # tag -> (value, source time): a restart publishes them with the same source times
        self.values = values if values is not None else {t: (v[0], time.time()) for t, v in self.tags.items()}
        self.server: Server | None = None
        self.nodes: dict[str, object] = {}

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}"

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("ACME S7-1500 OPC UA")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await server.register_namespace(VENDOR_URI)
        plc = await server.nodes.objects.add_object(ua.NodeId("DB10", ns), "PLC")
        press = await plc.add_object(ua.NodeId("DB10.Press", ns), "Press")
        for tag, (_, vtype, unit, eu_range) in self.tags.items():
            nid = ua.NodeId(f"DB10.{tag}", ns)
            name = tag.split(".")[-1]
            if unit is None:
                var = await press.add_variable(nid, name, ua.Variant(self.values[tag][0], vtype),
                                               datatype=ua.NodeId(getattr(ua.ObjectIds, vtype.name)))
            else:
                var = await _analog(press, nid, ua.QualifiedName(name, ns), self.values[tag][0])
                await var.add_property(ua.NodeId(f"DB10.{tag}.EngineeringUnits", ns), "EngineeringUnits",
                                       ua.Variant(eu_information(unit), ua.VariantType.ExtensionObject),
                                       datatype=ua.NodeId(ua.ObjectIds.EUInformation))
                await var.add_property(ua.NodeId(f"DB10.{tag}.EURange", ns), "EURange",
                                       ua.Variant(ua.Range(Low=eu_range[0], High=eu_range[1]),
                                                  ua.VariantType.ExtensionObject),
                                       datatype=ua.NodeId(ua.ObjectIds.Range))
            self.nodes[tag] = var
            await self._write(tag, *self.values[tag])
        await server.start()
        self.server = server

    async def _write(self, tag: str, value, source_ts: float) -> None:
        vtype = self.tags[tag][1]
        stamp = datetime.fromtimestamp(source_ts, UTC)
        await self.nodes[tag].write_value(ua.DataValue(ua.Variant(value, vtype), SourceTimestamp=stamp,
                                                       ServerTimestamp=stamp))

    async def update(self, tag: str, value, source_ts: float | None = None) -> None:
        ts = time.time() if source_ts is None else source_ts
        self.values[tag] = (value, ts)
        await self._write(tag, value, ts)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None

    async def restart(self) -> VendorPlc:
        """A new server process on the same port with the same values and source times."""
        await self.stop()
        again = VendorPlc(self.port, dict(self.values), self.tags)
        await again.start()
        return again


async def _analog(parent, nodeid: ua.NodeId, name: ua.QualifiedName, value: float):
    """A Double variable whose type definition is AnalogItemType (asyncua's add_variable always
    makes a BaseDataVariableType), added with one AddNodes request as a vendor's server has it."""
    from asyncua import Node

    attrs = ua.VariableAttributes()
    attrs.DisplayName = ua.LocalizedText(name.Name)
    attrs.Value = ua.Variant(float(value), ua.VariantType.Double)
    attrs.DataType = ua.NodeId(ua.ObjectIds.Double)
    attrs.ValueRank = ua.ValueRank.Scalar
    attrs.AccessLevel = attrs.UserAccessLevel = ua.AccessLevel.CurrentRead.mask
    item = ua.AddNodesItem()
    item.RequestedNewNodeId, item.BrowseName, item.NodeClass = nodeid, name, ua.NodeClass.Variable
    item.ParentNodeId, item.ReferenceTypeId = parent.nodeid, ua.NodeId(ua.ObjectIds.HasComponent)
    item.TypeDefinition, item.NodeAttributes = ua.NodeId(ua.ObjectIds.AnalogItemType), attrs
    (result,) = await parent.session.add_nodes([item])
    result.StatusCode.check()
    return Node(parent.session, result.AddedNodeId)


async def until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Wait for ``condition`` with a deadline (polled; no fixed sleep decides the outcome)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError(f"{what}: not after {timeout_s} s")
        await asyncio.sleep(0.02)
