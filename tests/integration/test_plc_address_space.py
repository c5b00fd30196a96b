"""The simulated PLC as a generic OPC UA client sees it: typed variables (AnalogItemType with
EngineeringUnits and EURange, a MultiStateDiscreteType state with EnumStrings), Good values from
the start stamped with the wall clock, string node ids everywhere, and PackML state codes that the
twin reads back through the ``packml`` value map."""

from __future__ import annotations

import asyncio
import time

import pytest
from asyncua import Client, ua

from connectors.opcua.client import OpcUaClient
from connectors.opcua.engineering_units import CEFACT_URI
from connectors.opcua.plc import NAMESPACE_URI, SimulatedPlc
from connectors.valuemaps import PACKTAGS_NUMBERS
from factory_models import Quality, State, TsKind
from factory_models.signals import known_signals
from support.opcua_server import FACTORY, FAST, collect, latest, node, write_mapping

pytestmark = pytest.mark.integration


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def _properties(client: Client, nodeid: str) -> dict[str, object]:
    var = client.get_node(nodeid)
    return {(await p.read_browse_name()).Name: await p.read_value() for p in await var.get_properties()}


def test_a_generic_client_sees_typed_variables_with_units_ranges_and_state_names():
    async def main():
        before = time.time()
        async with SimulatedPlc(FACTORY, port=0) as plc:
            after = time.time()
            async with Client(plc.endpoint) as client:
                ns = await client.get_namespace_index(NAMESPACE_URI)
                base = f"ns={ns};s=line1/printer"
                types = {name: (await client.get_node(f"{base}/{name}").read_type_definition()).Identifier
                         for name in ("state", "power_kw", "energy_kwh", "produced", "product")}
                power = await _properties(client, f"{base}/power_kw")
                energy = await _properties(client, f"{base}/energy_kwh")
                state = await _properties(client, f"{base}/state")
                values = {sig: await client.get_node(f"ns={ns};s={sig}").read_data_value() for sig in plc.signals()}
                # the folders and the station objects have string ids too
                folders = [(await client.get_node(f"ns={ns};s={i}").read_browse_name()).Name
                           for i in ("suzhou-smt", "line1", "line1/cnc-2")]
        return before, after, types, power, energy, state, values, folders

    before, after, types, power, energy, state, values, folders = run(main())
    assert types == {"state": ua.ObjectIds.MultiStateDiscreteType, "power_kw": ua.ObjectIds.AnalogItemType,
                     "energy_kwh": ua.ObjectIds.AnalogItemType, "produced": ua.ObjectIds.BaseDataVariableType,
                     "product": ua.ObjectIds.BaseDataVariableType}
    eu = power["EngineeringUnits"]
    # UNECE KWT packed one byte a character: 0x4B 'K', 0x57 'W', 0x54 'T' -> 0x4B5754 = 4937556
    assert (eu.NamespaceUri, eu.UnitId, eu.DisplayName.Text) == (CEFACT_URI, 4_937_556, "kW")
    # EURange: 0 .. the printer's highest draw (POWER: producing 10 kW)
    assert (power["EURange"].Low, power["EURange"].High) == (0.0, 10.0)
    # KWH: 0x4B 'K', 0x57 'W', 0x48 'H' -> 0x4B5748 = 4937544
    assert (energy["EngineeringUnits"].UnitId, energy["EngineeringUnits"].DisplayName.Text) == (4_937_544, "kWh")
    assert [t.Text for t in state["EnumStrings"]] == list(PACKTAGS_NUMBERS)
    assert folders == ["suzhou-smt", "line1", "cnc-2"]
    # 3 stations x 8 variables, each Good from the start, stamped by the wall clock at start
    assert len(values) == 24
    for sig, dv in values.items():
        assert dv.StatusCode.is_good(), sig
        assert before - 1 <= dv.SourceTimestamp.timestamp() <= after + 1, sig
    assert values["line1/printer/state"].Value.Value == 2  # PackML Stopped until the model says otherwise
    assert values["line1/printer/produced"].Value.Value == 0
    assert values["line1/printer/product"].Value.Value == "board-a"


def test_state_codes_are_packml_and_the_twin_reads_them_back(tmp_path):
    # twin state -> the PackML StateCurrent code written -> the state the twin reads (packml table);
    # no two consecutive codes alike: a server notifies a change of value, not of timestamp alone
    cases = [("PRODUCING", 6, "PRODUCING"), ("STARVED", 5, "STARVED"), ("SETUP", 3, "SETUP"),
             ("BLOCKED", 5, "STARVED"), ("DOWN", 11, "DOWN"), ("PLANNED_STOP", 2, "PLANNED_STOP"),
             ("IDLE", 4, "IDLE"), ("NO_SHIFT", 2, "PLANNED_STOP")]

    async def main():
        async with SimulatedPlc(FACTORY, port=0) as plc:
            mapping = write_mapping(tmp_path, {"name": "plc1", "endpoint": plc.endpoint, "subscription": FAST,
                                               "nodes": [node("line1/printer/state")]})
            source = OpcUaClient(mapping.opcua[0], site=mapping.site, known=known_signals(FACTORY))
            queue: asyncio.Queue = asyncio.Queue()
            task = asyncio.create_task(source.run(queue))
            read = []
            try:
                await collect(queue, lambda got: any(s.signal == "line1/printer/state" for s in got))
                for i, (twin_state, code, _) in enumerate(cases):
                    ts = 1_767_600_000.0 + i
                    await plc.update("line1/printer/state", twin_state, ts)
                    assert (await plc.read("line1/printer/state")).Value.Value == code, twin_state
                    got = await collect(queue, lambda got, ts=ts: any(s.ts == ts for s in got))
                    read.append(latest(got, "line1/printer/state"))
                # a code of the PLC's own that the table does not hold: rejected, the station UNKNOWN
                await plc.update("line1/printer/state", 99, 1_767_600_100.0)
                got = await collect(queue, lambda got: any(s.signal == "line1/printer/state" for s in got))
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        return read, latest(got, "line1/printer/state"), source.stats()

    read, unmapped, stats = run(main())
    assert [(s.value, s.ts_kind, s.quality) for s in read] == [(want, TsKind.SOURCE, Quality.GOOD)
                                                              for _, _, want in cases]
    assert unmapped.value == State.UNKNOWN.name
    assert stats["rejected_by_reason"].get("unmapped_value") == 1
