"""Browsing a real simulated PLC: draft mappings, browse patterns, and third-party clients."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import yaml

from connectors.mapping import load_mapping
from connectors.opcua.browse import browse_to_mapping_async, guess_signal
from connectors.opcua.client import OpcUaClient, opcua_sources
from connectors.opcua.plc import SimulatedPlc
from factory_models.signals import known_signals
from factory_models import load_factory

from support.opcua_server import FACTORY, FAST, collect, write_mapping

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_browse_writes_a_loadable_mapping_covering_every_variable(tmp_path):
    async def main():
        async with SimulatedPlc(FACTORY, port=0) as plc:
            text = await browse_to_mapping_async(plc.endpoint, source_name="line1-plc", known=known_signals(FACTORY))
            return text, plc

    text, plc = run(main())
    path = tmp_path / "draft.yaml"
    path.write_text(text)
    mapping = load_mapping(path, FACTORY)
    source = mapping.opcua[0]
    assert mapping.site == "suzhou-smt" and source.name == "line1-plc" and source.endpoint == plc.endpoint
    assert {(n.node, n.signal) for n in source.nodes} == {(plc.node_id(s), s) for s in plc.signals()}
    assert len(source.nodes) == len(plc.signals()) == 24
    assert "# Draft mapping" in text and "#   signal" not in text  # nothing left unassigned


def test_browse_comments_out_variables_that_name_no_signal(tmp_path):
    # the same PLC seen by a twin whose factory lacks the second CNC: its variables need a decision
    known = {s for s in known_signals(FACTORY) if "/cnc-2/" not in s and "/cnc-1/" not in s}

    async def main():
        async with SimulatedPlc(FACTORY, port=0) as plc:
            return await browse_to_mapping_async(plc.endpoint, known=known)

    text = run(main())
    commented = [line for line in text.splitlines() if line.strip().startswith("#   signal:")]
    assert len(commented) == 16 and all("/cnc-" in line for line in commented)
    doc = yaml.safe_load(text)
    assert len(doc["opcua"][0]["nodes"]) == 8


def test_browse_pattern_with_literal_levels_selects_a_subset(tmp_path):
    async def main():
        async with SimulatedPlc(FACTORY, port=0) as plc:
            for i, unit in enumerate(("printer", "cnc-1", "cnc-2")):
                await plc.update(f"line1/{unit}/power_kw", 1.0 + i)
            mapping = write_mapping(
                tmp_path,
                {"name": "plc1", "endpoint": plc.endpoint, "subscription": FAST,
                 "nodes": [{"browse": "Objects/{site}/line1/{station}/power_kw", "signal": "line1/{station}/power_kw"}]},
            )
            source = OpcUaClient(mapping.opcua[0], site=mapping.site, known=known_signals(FACTORY))
            queue: asyncio.Queue = asyncio.Queue()
            task = asyncio.create_task(source.run(queue))
            try:
                got = await collect(queue, lambda got: len(got) >= 4)
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            return got, source

    got, source = run(main())
    assert {(s.signal, s.value) for s in got[1:]} == {
        ("line1/printer/power_kw", 1.0), ("line1/cnc-1/power_kw", 2.0), ("line1/cnc-2/power_kw", 3.0)}
    assert source.signals() == {"line1/printer/power_kw", "line1/cnc-1/power_kw", "line1/cnc-2/power_kw"}


def test_third_party_clients_can_browse_and_read_the_plc():
    async def tool(*args):
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        out, _ = await proc.communicate()
        return proc.returncode, out.decode()

    async def main():
        async with SimulatedPlc(FACTORY, port=0) as plc:
            await plc.update("line1/cnc-2/produced", 1234)
            listing = await tool(str(BIN / "uals"), "-u", plc.endpoint, "-n", "i=85", "-d", "4", "-l", "0")
            read = await tool(str(BIN / "uaread"), "-u", plc.endpoint, "-n", "ns=2;s=line1/cnc-2/produced")
            return listing, read

    (rc1, listing), (rc2, read) = run(main())
    assert rc1 == 0 and rc2 == 0, listing + read
    for name in ("suzhou-smt", "line1", "printer", "cnc-2", "energy_kwh"):
        assert name in listing
    assert read.strip().splitlines()[-1] == "1234"


def test_signal_names_are_guessed_from_the_browse_path():
    assert guess_signal("Objects/suzhou-smt/line1/printer/state") == "line1/printer/state"
    assert guess_signal("Objects/PLC1/Press 3/Power") == "plc1/press_3/power_kw"
    assert guess_signal("Objects/Counter") == "unassigned/unassigned/counter"


def test_demo_mapping_feeds_every_station_signal_of_the_demo_factory(tmp_path):
    root = Path(__file__).resolve().parents[2]
    factory = load_factory(root / "configs" / "demo_smt.yaml")
    mapping = load_mapping(root / "configs" / "mapping_demo_opcua.yaml", factory)

    async def main():
        async with SimulatedPlc(factory, port=0) as plc:
            config = mapping.opcua[0].model_copy(update={"endpoint": plc.endpoint})
            source = OpcUaClient(config, mapping.site, known_signals(factory), dead_letter=tmp_path / "dl.jsonl")
            before = source.signals()  # the guess from the browse template, before any connection
            queue: asyncio.Queue = asyncio.Queue()
            task = asyncio.create_task(source.run(queue))
            try:
                await collect(queue, lambda got: len(got) >= 1 + len(plc.signals()))
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
            return source, plc.signals(), before

    source, exposed, before = run(main())
    station_signals = {s for s in known_signals(factory) if not s.startswith("site/")}
    assert source.signals() == set(exposed) == station_signals == before
    assert source.stats()["monitored_items"] == len(station_signals) == 64
    (built,) = opcua_sources(mapping, factory, tmp_path)
    assert built.name == "plc-smt1" and built.signals() == station_signals
    assert built.dead_letter.path == tmp_path / "deadletter-plc-smt1.jsonl"
