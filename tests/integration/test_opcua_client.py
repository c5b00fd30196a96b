"""OPC UA client against a real simulated PLC on loopback: values, quality, bad nodes, restarts."""

from __future__ import annotations

import asyncio
import json
import math

import pytest
from asyncua import ua

from connectors.opcua.client import OpcUaClient, quality_of, resolve_node_id
from connectors.opcua.plc import NAMESPACE_URI, SimulatedPlc
from factory_models.signals import connection_signal, known_signals
from factory_models import Quality, TsKind

from support.opcua_server import FACTORY, FAST, collect, latest, node, write_mapping

pytestmark = pytest.mark.integration


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 60))


async def _start(source: OpcUaClient) -> tuple[asyncio.Queue, asyncio.Task]:
    queue: asyncio.Queue = asyncio.Queue()
    return queue, asyncio.create_task(source.run(queue))


async def _stop(task: asyncio.Task) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def _up(samples, name="plc1"):
    return [s for s in samples if s.signal == connection_signal(name)]


def test_values_arrive_exactly_with_transform_and_source_timestamp(tmp_path):
    async def main():
        async with SimulatedPlc(FACTORY, port=0) as plc:
            mapping = write_mapping(
                tmp_path,
                {
                    "name": "plc1",
                    "endpoint": plc.endpoint,
                    "subscription": FAST,
                    "nodes": [
                        node("line1/printer/state"),
                        node("line1/printer/produced"),
                        # a PLC that reports watts: the mapping scales to kW
                        node("line1/printer/power_kw", scale=0.001, offset=0.5, timestamp="server"),
                        node("line1/printer/energy_kwh", timestamp="receive"),
                    ],
                },
            )
            source = OpcUaClient(mapping.opcua[0], site=mapping.site, known=known_signals(FACTORY))
            queue, task = await _start(source)
            try:
                await collect(queue, lambda got: len(got) >= 5)  # "up" + 4 initial values
                await plc.update("line1/printer/state", "PRODUCING", 1_767_600_000.25)
                await plc.update("line1/printer/produced", 42, 1_767_600_001.0)
                await plc.update("line1/printer/power_kw", 12_500.0, 1_767_600_002.0)
                await plc.update("line1/printer/energy_kwh", 3.75, 1_767_600_003.0)
                got = await collect(
                    queue, lambda got: {s.signal for s in got if s.quality == Quality.GOOD} >= {
                        "line1/printer/state", "line1/printer/produced", "line1/printer/power_kw",
                        "line1/printer/energy_kwh"}
                )
            finally:
                await _stop(task)
        state = latest(got, "line1/printer/state")
        assert (state.value, state.ts, state.ts_kind, state.quality) == (
            "PRODUCING", 1_767_600_000.25, TsKind.SOURCE, Quality.GOOD)
        produced = latest(got, "line1/printer/produced")
        assert produced.value == 42.0 and isinstance(produced.value, float)
        power = latest(got, "line1/printer/power_kw")
        assert power.value == pytest.approx(13.0)
        assert power.ts_kind == TsKind.SERVER and power.ts != 1_767_600_002.0
        energy = latest(got, "line1/printer/energy_kwh")
        assert energy.value == 3.75 and energy.ts_kind == TsKind.RECEIVE
        stats = source.stats()
        assert stats["monitored_items"] == 4 and stats["rejected"] == 0
        assert stats["received"] == stats["samples"] == 8  # 4 initial values, 4 updates

    run(main())


def test_bad_node_is_counted_and_its_siblings_still_flow(tmp_path):
    async def main():
        async with SimulatedPlc(FACTORY, port=0) as plc:
            mapping = write_mapping(
                tmp_path,
                {
                    "name": "plc1",
                    "endpoint": plc.endpoint,
                    "subscription": {**FAST, "batch_size": 2},  # the bad node shares a batch with a good one
                    "nodes": [
                        node("line1/printer/state"),
                        {"node": f"nsu={NAMESPACE_URI};s=line1/printer/no-such-tag", "signal": "line1/printer/good"},
                        node("line1/cnc-1/state"),
                        {"node": "nsu=urn:not-on-this-server;s=x", "signal": "line1/cnc-1/good"},
                        node("line1/cnc-2/state"),
                    ],
                },
            )
            dead = tmp_path / "dead.jsonl"
            source = OpcUaClient(mapping.opcua[0], site=mapping.site, dead_letter=dead)
            queue, task = await _start(source)
            try:
                await collect(queue, lambda got: len(got) >= 4)
                for i, st in enumerate(("printer", "cnc-1", "cnc-2")):
                    await plc.update(f"line1/{st}/state", "DOWN", 1_767_600_000.0 + i)
                got = await collect(queue, lambda got: sum(s.value == "DOWN" for s in got) == 3)
            finally:
                await _stop(task)
        assert {s.signal for s in got if s.value == "DOWN"} == {
            "line1/printer/state", "line1/cnc-1/state", "line1/cnc-2/state"}
        stats = source.stats()
        assert stats["monitored_items"] == 3
        assert stats["rejected_by_reason"] == {"node_failed": 1, "node_unresolved": 1}
        assert stats["connected"] is False  # the source was cancelled
        records = [json.loads(line) for line in dead.read_text().splitlines()]
        assert [(r["reason"], r["where"]) for r in records] == [
            ("node_unresolved", "line1/cnc-1/good"), ("node_failed", "line1/printer/good")]
        assert "BadNodeIdUnknown" in records[1]["detail"] and "urn:not-on-this-server" in records[0]["detail"]

    run(main())


def test_bad_status_is_forwarded_as_bad_quality_and_counted(tmp_path):
    async def main():
        async with SimulatedPlc(FACTORY, port=0) as plc:
            await plc.update("line1/printer/power_kw", 4.0)
            mapping = write_mapping(
                tmp_path,
                {"name": "plc1", "endpoint": plc.endpoint, "subscription": FAST,
                 "nodes": [node("line1/printer/power_kw")]},
            )
            source = OpcUaClient(mapping.opcua[0], site=mapping.site)
            queue, task = await _start(source)
            try:
                await collect(queue, lambda got: any(s.value == 4.0 for s in got))
                await plc.update("line1/printer/power_kw", 5.0, status=ua.StatusCodes.BadSensorFailure)
                await plc.update("line1/printer/power_kw", 6.0, status=ua.StatusCodes.UncertainLastUsableValue)
                got = await collect(queue, lambda got: len(got) >= 2)
            finally:
                await _stop(task)
        bad, uncertain = got
        # a Bad value carries no usable value over the wire; it still arrives, flagged, to be counted
        assert bad.quality == Quality.BAD and (bad.value == 5.0 or math.isnan(bad.value))
        assert (uncertain.value, uncertain.quality) == (6.0, Quality.UNCERTAIN)
        assert source.stats()["bad"] == 1 and source.stats()["uncertain"] == 1

    run(main())


def test_deadband_suppresses_small_moves_and_counts_them(tmp_path):
    async def main():
        async with SimulatedPlc(FACTORY, port=0) as plc:
            await plc.update("line1/printer/power_kw", 10.0)
            mapping = write_mapping(
                tmp_path,
                {"name": "plc1", "endpoint": plc.endpoint, "subscription": FAST,
                 "nodes": [node("line1/printer/power_kw", deadband=0.5)]},
            )
            source = OpcUaClient(mapping.opcua[0], site=mapping.site)
            queue, task = await _start(source)
            try:
                await collect(queue, lambda got: any(s.value == 10.0 for s in got))
                # queue_size 100: the server queues every change, none is merged before the deadband sees it
                for value in (10.2, 10.4, 10.6, 10.7, 9.0):
                    await plc.update("line1/printer/power_kw", value)
                got = await collect(queue, lambda got: any(s.value == 9.0 for s in got))
            finally:
                await _stop(task)
        assert [s.value for s in got] == [10.6, 9.0]
        assert source.stats()["suppressed"] == 3

    run(main())


def test_server_restart_restores_subscriptions_and_reports_the_gap(tmp_path):
    async def main():
        plc = SimulatedPlc(FACTORY, port=0)
        await plc.start()
        mapping = write_mapping(
            tmp_path,
            {"name": "plc1", "endpoint": plc.endpoint, "subscription": FAST,
             "nodes": [node("line1/printer/produced"), {"browse": "Objects/{site}/{line}/{station}/{signal}"}]},
        )
        source = OpcUaClient(mapping.opcua[0], site=mapping.site, known=known_signals(FACTORY),
                                   reconnect_min_s=0.2, reconnect_max_s=1.0, watchdog_s=0.5)
        queue, task = await _start(source)
        try:
            await plc.update("line1/printer/produced", 1)
            await collect(queue, lambda got: any(s.value == 1.0 for s in got))
            await plc.stop()
            # the restarted server registers another namespace first: ours moves to a new index
            plc2 = SimulatedPlc(FACTORY, port=plc.port, extra_namespaces=("urn:vendor:diagnostics",))
            await asyncio.sleep(1.0)
            await plc2.start()
            try:
                got = await collect(queue, lambda got: [s.value for s in _up(got)] == ["down", "up"])
                await plc2.update("line1/printer/produced", 2)
                await plc2.update("line1/cnc-2/produced", 7)
                more = await collect(queue, lambda got: {(s.signal, s.value) for s in got} >= {
                    ("line1/printer/produced", 2.0), ("line1/cnc-2/produced", 7.0)})
            finally:
                await plc2.stop()
        finally:
            await _stop(task)
        down, up = _up(got)
        assert up.ts - down.ts >= 1.0  # the gap spans the time the server was away
        assert up.ts_kind == TsKind.RECEIVE
        stats = source.stats()
        assert stats["reconnects"] == 1 and stats["gaps"] == 1 and stats["last_gap_s"] >= 1.0
        assert stats["monitored_items"] == 24  # every subscription restored, browse included
        assert all(s.signal.startswith("line1/") for s in more)

    run(main())


def test_quality_from_status_code_severity_bits():
    assert quality_of(ua.StatusCode(ua.StatusCodes.Good)) == Quality.GOOD
    assert quality_of(ua.StatusCode(ua.StatusCodes.UncertainInitialValue)) == Quality.UNCERTAIN
    assert quality_of(ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown)) == Quality.BAD
    assert quality_of(ua.StatusCode(0xC0000000)) == Quality.BAD  # severity 11 is reserved, read as bad


def test_nsu_ids_resolve_against_the_current_namespace_array():
    namespaces = ["http://opcfoundation.org/UA/", "urn:a", NAMESPACE_URI]
    assert resolve_node_id(f"nsu={NAMESPACE_URI};s=line1/printer/state", namespaces) == ua.NodeId(
        "line1/printer/state", 2, ua.NodeIdType.String)
    assert resolve_node_id("i=2258", namespaces) == ua.NodeId(2258, 0)
    with pytest.raises(KeyError, match="urn:missing"):
        resolve_node_id("nsu=urn:missing;i=5", namespaces)


def test_plc_rejects_values_of_the_wrong_kind():
    async def main():
        async with SimulatedPlc(FACTORY, port=0) as plc:
            with pytest.raises(ValueError, match="whole numbers"):
                await plc.update("line1/printer/produced", 1.5)
            with pytest.raises(ValueError, match="expected a string"):
                await plc.update("line1/printer/product", 3)
            with pytest.raises(ValueError, match="not a twin state"):
                await plc.update("line1/printer/state", "RUNNING")
            with pytest.raises(ValueError, match="no signal"):
                await plc.update("line1/oven/state", "DOWN")
            dv = await plc.read("line1/printer/good")  # a running PLC holds a Good value from the start
            assert (dv.StatusCode.value, dv.Value.Value) == (ua.StatusCodes.Good, 0)
            assert math.isclose(len(plc.signals()), 3 * 8)

    run(main())


def test_publish_is_written_in_call_order_and_survives_a_restart(tmp_path):
    async def main():
        plc = SimulatedPlc(FACTORY, port=0)
        await plc.start()
        mapping = write_mapping(
            tmp_path,
            {"name": "plc1", "endpoint": plc.endpoint,
             "subscription": {**FAST, "queue_size": 1000}, "nodes": [node("line1/cnc-1/produced")]},
        )
        source = OpcUaClient(mapping.opcua[0], mapping.site)
        queue, task = await _start(source)
        try:
            await collect(queue, lambda got: len(got) >= 2)  # "up", the initial (Bad) value
            for count in range(1, 201):
                plc.publish("line1/cnc-1/produced", count, 1_767_600_000.0 + count)
            await plc.flush()
            got = await collect(queue, lambda got: any(s.value == 200.0 for s in got))
            await plc.stop()
            await plc.start()  # same port; the PLC keeps its last values like a real one
            kept = await plc.read("line1/cnc-1/produced")
        finally:
            await _stop(task)
            await plc.stop()
        values = [s.value for s in got]
        assert values == sorted(values) and values[-1] == 200.0  # queue_size 1000: nothing merged
        assert values == [float(v) for v in range(1, 201)]
        assert [s.ts for s in got] == [1_767_600_000.0 + v for v in range(1, 201)]
        assert kept.Value.Value == 200
        assert plc.stats() == {"updates": 200, "pending": 0, "write_errors": 0, "running": False}

    run(main())


def test_wrong_types_and_unknown_browsed_signals_are_counted_by_reason(tmp_path):
    async def main():
        async with SimulatedPlc(FACTORY, port=0) as plc:
            await plc.update("line1/printer/state", "IDLE")
            await plc.update("line1/printer/produced", 5)
            mapping = write_mapping(
                tmp_path,
                {
                    "name": "plc1",
                    "endpoint": plc.endpoint,
                    "subscription": FAST,
                    "nodes": [
                        # a string node mapped onto a numeric signal: every value is rejected
                        {"node": f"nsu={NAMESPACE_URI};s=line1/printer/product", "signal": "line1/printer/power_kw"},
                        # a number feeding a text signal is fine: product codes are often numeric
                        {"node": f"nsu={NAMESPACE_URI};s=line1/printer/produced", "signal": "line1/printer/product"},
                        {"browse": "Objects/{site}/{line}/{station}/state", "signal": "{line}/{station}/state",
                         "values": "packml"},
                    ],
                },
            )
            # the twin's factory lacks cnc-2: its browsed state is not a signal of this twin
            known = {s for s in known_signals(FACTORY) if "/cnc-2/" not in s}
            dead = tmp_path / "dead.jsonl"
            source = OpcUaClient(mapping.opcua[0], mapping.site, known, dead_letter=dead)
            queue, task = await _start(source)
            try:
                got = await collect(queue, lambda got: any(s.signal == "line1/printer/product" for s in got)
                                    and any(s.signal == "line1/printer/state" for s in got))
                # the rejected notifications of the same publish are counted as they are read: wait for them
                deadline = asyncio.get_running_loop().time() + 15.0
                while sum(source.stats()["rejected_by_reason"].values()) < 2:
                    assert asyncio.get_running_loop().time() < deadline, source.stats()
                    await asyncio.sleep(0.02)
            finally:
                await _stop(task)
        return got, source, dead

    got, source, dead = run(main())
    assert latest(got, "line1/printer/product").value == "5"
    assert latest(got, "line1/printer/state").value == "IDLE"
    assert not [s for s in got if s.signal == "line1/printer/power_kw"]
    stats = source.stats()
    assert stats["rejected_by_reason"] == {"unknown_signal": 1, "wrong_type": 1}
    assert source.signals() == {"line1/printer/power_kw", "line1/printer/product", "line1/printer/state",
                                "line1/cnc-1/state"}
    reasons = sorted(json.loads(line)["reason"] for line in dead.read_text().splitlines())
    assert reasons == ["unknown_signal", "wrong_type"]


# --- large node counts: several subscriptions -----------------------------------------------------

BULK_URI = "urn:factory-twin:test:bulk"


async def _bulk_server(port: int, count: int, base: float, max_subscriptions: int | None = None):
    """A plain asyncua server on loopback with ``count`` Double variables ``s=v0000`` ... in
    namespace BULK_URI, variable i holding ``base + i``."""
    from asyncua import Server

    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}")
    server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
    if max_subscriptions is not None:
        server.iserver.max_subscriptions = max_subscriptions
    ns = await server.register_namespace(BULK_URI)
    folder = await server.nodes.objects.add_folder(ns, "bulk")
    for i in range(count):
        await folder.add_variable(ua.NodeId(f"v{i:04d}", ns, ua.NodeIdType.String), f"v{i:04d}",
                                  ua.Variant(base + i, ua.VariantType.Double))
    await server.start()
    return server, ns


def _bulk_source(port: int, count: int, **subscription):
    from connectors.mapping import OpcUaSource

    return OpcUaSource.model_validate({
        "name": "bulk",
        "endpoint": f"opc.tcp://127.0.0.1:{port}",
        "subscription": {"publishing_interval_ms": 100, "sampling_interval_ms": 0, "queue_size": 1,
                         "batch_size": 100, **subscription},
        "nodes": [{"node": f"nsu={BULK_URI};s=v{i:04d}", "signal": f"bulk/v{i:04d}/power_kw"} for i in range(count)],
    })


def _server_subscriptions(server) -> list[tuple[int, float]]:
    """(monitored items, publishing interval ms) of every subscription the server holds."""
    subs = server.iserver.subscription_service.subscriptions.values()
    return sorted(((len(s.monitored_item_srv._monitored_items), s.data.RevisedPublishingInterval) for s in subs),
                  reverse=True)


def _values_after(samples, start: int) -> dict[str, float]:
    return {s.signal: s.value for s in samples[start:] if s.signal.startswith("bulk/")}


def test_2500_nodes_split_over_three_subscriptions_and_all_restored_after_restart(tmp_path):
    from support.opcua_server import free_port

    count = 2500
    signals = {f"bulk/v{i:04d}/power_kw" for i in range(count)}

    async def main():
        port = free_port()
        server, _ = await _bulk_server(port, count, base=0.0)
        cfg = _bulk_source(port, count, max_items_per_subscription=1000)
        source = OpcUaClient(cfg, site="suzhou-smt", dead_letter=tmp_path / "dead.jsonl",
                             reconnect_min_s=0.2, reconnect_max_s=1.0, watchdog_s=0.5)
        queue, task = await _start(source)
        try:
            got = await collect(queue, lambda got: _values_after(got, 0).keys() >= signals, timeout_s=30)
            first = _values_after(got, 0)
            before = _server_subscriptions(server), source.stats()

            await server.stop()
            # the same port, a fresh server: every subscription of the client is gone with the old one
            server, _ = await _bulk_server(port, count, base=10_000.0)
            more = await collect(
                queue,
                lambda got: [s.value for s in _up(got, "bulk")] == ["down", "up"]
                and {k for k, v in _values_after(got, 0).items() if v >= 10_000.0} >= signals,
                timeout_s=30,
            )
            restored = _values_after(more, 0)
            after = _server_subscriptions(server), source.stats()
            # live values, not only the initial ones: a node in the first and one in the last subscription
            ns = (await server.get_namespace_array()).index(BULK_URI)
            for i in (0, count - 1):
                await server.write_attribute_value(ua.NodeId(f"v{i:04d}", ns, ua.NodeIdType.String),
                                                   ua.DataValue(ua.Variant(-1.0 - i, ua.VariantType.Double)))
            live = await collect(queue, lambda got: sum(s.value < 0 for s in got) == 2)
        finally:
            await _stop(task)
            await server.stop()
        return first, before, restored, after, live

    first, before, restored, after, live = run(main())
    assert first == {f"bulk/v{i:04d}/power_kw": float(i) for i in range(count)}
    assert restored == {f"bulk/v{i:04d}/power_kw": 10_000.0 + i for i in range(count)}
    for server_subs, stats in (before, after):
        # three subscriptions, none above 1000 items, each with the configured publishing interval
        assert server_subs == [(1000, 100.0), (1000, 100.0), (500, 100.0)]
        assert (stats["subscriptions"], stats["monitored_items"], stats["failed_nodes"]) == (3, 2500, 0)
    assert after[1]["reconnects"] == 1 and after[1]["gaps"] == 1 and after[1]["rejected"] == 0
    assert {(s.signal, s.value) for s in live} == {("bulk/v0000/power_kw", -1.0), ("bulk/v2499/power_kw", -2500.0)}


def test_refused_subscription_and_bad_node_leave_the_other_nodes_flowing(tmp_path):
    from connectors.mapping import OpcUaSource
    from support.opcua_server import free_port

    async def main():
        port = free_port()
        # the server allows two subscriptions; the source needs three for its 25 nodes (one missing)
        server, _ = await _bulk_server(port, 24, base=0.0, max_subscriptions=2)
        cfg = _bulk_source(port, 24, batch_size=4, max_items_per_subscription=10)
        # a node the server does not have, in the first subscription's second batch
        nodes = [n.model_dump(exclude_none=True) for n in cfg.nodes]
        nodes.insert(5, {"node": f"nsu={BULK_URI};s=missing", "signal": "bulk/missing/power_kw"})
        cfg = OpcUaSource.model_validate({**cfg.model_dump(exclude_none=True), "nodes": nodes})
        dead = tmp_path / "dead.jsonl"
        source = OpcUaClient(cfg, site="suzhou-smt", dead_letter=dead)
        queue, task = await _start(source)
        try:
            # nodes 0..18 sit in the two subscriptions the server granted (the missing node took a place)
            want = {f"bulk/v{i:04d}/power_kw" for i in range(19)}
            got = await collect(queue, lambda got: _values_after(got, 0).keys() >= want)
            ns = (await server.get_namespace_array()).index(BULK_URI)
            await server.write_attribute_value(ua.NodeId("v0018", ns, ua.NodeIdType.String),
                                               ua.DataValue(ua.Variant(-5.0, ua.VariantType.Double)))
            got += await collect(queue, lambda got: any(s.value == -5.0 for s in got))
            stats = source.stats()
            server_subs = _server_subscriptions(server)
        finally:
            await _stop(task)
            await server.stop()
        return got, stats, server_subs, [json.loads(line) for line in dead.read_text().splitlines()]

    got, stats, server_subs, records = run(main())
    assert set(_values_after(got, 0)) == {f"bulk/v{i:04d}/power_kw" for i in range(19)}
    assert server_subs == [(10, 100.0), (9, 100.0)]
    assert (stats["subscriptions"], stats["monitored_items"], stats["failed_nodes"]) == (2, 19, 6)
    assert stats["rejected_by_reason"] == {"node_failed": 1, "subscription_refused": 5}
    # a refused subscription is not a reason to drop the connection and the nodes that work
    assert stats["connected"] is True and stats["reconnects"] == 0
    refused = [r for r in records if r["reason"] == "subscription_refused"]
    assert [r["where"] for r in refused] == [f"bulk/v{i:04d}/power_kw" for i in range(19, 24)]
    assert all("BadTooManySubscriptions" in r["detail"] for r in refused)
    assert [r["where"] for r in records if r["reason"] == "node_failed"] == ["bulk/missing/power_kw"]


def test_max_items_per_subscription_must_hold_a_batch():
    from pydantic import ValidationError

    from connectors.mapping import Subscription

    assert Subscription().max_items_per_subscription == 1000
    with pytest.raises(ValidationError, match="at least batch_size"):
        Subscription(batch_size=200, max_items_per_subscription=100)
