"""A Sparkplug B Edge Node written in the test -> real mosquitto -> ``run`` with a mapping -> the
printer's KPIs.

The node (tests/support/sparkplug_edge.py) encodes its payloads with its own wire encoder, waits
for the twin's STATE before its births, sends PackML state numbers, counters, energy in Wh and
power in W by alias, loses one message (a seq gap: the twin asks for a rebirth and the node is
reborn), and ends its session with an NDEATH, after which the printer is UNKNOWN. The printer
counts good and scrap parts; ``derived:`` makes its produced count.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.sparkplug_edge import DOUBLE, FLOAT, INT32, UINT32, EdgeNode

from connectors.mapping import load_mapping
from connectors.sparkplug.client import SparkplugClient
from factory_models import load_factory
from factory_models.signals import known_signals
from twin.runtime import Sinks
from twin.runtime.live import LiveOptions, run_mapping

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

ROOT = Path(__file__).resolve().parents[2]
SMT = ROOT / "configs" / "demo_smt.yaml"
HOST_ID = "factory-twin-test"
EXECUTE, IDLE = 6, 4  # PackML StateCurrent numbers (ISA-TR88.00.02)

MAPPING = """
site: suzhou-smt
sparkplug:
  - name: edge
    url: {mqtt}
    group_id: plant
    host_id: {host_id}
    reorder_timeout_s: 0.5
    rebirth_interval_s: 2
    metrics:
      - {{edge_node: "{{line}}", device: "{{station}}", metric: State, signal: "{{line}}/{{station}}/state", values: packml}}
      - {{edge_node: "{{line}}", device: "{{station}}", metric: "Counters/{{signal}}", signal: "{{line}}/{{station}}/{{signal}}"}}
      - {{edge_node: "{{line}}", device: "{{station}}", metric: Energy, signal: "{{line}}/{{station}}/energy_kwh", unit: Wh}}
      - {{edge_node: "{{line}}", device: "{{station}}", metric: Power, signal: "{{line}}/{{station}}/power_kw", unit: W}}
derived:
  - {{signal: smt1/printer/produced, expr: "smt1/printer/good + smt1/printer/scrap"}}
"""


def printer_device() -> dict[str, tuple]:
    # name: (alias, datatype, value at birth)
    return {"State": (1, INT32, IDLE), "Counters/scrap": (2, UINT32, 0), "Counters/good": (3, UINT32, 0),
            "Energy": (4, DOUBLE, 0.0), "Power": (5, FLOAT, 0.0)}


def retained_state(host: str, port: int, topic: str) -> dict:
    """The retained STATE message on ``topic``, read by a fresh subscriber."""
    got: dict = {}
    done = threading.Event()
    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2)  # a fresh random id per read
    c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topic, 1)
    c.on_message = lambda cl, u, msg: (got.update(json.loads(msg.payload), retain=msg.retain), done.set())
    c.connect(host, port)
    c.loop_start()
    try:
        assert done.wait(10), f"no retained message on {topic}"
    finally:
        c.disconnect()
        c.loop_stop()
    return got


def test_an_edge_node_drives_the_printer_through_a_rebirth_and_its_death(mosquitto, tmp_path):
    factory = load_factory(SMT)
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(MAPPING.format(mqtt=mosquitto.url, host_id=HOST_ID))
    mapping = load_mapping(mapping_file, factory)
    edge = EdgeNode(mosquitto.host, mosquitto.port, "plant", "smt1", {"printer": printer_device()}, wait_host=HOST_ID)
    marks: dict[str, float] = {}

    async def scenario() -> dict:
        stop = asyncio.Event()
        seen: dict = {}
        opts = LiveOptions(progress=False, stop=stop, sinks=Sinks(store=tmp_path / "run.sqlite"), tick_s=0.2,
                           on_state=lambda doc: seen.update(doc=doc))

        async def until(what: str, cond, timeout_s: float = 30.0) -> None:
            deadline = time.monotonic() + timeout_s
            while not (seen.get("doc") and cond(seen["doc"])):
                assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
                await asyncio.sleep(0.05)

        def printer(doc) -> dict:
            return next(st for ln in doc["lines"] for st in ln["stations"] if st["station"] == "printer")

        task = asyncio.create_task(run_mapping(factory, SMT, mapping, opts))
        try:
            await until("the source up", lambda d: d["connections"] == {"edge": "up"})
            await asyncio.to_thread(edge.start)  # waits for the twin's STATE online, then NBIRTH + DBIRTH
            await until("the birth's IDLE", lambda d: printer(d)["state"] == "IDLE")
            marks["t1"] = time.time()
            edge.ddata("printer", {"State": EXECUTE, "Power": 2000.0}, marks["t1"])
            for i in (1, 2, 3):
                await asyncio.sleep(0.05)  # distinct device times
                edge.ddata("printer", {"Counters/good": i, "Energy": 500.0 * i} | ({"Counters/scrap": 1} if i == 2 else {}))
            # one message lost on the way: the twin sees seq jump, waits 0.5 s, asks for a rebirth
            edge.ddata("printer", {"Counters/good": 4}, send=False)
            await asyncio.sleep(0.05)
            edge.ddata("printer", {"Counters/good": 5, "Energy": 1600.0})
            deadline = time.monotonic() + 20
            while edge.births < 2:  # the NCMD arrived and the node published NBIRTH + DBIRTH again
                assert time.monotonic() < deadline, "no rebirth after the seq gap"
                await asyncio.sleep(0.05)
            await until("five good parts", lambda d: printer(d)["kpi"]["good"] == 5)
            await asyncio.sleep(0.05)
            edge.ddata("printer", {"Counters/good": 6, "Energy": 1800.0})
            await until("six good parts and 1.8 kWh",
                        lambda d: printer(d)["kpi"]["good"] == 6 and abs((printer(d)["kpi"]["energy_kwh"] or 0) - 1.8) < 1e-9)
            marks["death"] = time.time()
            await asyncio.to_thread(edge.death)  # NDEATH with the birth's bdSeq, then DISCONNECT
            await until("the printer UNKNOWN after the death", lambda d: printer(d)["state"] == "UNKNOWN")
            marks["unknown_seen"] = time.time()
        finally:
            stop.set()
            summary = await task
            edge.stop()
        return summary

    doc = asyncio.run(scenario())
    printer = next(s for s in doc["stations"] if s["station"] == "printer")
    # good 0 -> 6 (the lost message's 4 is covered by the birth's 5), scrap 0 -> 1: every part counted
    # once; produced is derived: good + scrap = 6 + 1
    assert (printer["good"], printer["scrap"], printer["produced"]) == (6, 1, 7)
    assert printer["energy_kwh"] == pytest.approx(1.8)  # 1800 Wh - 0 Wh, converted by unit: Wh
    # PRODUCING from the device's time of Execute until the death's receive time (within the
    # time the death took to arrive and be seen: at most the span until the state document showed it)
    producing = marks["death"] - marks["t1"]
    assert producing <= printer["apt_s"] <= marks["unknown_seen"] - marks["t1"]
    st = doc["samples"]["sources"]["edge"]
    assert (st["births"], st["device_births"], st["deaths"]) == (2, 2, 1)
    assert (st["seq_gaps"], st["seq_missed"]) == (1, 1)
    assert st["rebirths_sent"] == edge.rebirth_requests == 1
    assert st["rejected"] == 0 and doc["samples"]["rejected"] == 0
    assert st["metrics_unmapped"] == 4  # bdSeq and Node Control/Rebirth, in each of the two NBIRTHs
    assert st["derived_samples"] > 0
    # the twin stopped cleanly: its retained STATE says offline, with the timestamp of its birth
    state = retained_state(mosquitto.host, mosquitto.port, f"spBv1.0/STATE/{HOST_ID}")
    assert state["online"] is False and state["retain"] and isinstance(state["timestamp"], int)


def test_data_before_birth_asks_the_running_node_for_its_birth(mosquitto, tmp_path):
    """The twin starts after the node was born: the first DDATA is rejected (before_birth) and
    answered with a rebirth request; the node's new birth makes its values flow."""
    factory = load_factory(SMT)
    mapping = load_mapping_text(tmp_path, MAPPING.format(mqtt=mosquitto.url, host_id=HOST_ID), factory)
    edge = EdgeNode(mosquitto.host, mosquitto.port, "plant", "smt1", {"printer": printer_device()})

    async def scenario():
        edge.start()  # born with nobody listening
        client = SparkplugClient(mapping.sparkplug[0], factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        got = []
        try:
            assert (await asyncio.wait_for(queue.get(), 20)).value == "up"
            deadline = time.monotonic() + 20
            while client.stats()["rejected_by_reason"].get("before_birth", 0) == 0:
                assert time.monotonic() < deadline, "the DDATA never arrived"
                edge.ddata("printer", {"Counters/good": 1})  # until the twin's subscription is in place
                await asyncio.sleep(0.2)
            while not any(s.signal == "smt1/printer/good" for s in got):
                got.append(await asyncio.wait_for(queue.get(), 20))
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            edge.stop()
        return got, client.stats()

    got, stats = asyncio.run(scenario())
    assert edge.rebirth_requests >= 1 and stats["rebirths_sent"] >= 1 and stats["births"] >= 1
    good = [s for s in got if s.signal == "smt1/printer/good"]
    assert good[0].value == 1.0  # the birth carries the current count
    assert set(stats["rejected_by_reason"]) == {"before_birth"}


def load_mapping_text(tmp_path: Path, text: str, factory):
    path = tmp_path / "mapping.yaml"
    path.write_text(text)
    return load_mapping(path, factory)


def test_after_its_own_connection_drops_the_twin_asks_every_known_node_for_its_birth(mosquitto, tmp_path):
    """Sparkplug clients use Clean Session: a twin that lost its connection cannot know what the
    nodes declared meanwhile, so on reconnecting it asks each node it knew for a rebirth at once,
    rather than rejecting their next data as arriving before a birth."""
    import socket

    factory = load_factory(SMT)
    mapping = load_mapping_text(tmp_path, MAPPING.format(mqtt=mosquitto.url, host_id=HOST_ID), factory)
    edge = EdgeNode(mosquitto.host, mosquitto.port, "plant", "smt1", {"printer": printer_device()})

    async def next_of(queue: asyncio.Queue, cond, what: str):
        deadline = time.monotonic() + 20
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"not within 20 s: {what}"
            s = await asyncio.wait_for(queue.get(), left)
            if cond(s):
                return s

    async def scenario():
        client = SparkplugClient(mapping.sparkplug[0], factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        try:
            await next_of(queue, lambda s: s.value == "up", "connected")
            await asyncio.to_thread(edge.start)
            await next_of(queue, lambda s: s.signal == "smt1/printer/state", "the birth's state")
            client.client.socket().shutdown(socket.SHUT_RDWR)  # the twin's network drops; the node's does not
            await next_of(queue, lambda s: s.signal == "connection/edge" and s.value == "down", "the loss")
            await next_of(queue, lambda s: s.signal == "connection/edge" and s.value == "up", "the reconnect")
            reborn = await next_of(queue, lambda s: s.signal == "smt1/printer/good", "the rebirth's count")
            assert edge.births == 2 and edge.rebirth_requests == 1
            edge.ddata("printer", {"Counters/good": 7})
            after = await next_of(queue, lambda s: s.signal == "smt1/printer/good", "data after the rebirth")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            edge.stop()
        return reborn, after, client.stats()

    reborn, after, stats = asyncio.run(scenario())
    assert (reborn.value, after.value) == (0.0, 7.0)
    assert stats["reconnects"] == 1 and stats["births"] == 2 and stats["rebirths_sent"] == 1
    assert stats["rejected"] == 0  # nothing arrived unreadable: the births came first


def test_after_a_broker_restart_the_nodes_values_flow_again_within_5_s(mosquitto, tmp_path):
    """Issue 12: samples flow again within 5 s of the broker's return. Both sides lost their
    sessions: the node publishes a new birth (next bdSeq) on its reconnect, the twin reconnects
    within its 3 s backoff cap and reads it."""
    factory = load_factory(SMT)
    mapping = load_mapping_text(tmp_path, MAPPING.format(mqtt=mosquitto.url, host_id=HOST_ID), factory)
    edge = EdgeNode(mosquitto.host, mosquitto.port, "plant", "smt1", {"printer": printer_device()})

    async def scenario():
        client = SparkplugClient(mapping.sparkplug[0], factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        seen = []

        async def next_of(cond, what: str, timeout_s: float = 20.0):
            deadline = time.monotonic() + timeout_s
            while True:
                left = deadline - time.monotonic()
                assert left > 0, f"not within {timeout_s} s: {what}"
                s = await asyncio.wait_for(queue.get(), left)
                seen.append(s)
                if cond(s):
                    return s

        try:
            await next_of(lambda s: s.value == "up", "connected")
            await asyncio.to_thread(edge.start)
            await next_of(lambda s: s.signal == "smt1/printer/state", "the first birth")
            await asyncio.to_thread(mosquitto.restart)
            back = time.monotonic()
            await next_of(lambda s: s.signal == "connection/edge" and s.value == "down", "the loss")
            # (the node's will, an NDEATH, may reach the twin before the broker closes its connection)
            await next_of(lambda s: s.signal == "smt1/printer/state" and s.value != "UNKNOWN",
                          "the birth after the restart")
            flowing_s = time.monotonic() - back
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            edge.stop()
        return flowing_s, seen, client.stats()

    flowing_s, seen, stats = asyncio.run(scenario())
    print(f"samples flowed again {flowing_s:.2f} s after the broker's return")
    assert flowing_s <= 5.0, f"samples flowed again {flowing_s:.1f} s after the broker's return"
    conn = [s.value for s in seen if s.signal == "connection/edge"]
    assert conn == ["up", "down", "up"]
    assert stats["reconnects"] == 1 and stats["births"] >= 2 and edge.reconnects == 1 and edge.bd_seq == 1


def test_the_twin_answers_an_offline_state_of_its_own_host_id_with_its_birth(mosquitto, tmp_path):
    """Edge Nodes with this Primary Host act on its retained STATE: a stale ``online: false`` (an
    old will, a second client with the same host_id) must not stand while the twin is connected."""
    factory = load_factory(SMT)
    mapping = load_mapping_text(tmp_path, MAPPING.format(mqtt=mosquitto.url, host_id=HOST_ID), factory)
    topic = f"spBv1.0/STATE/{HOST_ID}"

    async def scenario():
        client = SparkplugClient(mapping.sparkplug[0], factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        try:
            assert (await asyncio.wait_for(queue.get(), 20)).value == "up"
            first = await asyncio.to_thread(retained_state, mosquitto.host, mosquitto.port, topic)
            other = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="impostor")
            other.connect(mosquitto.host, mosquitto.port)
            other.loop_start()
            other.publish(topic, json.dumps({"online": False, "timestamp": 1}), qos=1, retain=True).wait_for_publish(10)
            other.disconnect()
            other.loop_stop()
            deadline = time.monotonic() + 10
            while True:
                now = await asyncio.to_thread(retained_state, mosquitto.host, mosquitto.port, topic)
                if now["online"] is True:
                    break
                assert time.monotonic() < deadline, "the twin did not restore its STATE birth"
                await asyncio.sleep(0.1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        return first, now

    first, now = asyncio.run(scenario())
    # the same birth again, its timestamp the connection's (retain says only whether it came stored or live)
    assert first["online"] is True and (now["online"], now["timestamp"]) == (True, first["timestamp"])
