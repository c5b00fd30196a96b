"""``factory-twin run``: a mapping file, a real OPC UA server and a real mosquitto, into the live twin.

The line is driven by hand here (no SimPy model), so every figure the twin reports is known: the
printer's counts, the gap while its PLC is restarted, and a storm of malformed meter messages that
is counted by reason without touching the KPIs.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from typer.testing import CliRunner

from connectors.mapping import load_mapping
from connectors.mqtt.sensors import payload_of, topic_of
from connectors.opcua.plc import SimulatedPlc
from factory_models import load_factory
from tests.support.ledger_cases import assert_emissions_are_the_stored_ones
from twin.cli import app
from twin.runtime import Sinks
from twin.runtime.live import LiveOptions, run_mapping

ROOT = Path(__file__).resolve().parents[2]
SMT = ROOT / "configs" / "demo_smt.yaml"
PLC_NAMES = ("state", "product", "produced", "good", "scrap", "rework")

MAPPING = """
site: suzhou-smt
opcua:
  - name: plc
    endpoint: {endpoint}
    subscription: {{publishing_interval_ms: 100, sampling_interval_ms: 0, queue_size: 100}}
    nodes:
      - browse: "Objects/{{site}}/{{line}}/{{station}}/{{signal}}"
        signal: "{{line}}/{{station}}/{{signal}}"
        values: packml
mqtt:
  - name: meters
    url: {mqtt}
    client_id: test-run-meters
    topics:
      - pattern: "factory/{{site}}/{{line}}/{{station}}/{{signal}}"
        signal: "{{line}}/{{station}}/{{signal}}"
        field: value
"""


def publish_all(client: paho.Client, messages: list[tuple[str, bytes]]) -> None:
    infos = [client.publish(topic, payload, qos=1) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(10)


def test_run_records_the_plc_gap_and_counts_a_malformed_storm(mosquitto, tmp_path):  # noqa: F811
    factory = load_factory(SMT)
    plc = SimulatedPlc(factory, port=0)
    storm = [
        (topic_of("suzhou-smt", "smt1/printer/energy_kwh"), b"{not json"),
        (topic_of("suzhou-smt", "smt1/printer/energy_kwh"), b'{"value": "many"}'),
        (topic_of("suzhou-smt", "smt1/printer/energy_kwh"), b'{"value": NaN}'),
        (topic_of("suzhou-smt", "smt1/nowhere/energy_kwh"), b'{"value": 1.0}'),
        (topic_of("suzhou-smt", "smt1/printer/energy_kwh"), b"\xff\xfe"),
    ] * 20

    async def scenario() -> dict:
        await plc.start()
        now = time.time()
        # a running PLC holds a value in every variable before anyone connects
        for sig in plc.signals():
            name = sig.rsplit("/", 1)[-1]
            value = {"state": "IDLE", "product": "ctrl-board"}.get(name, 0.0)
            plc.publish(sig, value, now)
        await plc.flush()
        mapping_file = tmp_path / "mapping.yaml"
        mapping_file.write_text(MAPPING.format(endpoint=plc.endpoint, mqtt=mosquitto.url))
        mapping = load_mapping(mapping_file, factory)
        stop = asyncio.Event()
        seen: dict = {}
        opts = LiveOptions(progress=False, stop=stop, sinks=Sinks(store=tmp_path / "run.sqlite"), tick_s=0.2,
                           on_state=lambda doc: seen.update(doc=doc))

        async def until(what: str, cond, timeout_s: float = 30.0) -> None:
            """Wait on the twin's own state documents, not on the clock (a loaded CI machine is slow)."""
            deadline = time.monotonic() + timeout_s
            while not (seen.get("doc") and cond(seen["doc"])):
                assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
                await asyncio.sleep(0.05)

        def printer(doc) -> dict:
            return next(st["kpi"] for ln in doc["lines"] for st in ln["stations"] if st["station"] == "printer")

        task = asyncio.create_task(run_mapping(factory, SMT, mapping, opts))
        meters = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-run-sensor")
        meters.connect(mosquitto.host, mosquitto.port)
        meters.loop_start()
        try:
            await until("both sources up", lambda d: d["connections"] == {"plc": "up", "meters": "up"})
            t = time.time()
            plc.publish("smt1/printer/state", "PRODUCING", t)
            # retained: delivered once, whether the twin's subscription is already granted or not yet
            first = meters.publish(topic_of("suzhou-smt", "smt1/printer/energy_kwh"), payload_of(0.0, t),
                                   qos=1, retain=True)
            await asyncio.to_thread(first.wait_for_publish, 10)
            for i in range(1, 4):
                await asyncio.sleep(0.3)  # three readings at distinct times, a stream
                plc.publish("smt1/printer/produced", float(i), time.time())
                plc.publish("smt1/printer/good", float(i), time.time())
            await asyncio.to_thread(publish_all, meters, storm)
            await plc.flush()
            await until("three good parts counted", lambda d: printer(d)["good"] == 3)
            # the PLC restarts: the twin must record the gap, not read it as "still producing"
            await plc.stop()
            await until("the PLC's connection lost", lambda d: d["connections"]["plc"] == "down")
            await asyncio.sleep(2.5)  # the outage itself lasts this long
            await plc.start()
            await until("the PLC reconnected", lambda d: d["connections"]["plc"] == "up")
            # a restored subscription delivers the current value, so this lands whenever it is made
            plc.publish("smt1/printer/produced", 4.0, time.time())
            plc.publish("smt1/printer/good", 4.0, time.time())
            await asyncio.to_thread(publish_all, meters, [(topic_of("suzhou-smt", "smt1/printer/energy_kwh"),
                                                           payload_of(0.01, time.time()))])
            await plc.flush()
            await until("the fourth part and the last reading",
                        lambda d: printer(d)["good"] == 4 and abs((printer(d)["energy_kwh"] or 0) - 0.01) < 1e-9)
        finally:
            stop.set()
            meters.loop_stop()
            summary = await task
            await plc.stop()
        return summary

    doc = asyncio.run(scenario())
    printer = next(s for s in doc["stations"] if s["station"] == "printer")
    assert printer["produced"] == 4 and printer["good"] == 4
    assert printer["energy_kwh"] == pytest.approx(0.01)
    # the restart is a recorded gap of the PLC source, and the printer's time in it is unknown
    gaps = [g for g in doc["connections"]["gaps"] if g["source"] == "plc"]
    assert len(gaps) == 1 and gaps[0]["end"] is not None
    gap_s = gaps[0]["end"] - gaps[0]["start"]
    assert gap_s >= 2.0
    assert printer["unknown_s"] >= gap_s - 1.0
    assert doc["connections"]["state"]["plc"] == "up"
    # the storm: every malformed message counted by its reason, none of them in the KPIs
    by_reason = doc["samples"]["rejected_by_reason"]
    assert by_reason["meters:bad_json"] == 20
    assert by_reason["meters:wrong_type"] == 20
    assert by_reason["meters:not_utf8"] == 20
    assert by_reason["meters:unknown_signal"] == 20
    assert sum(v for k, v in by_reason.items() if k.startswith("meters:")) == 100
    # and each one is kept, with its reason, in the dead-letter log next to the store
    dead = (tmp_path / "deadletter" / "deadletter-meters.jsonl").read_text().splitlines()
    assert len(dead) == 100
    assert doc["sinks"]["store"]["written"] > 0
    # the run's emissions are the ledger the store holds for its hours, origin measured (issue 11): no
    # site meter here, so the stations' sub-meters stand in (estimated)
    assert_emissions_are_the_stored_ones(doc, tmp_path / "run.sqlite", "measured", SMT)
    assert {b["source"] for b in doc["emissions"]["by_source"]} == {"stations"}
    # the sinks block is the store's own: the samples written while the run ran are in it
    assert doc["sinks"]["store"]["samples"] >= doc["samples"]["used"] > 0
    # per source (issue 12, item 7): connected, reconnects, last error, samples used and rejected by reason
    plc_d, meters_d = doc["sources"]["plc"], doc["sources"]["meters"]
    assert plc_d["connected"] and plc_d["reconnects"] == 1 and plc_d["last_error"] is None
    assert plc_d["samples"]["used"] > 0 and plc_d["never_received"] == []
    assert meters_d["connected"] and meters_d["reconnects"] == 0 and meters_d["patterns_never_matched"] == []
    assert {k: meters_d["samples"]["rejected_by_reason"][k] for k in ("bad_json", "wrong_type", "not_utf8",
                                                                       "unknown_signal")} == dict.fromkeys(
        ("bad_json", "wrong_type", "not_utf8", "unknown_signal"), 20)
    # the storm used nothing: the two energy readings, and the simulated PLC's own energy node (its value
    # at start and again after the restart), counted under both sources as both deliver that signal
    assert meters_d["samples"]["used"] == 4
    # a PLC restart and a storm of bad payloads are survived by the twin and its sinks: nothing failed
    assert doc["errors"] == {}
    assert doc["loop_lag_s"]["n"] > 0 and doc["loop_lag_s"]["p50"] <= doc["loop_lag_s"]["p99"] <= doc["loop_lag_s"]["max"]


def test_run_refuses_a_mapping_naming_an_unknown_station(tmp_path):
    bad = tmp_path / "mapping.yaml"
    bad.write_text("site: suzhou-smt\nopcua:\n  - name: plc\n    endpoint: opc.tcp://127.0.0.1:4840\n"
                   "    nodes:\n      - node: \"nsu=urn:x;s=a\"\n        signal: smt1/oven9/state\n")
    result = CliRunner().invoke(app, ["run", str(SMT), "--mapping", str(bad), "--duration", "1", "--json"])
    assert result.exit_code == 2
    assert str(bad) in result.output and "oven9" in result.output and "line 7" in result.output


def test_browse_cli_writes_a_mapping_that_run_accepts(tmp_path):
    import threading

    factory = load_factory(SMT)
    ready, done = threading.Event(), threading.Event()
    box = {}

    def serve():
        async def main():
            async with SimulatedPlc(factory, port=0) as plc:
                box["endpoint"] = plc.endpoint
                ready.set()
                await asyncio.to_thread(done.wait, 60)

        asyncio.run(main())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        assert ready.wait(30)
        out = tmp_path / "draft.yaml"
        result = CliRunner().invoke(app, ["browse", box["endpoint"], "--out", str(out)])
        assert result.exit_code == 0, result.output
        mapping = load_mapping(out, factory)  # what an engineer edits loads as it is
        (source,) = mapping.opcua
        assert source.endpoint == box["endpoint"]
        assert any("nsu=urn:factory-twin:simulated-plc" in (n.node or n.browse or "") for n in source.nodes)
    finally:
        done.set()
        thread.join(30)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unreachable_mapping(tmp_path) -> Path:
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(MAPPING.format(endpoint=f"opc.tcp://127.0.0.1:{closed_port()}",
                                      mqtt=f"mqtt://127.0.0.1:{closed_port()}"))
    return mapping


def test_run_against_sources_that_never_connect_exits_3_naming_each(tmp_path):
    mapping = unreachable_mapping(tmp_path)
    result = CliRunner().invoke(app, ["run", str(SMT), "--mapping", str(mapping), "--duration", "3", "--json",
                                      "--no-store", "--no-dashboard"])
    assert result.exit_code == 3, result.output
    assert result.stdout == ""  # no all-dash table, no summary
    (line,) = [ln for ln in result.stderr.splitlines() if ln.startswith("factory-twin:")]
    assert "no source could be reached" in line
    # each source by name and where, with the reason its last attempt failed
    assert "plc (opc.tcp://127.0.0.1:" in line and "meters (mqtt://127.0.0.1:" in line
    assert "refused" in line.lower() or "errno" in line.lower(), line
    assert "Traceback" not in result.output


def test_run_gives_up_after_the_connect_timeout(tmp_path):
    from twin.runtime.live import SourcesUnreachable

    factory = load_factory(SMT)
    mapping = load_mapping(unreachable_mapping(tmp_path), factory)
    opts = LiveOptions(progress=False, sinks=Sinks(store=None), connect_timeout_s=1.0)  # no duration: until then

    async def scenario():
        t0 = time.monotonic()
        with pytest.raises(SourcesUnreachable, match=r"no source could be reached: .*plc \(opc\.tcp:"):
            await run_mapping(factory, SMT, mapping, opts)
        return time.monotonic() - t0

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) < 15


def test_run_names_a_source_that_never_connects_while_another_does(mosquitto, tmp_path, caplog):  # noqa: F811
    import logging

    factory = load_factory(SMT)
    mapping_file = tmp_path / "mapping.yaml"
    mapping_file.write_text(MAPPING.format(endpoint=f"opc.tcp://127.0.0.1:{closed_port()}", mqtt=mosquitto.url))
    mapping = load_mapping(mapping_file, factory)
    caplog.set_level(logging.WARNING, logger="twin.runtime.live")
    stop = asyncio.Event()
    opts = LiveOptions(progress=False, stop=stop, sinks=Sinks(store=None), connect_timeout_s=1.0, tick_s=0.2)

    async def scenario() -> dict:
        task = asyncio.create_task(run_mapping(factory, SMT, mapping, opts))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 20
        while not any("not connected after" in r.getMessage() for r in caplog.records):
            assert loop.time() < deadline and not task.done()
            await asyncio.sleep(0.05)
        stop.set()
        return await task

    doc = asyncio.run(scenario())  # one source up: the run goes on and ends normally
    assert doc["connections"]["state"].get("meters") == "up"
    (w,) = [r.getMessage() for r in caplog.records if "not connected after" in r.getMessage()]
    assert "plc (opc.tcp://127.0.0.1:" in w and "meters" not in w
