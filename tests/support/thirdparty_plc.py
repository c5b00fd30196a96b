"""A third-party PLC's OPC UA server, written for the tests: not the project's simulator.

It looks like what an integrator meets on an S7-style controller with an OPC UA server: its own
namespace URI (registered after two other vendor namespaces, so its index is not 2), dotted string
node ids (``PLC_1.Press.StateCurrent``), PackML ``StateCurrent`` as an Int32, 16-bit part counters
(UInt16) that roll over from 65535 to 0, and the drive power as a Float in watts.

The controller's program runs on while its OPC UA server restarts: ``set`` while stopped updates
the values and their source times, and the restarted server serves them, the unchanged ones with
their original source times (a PLC keeps its process image; the client sees them again after
reconnecting). ``stop``/``start`` reuse the port.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone

from asyncua import Server, ua

URI = "urn:acme-automation:press-line:plc-1"

#: node id -> OPC UA type of each tag the program writes
TAGS: dict[str, ua.VariantType] = {
    "PLC_1.Press.StateCurrent": ua.VariantType.Int32,
    "PLC_1.Press.GoodCount": ua.VariantType.UInt16,
    "PLC_1.Press.ScrapCount": ua.VariantType.UInt16,
    "PLC_1.Oven.ActivePower": ua.VariantType.Float,
}


class ThirdPartyPlc:
    def __init__(self, port: int, initial: dict[str, float | int], ts: float | None = None):
        self.port = port
        self.endpoint = f"opc.tcp://127.0.0.1:{port}"
        stamp = datetime.fromtimestamp(time.time() if ts is None else ts, tz=timezone.utc)
        self._values = {tag: self._dv(tag, initial[tag], stamp) for tag in TAGS}
        self._server: Server | None = None
        self._ids: dict[str, ua.NodeId] = {}
        self.starts = 0

    @staticmethod
    def _dv(tag: str, value, stamp: datetime) -> ua.DataValue:
        return ua.DataValue(ua.Variant(value, TAGS[tag]), StatusCode=ua.StatusCode(ua.StatusCodes.Good),
                            SourceTimestamp=stamp, ServerTimestamp=stamp)

    def node_id(self, tag: str) -> str:
        return f"nsu={URI};s={tag}"

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name("ACME press line PLC_1")
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        for other in ("http://acme-automation.com/UA/Diagnostics", "http://acme-automation.com/UA/Drives"):
            await server.register_namespace(other)
        ns = await server.register_namespace(URI)
        plc = await server.nodes.objects.add_object(ua.NodeId("PLC_1", ns), ua.QualifiedName("PLC_1", ns))
        folders = {}
        for tag, vtype in TAGS.items():
            _, unit, name = tag.split(".")
            if unit not in folders:
                folders[unit] = await plc.add_object(ua.NodeId(f"PLC_1.{unit}", ns), ua.QualifiedName(unit, ns))
            var = await folders[unit].add_variable(ua.NodeId(tag, ns), ua.QualifiedName(name, ns),
                                                   ua.Variant(self._values[tag].Value.Value, vtype))
            self._ids[tag] = var.nodeid
            await server.write_attribute_value(var.nodeid, self._values[tag])
        await server.start()
        self._server = server
        self.starts += 1

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()

    async def set(self, tag: str, value: float | int, ts: float) -> None:
        """The program writes ``value`` at ``ts`` (epoch s): served now, or after the restart."""
        dv = self._dv(tag, value, datetime.fromtimestamp(ts, tz=timezone.utc))
        self._values[tag] = dv
        if self._server is not None:
            await self._server.write_attribute_value(self._ids[tag], dv)
