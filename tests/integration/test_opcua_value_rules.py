"""The mapping's value rules through a real OPC UA client and server on loopback: PackML integer
states (an unmapped code makes the station UNKNOWN), a 16-bit counter that wraps, power in W."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest
from asyncua import Server, ua

from connectors.opcua.client import OpcUaClient
from factory_models.signals import known_signals

from support.opcua_server import FACTORY, FAST, collect, free_port, write_mapping

pytestmark = pytest.mark.integration

URI = "urn:acme:test-plc"
T0 = 1_767_571_200.0  # 2026-01-05 00:00 UTC: the PLC's source times, one second apart


class Plc:
    """A PLC-like server written here: Int32 PackTags state, UInt16 good counter, Double watts."""

    TAGS = {"State": (ua.VariantType.Int32, 6), "Good": (ua.VariantType.UInt16, 65534),
            "PowerW": (ua.VariantType.Double, 5200.0)}

    async def __aenter__(self):
        self.endpoint = f"opc.tcp://127.0.0.1:{free_port()}"
        self.server = Server()
        await self.server.init()
        self.server.set_endpoint(self.endpoint)
        self.server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        ns = await self.server.register_namespace(URI)
        folder = await self.server.nodes.objects.add_object(ua.NodeId("Press", ns), "Press")
        self.nodes = {}
        for tag, (vtype, initial) in self.TAGS.items():
            self.nodes[tag] = await folder.add_variable(ua.NodeId(f"Press.{tag}", ns), tag, ua.Variant(initial, vtype))
        for tag, (_, initial) in self.TAGS.items():
            await self.write(tag, initial, T0)
        await self.server.start()
        return self

    async def write(self, tag: str, value, ts: float) -> None:
        stamp = datetime.fromtimestamp(ts, timezone.utc)
        await self.nodes[tag].write_value(ua.DataValue(ua.Variant(value, self.TAGS[tag][0]),
                                                       SourceTimestamp=stamp, ServerTimestamp=stamp))

    async def __aexit__(self, *exc):
        await self.server.stop()


def test_packml_codes_rollover_and_watts_arrive_as_the_twin_reads_them(tmp_path):
    async def main():
        async with Plc() as plc:
            mapping = write_mapping(tmp_path, {
                "name": "plc1", "endpoint": plc.endpoint, "subscription": FAST,
                "nodes": [
                    {"node": f"nsu={URI};s=Press.State", "signal": "line1/printer/state", "values": "packml"},
                    {"node": f"nsu={URI};s=Press.Good", "signal": "line1/printer/good", "rollover": 65535},
                    {"node": f"nsu={URI};s=Press.PowerW", "signal": "line1/printer/power_kw", "unit": "W"},
                ],
            })
            source = OpcUaClient(mapping.opcua[0], site=mapping.site, known=known_signals(FACTORY))
            queue: asyncio.Queue = asyncio.Queue()
            task = asyncio.create_task(source.run(queue))
            try:
                def has(signal, ts):
                    return lambda got: any(s.signal == signal and s.ts == ts for s in got)

                got = await collect(queue, lambda g: has("line1/printer/state", T0)(g) and has("line1/printer/good", T0)(g)
                                    and has("line1/printer/power_kw", T0)(g))
                # the counter wraps: 65534, 65535, 0, 2 are four more parts
                for i, raw in enumerate((65535, 0, 2), start=1):
                    await plc.write("Good", raw, T0 + i)
                    got += await collect(queue, has("line1/printer/good", T0 + i))
                await plc.write("State", 42, T0 + 5)  # a code PackTags does not define
                got += await collect(queue, has("line1/printer/state", T0 + 5))
                await plc.write("State", 11, T0 + 6)  # Held
                got += await collect(queue, has("line1/printer/state", T0 + 6))
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            return got, source.stats()

    got, stats = asyncio.run(asyncio.wait_for(main(), 60))
    states = [(s.ts - T0, s.value) for s in got if s.signal == "line1/printer/state"]
    assert states == [(0, "PRODUCING"), (5, "UNKNOWN"), (6, "DOWN")]  # never the previous state
    assert [s.value for s in got if s.signal == "line1/printer/good"] == [65534.0, 65535.0, 65536.0, 65538.0]
    assert [s.value for s in got if s.signal == "line1/printer/power_kw"] == [pytest.approx(5.2)]
    assert stats["rejected_by_reason"] == {"unmapped_value": 1}
    assert stats["unmapped_by_signal"] == {"line1/printer/state": 1}
    assert stats["counter_wraps"] == {"line1/printer/good": 1}
