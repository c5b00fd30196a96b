"""Benchmark: samples/s from MQTT and OPC UA into the live twin's KPIs, against the raw protocol
clients on the same broker/server, measured in the same run.

    python -m bench.ingest [--messages N] [--rounds R] [--latency-s S] [--latency-rate R]
                           [--opcua-rate R] [--opcua-s S] [--skip mqtt,latency,opcua] [--json]

A real mosquitto (``/usr/sbin/mosquitto``) on a free loopback port, its own temp dir, and a real
asyncua server (``connectors.opcua.plc.SimulatedPlc`` of ``configs/demo_smt.yaml``, in its own
process so it does not share the GIL with the clients).

MQTT throughput (pre-loaded backlog, so both sides get exactly the same messages at the broker's
pace, not at a publisher's): two persistent sessions (``clean_session=False``) subscribe to
``factory/<site>/+/+/+`` at QoS 1 and disconnect; ``--messages`` QoS 1 messages in the default
convention (``sensors.topic_of`` / ``sensors.payload_of``, every metered signal of the demo
factory in turn, one millisecond of ``ts`` apart) are published while both are away, so the broker
queues a copy for each. Then, one after the other (order alternated per round):

- ``raw``:  a plain paho client (callback API v2, QoS 1, ``loop_start``) connects with its session
            and counts ``on_message`` until it has all N; timed from ``connect`` to the last one;
- ``twin``: ``MqttClient`` -> ``asyncio.Queue`` -> ``LiveTwin.consume`` (every sample routed into
            the event log), timed from ``run`` until the router has seen all N, then one KPI
            snapshot; ``twin_rate`` counts the time up to the end of that snapshot (all N in the
            KPIs), ``twin_log_rate`` only up to the last sample in the event log.

The broker sends a reconnecting session its queue with mosquitto's ``max_inflight_messages``
(default 20) unacknowledged at a time, the same for both. Rates are medians over rounds, the
ratio is the median of the per-round ratios (the machine is shared and noisy).

Latency: two publisher processes offer ``--latency-rate`` messages/s between them (QoS 1, ``ts`` =
publish time) for ``--latency-s`` seconds; the twin snapshots its KPIs every 0.25 s.
``delivered_rate`` is what actually reached the twin (used samples over the time from the start of
publishing to the last one received): on 2 shared cores the publishers, mosquitto and the twin
compete, and it has stayed well below the offered rate, so read the figures with it. Reported:
receipt-to-KPI latency (``LiveTwin.latency_s``: from the sample leaving the queue to the end of
the snapshot that includes it) and publish-to-KPI latency (the snapshot's end minus the payload's
publish time; same host clock, millisecond resolution), p50/p99.

OPC UA: the simulated PLC's process writes ``--opcua-rate`` values/s round-robin over the
``power_kw`` Double nodes of the eight stations (values always change), without pause for the
whole phase. asyncua's server is CPU-bound near 20,000 value writes/s on one core here, and each
subscription adds work per notification, so the offered rate is kept well below that (default
6,000/s) and the server's achieved rate is reported. One after the other on the same stream
(publishing interval 100 ms, sampling interval 0, queue size 1000 per item):

- ``raw``:  an asyncua ``Client`` subscription whose handler counts ``datachange_notification``;
- ``twin``: ``OpcUaClient`` -> ``asyncio.Queue`` -> ``LiveTwin.consume``, KPI snapshot at the end.

Each counts notifications over ``--opcua-s`` seconds after a 1 s warm-up. While both keep up with
the server the rates equal its rate, so the client process's CPU time per sample is reported too:
``cpu_ratio`` = raw CPU per sample / twin CPU per sample estimates how far the twin path could go
relative to the raw client if the server were not the limit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from connectors.mapping import MqttSource
from connectors.mqtt.client import MqttClient
from connectors.mqtt.sensors import metered_signals, payload_of, topic_of
from factory_models.signals import known_signals
from factory_models import load_factory

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "configs" / "demo_smt.yaml"
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
SNAPSHOT_S = 0.25


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pct(values, q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if len(values) else None


# --- the broker ---------------------------------------------------------------------------------


class Broker:
    """mosquitto on a free loopback port with persistence in a temp dir (as tests/mqtt_broker.py)."""

    def __init__(self, workdir: Path):
        self.port = _free_port()
        self.host = "127.0.0.1"
        conf = workdir / "mosquitto.conf"
        conf.write_text("\n".join([
            f"listener {self.port} 127.0.0.1",
            "user root",
            "allow_anonymous true",
            "persistence true",
            f"persistence_location {workdir}/",
            "autosave_interval 0",
            "max_queued_messages 0",  # no cap: the whole backlog waits for each away session
            "max_queued_bytes 0",
            f"log_dest file {workdir}/mosquitto.log",
        ]) + "\n")
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("mosquitto did not start") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _paho(client_id: str, clean: bool) -> paho.Client:
    return paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                       clean_session=clean, protocol=paho.MQTTv311)


def make_session(broker: Broker, client_id: str, subscription: str) -> None:
    """Create a persistent session subscribed at QoS 1, then leave (the broker queues for it)."""
    c = _paho(client_id, False)
    c.connect(broker.host, broker.port)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.loop_start()
    c.subscribe(subscription, qos=1)
    if not done.wait(10):
        raise RuntimeError(f"{client_id}: no SUBACK")
    c.disconnect()
    c.loop_stop()


def messages(site: str, signals: list[str], n: int, t0: float) -> list[tuple[str, bytes]]:
    """n default-convention messages over ``signals`` in turn; counters rise, gauges stay >= 0."""
    topics = [topic_of(site, s) for s in signals]
    out = []
    for k in range(n):
        i = k % len(signals)
        value = k * 0.001 if not signals[i].endswith("power_kw") else (k % 1000) * 0.1
        out.append((topics[i], payload_of(value, t0 + k * 0.001)))
    return out


def publish_all(broker: Broker, msgs: list[tuple[str, bytes]]) -> float:
    """Publish at QoS 1, at most 1000 in flight, waiting for every PUBACK; returns seconds taken."""
    pub = _paho("bench-ingest-pub", True)
    pub.max_inflight_messages_set(1000)
    acked = [0]
    cond = threading.Condition()

    def on_publish(*_):
        with cond:
            acked[0] += 1
            cond.notify_all()

    pub.on_publish = on_publish
    pub.connect(broker.host, broker.port)
    pub.loop_start()
    t = time.perf_counter()
    chunk = 20_000  # QoS 1 message ids are 16-bit: never more than 65,535 unacknowledged
    for start in range(0, len(msgs), chunk):
        for topic, payload in msgs[start:start + chunk]:
            pub.publish(topic, payload, qos=1)
        with cond:
            cond.wait_for(lambda: acked[0] >= min(start + chunk, len(msgs)), 120)
    took = time.perf_counter() - t
    pub.disconnect()
    pub.loop_stop()
    return took


# --- MQTT throughput ------------------------------------------------------------------------------


def drain_raw(broker: Broker, client_id: str, subscription: str, n: int) -> tuple[float, float]:
    """(seconds, CPU seconds of this process) for a plain paho client to receive n queued QoS 1
    messages from its session."""
    got = [0]
    done = threading.Event()
    c = _paho(client_id, False)

    def on_connect(client, userdata, flags, rc, props):
        client.subscribe(subscription, qos=1)

    def on_message(client, userdata, msg):
        got[0] += 1
        if got[0] >= n:
            done.set()

    c.on_connect = on_connect
    c.on_message = on_message
    t, cpu = time.perf_counter(), time.process_time()
    c.connect_async(broker.host, broker.port)
    c.loop_start()
    if not done.wait(300):
        raise RuntimeError(f"raw paho: {got[0]} of {n} messages")
    took, cpu = time.perf_counter() - t, time.process_time() - cpu
    c.disconnect()
    c.loop_stop()
    return took, cpu


async def drain_twin(factory, cfg: MqttSource, n: int, tmp: Path) -> dict:
    """MqttClient -> Queue -> LiveTwin.consume until the router saw n samples, then one snapshot."""
    from twin.shadow.live_twin import LiveTwin

    client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp / "deadletter.jsonl")
    twin = LiveTwin(factory, source_signals={client.name: client.signals()})
    queue: asyncio.Queue = asyncio.Queue(maxsize=200_000)  # as twin/runtime/live.py
    t, cpu = time.perf_counter(), time.process_time()
    tasks = [asyncio.create_task(client.run(queue)), asyncio.create_task(twin.consume(queue))]
    try:
        while twin.router.received < n:
            if any(task.done() for task in tasks):
                for task in tasks:
                    if task.done():
                        task.result()
            await asyncio.sleep(0.002)
        t_log, cpu_log = time.perf_counter() - t, time.process_time() - cpu
        snap = twin.snapshot()
        t_kpi, cpu_kpi = time.perf_counter() - t, time.process_time() - cpu
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    counts = twin.router.counts()
    if counts["used"] != n:
        raise RuntimeError(f"twin: {counts} of {n}; source {client.stats()}")
    return {"log_s": t_log, "kpi_s": t_kpi, "cpu_log_s": cpu_log, "cpu_kpi_s": cpu_kpi, "used": counts["used"], "hour_energy_kwh": snap.hour.site.energy_kwh}


def mqtt_throughput(factory, broker: Broker, n: int, rounds: int, tmp: Path) -> dict:
    site = factory.site.name
    sub = f"factory/{site}/+/+/+"
    cfg = MqttSource.model_validate({"name": "meters", "url": broker.url, "client_id": "bench-ingest-twin",
                                     "topics": [{"pattern": "factory/{site}/{line}/{station}/{signal}"}]})
    for cid in ("bench-ingest-raw", "bench-ingest-twin"):
        make_session(broker, cid, sub)
    signals = metered_signals(factory)
    per_round = []
    for r in range(rounds):
        t0 = time.time() - 1800 + r * n * 0.001  # distinct ts per round, all within the last hour
        msgs = messages(site, signals, n, t0)
        pub_s = publish_all(broker, msgs)
        del msgs
        res = {"publish_s": pub_s}
        order = ("raw", "twin") if r % 2 == 0 else ("twin", "raw")
        for which in order:
            if which == "raw":
                res["raw_s"], res["raw_cpu_s"] = drain_raw(broker, "bench-ingest-raw", sub, n)
            else:
                res["twin"] = asyncio.run(drain_twin(factory, cfg, n, tmp))
        raw_rate = n / res["raw_s"]
        twin_rate = n / res["twin"]["kpi_s"]
        twin_log_rate = n / res["twin"]["log_s"]
        per_round.append({"raw_rate": raw_rate, "twin_rate": twin_rate, "twin_log_rate": twin_log_rate,
                          "ratio": twin_rate / raw_rate, "log_ratio": twin_log_rate / raw_rate,
                          "publish_rate": n / pub_s,
                          "raw_cpu_us": 1e6 * res["raw_cpu_s"] / n, "twin_cpu_us": 1e6 * res["twin"]["cpu_kpi_s"] / n,
                          "twin_log_cpu_us": 1e6 * res["twin"]["cpu_log_s"] / n})
        p = per_round[-1]
        log(f"mqtt round {r + 1}/{rounds} ({'/'.join(order)}): raw {raw_rate:,.0f}/s ({p['raw_cpu_us']:.1f} us CPU each), "
            f"twin {twin_rate:,.0f}/s ({p['twin_cpu_us']:.1f} us), log {twin_log_rate:,.0f}/s "
            f"({p['twin_log_cpu_us']:.1f} us), ratio {twin_rate / raw_rate:.2f}")
    med = {k: statistics.median(p[k] for p in per_round) for k in per_round[0]}
    return {"messages": n, "rounds": rounds, "method": "pre-loaded backlog (persistent sessions, published while away)",
            "raw_paho_rate": med["raw_rate"], "twin_rate": med["twin_rate"], "twin_log_rate": med["twin_log_rate"],
            "ratio": med["ratio"], "log_ratio": med["log_ratio"], "publish_rate": med["publish_rate"],
            "raw_cpu_us_per_sample": med["raw_cpu_us"], "twin_cpu_us_per_sample": med["twin_cpu_us"],
            "twin_log_cpu_us_per_sample": med["twin_log_cpu_us"],
            "target_ratio": 0.8, "per_round": per_round}


# --- MQTT latency -----------------------------------------------------------------------------------


def publisher_main(host: str, port: int, rate: float, seconds: float, site: str, part: int = 0, parts: int = 1) -> None:
    """Child process: offer ``rate`` QoS 1 messages/s for ``seconds``, ``ts`` = publish time, over
    its share (``part`` of ``parts``) of the metered signals."""
    factory = load_factory(CONFIG)
    signals = metered_signals(factory)[part::parts]
    topics = [topic_of(site, s) for s in signals]
    pub = _paho(f"bench-ingest-latency-pub-{part}", True)
    pub.max_inflight_messages_set(2000)
    pub.max_queued_messages_set(60_000)
    pub.connect(host, port)
    pub.loop_start()
    connected = threading.Event()
    pub.on_connect = lambda *a: connected.set()
    connected.wait(10)
    # every publisher starts at once: each says it is ready, then waits for the parent's "go"
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.time()
    sent = 0
    energy = 0.0
    last_ms = [0] * len(signals)
    total = int(rate * seconds)
    while sent < total:
        due = min(total, int((time.time() - t0) * rate))
        while sent < due:
            i = sent % len(signals)
            if signals[i].endswith("power_kw"):
                value = (sent % 1000) * 0.1
            else:
                energy += 0.001
                value = energy
            # ts is in ms and a (signal, ts) seen twice is a duplicate: keep each signal's ts rising
            ms = last_ms[i] = max(round(time.time() * 1000), last_ms[i] + 1)
            pub.publish(topics[i], payload_of(value, ms / 1000), qos=1)
            sent += 1
        time.sleep(0.002)
    publish_s = time.time() - t0
    deadline = time.time() + 30
    while (pub.want_write() or pub._out_messages) and time.time() < deadline:  # until all are acknowledged
        time.sleep(0.05)
    pub.disconnect()
    pub.loop_stop()
    print(json.dumps({"sent": sent, "seconds": publish_s}), flush=True)


async def mqtt_latency(factory, broker: Broker, rate: float, seconds: float, tmp: Path) -> dict:
    from twin.shadow.live_twin import LiveTwin

    class TimedTwin(LiveTwin):
        """Keeps each used sample's ``ts`` (its publish time) until the snapshot that includes it."""

        def __init__(self, *a, **kw):
            super().__init__(*a, **kw)
            self.pending_ts: list[float] = []
            self.publish_to_kpi: list[float] = []
            self.first_receipt = float("inf")
            self.last_receipt = 0.0

        def add(self, sample):
            used = super().add(sample)
            if used:
                self.pending_ts.append(sample.ts)
                now = time.time()
                if not sample.signal.startswith("connection/"):  # in-band, not a measured sample
                    self.first_receipt = min(self.first_receipt, now)
                    self.last_receipt = now
            return used

        def snapshot(self, now=None):
            snap = super().snapshot(now)
            done = time.time()
            self.publish_to_kpi.extend(done - t for t in self.pending_ts)
            self.pending_ts = []
            return snap

    cfg = MqttSource.model_validate({"name": "meters", "url": broker.url, "client_id": "bench-ingest-latency",
                                     "topics": [{"pattern": "factory/{site}/{line}/{station}/{signal}"}]})
    client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp / "deadletter-latency.jsonl")
    twin = TimedTwin(factory, source_signals={client.name: client.signals()})
    queue: asyncio.Queue = asyncio.Queue(maxsize=200_000)
    snap_s: list[float] = []

    async def ticker():
        while True:
            await asyncio.sleep(SNAPSHOT_S)
            t = time.perf_counter()
            twin.snapshot()
            snap_s.append(time.perf_counter() - t)

    tasks = [asyncio.create_task(client.run(queue)), asyncio.create_task(twin.consume(queue))]
    while not client.stats()["connected"]:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # subscribed
    tasks.append(asyncio.create_task(ticker()))
    parts = 2  # one Python publisher cannot offer 10,000 QoS 1 messages/s here
    t_start = time.perf_counter()
    procs = [await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.ingest", "--_publisher", broker.host, str(broker.port), str(rate / parts),
        str(seconds), factory.site.name, str(part), str(parts), stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, cwd=str(ROOT))
        for part in range(parts)]
    for p in procs:  # started, connected: the offered rate is the sum from the same instant
        assert (await p.stdout.readline()).strip() == b"ready"
    for p in procs:
        p.stdin.write(b"go\n")
        await p.stdin.drain()
    reports = [json.loads((await p.communicate())[0].decode().strip().splitlines()[-1]) for p in procs]
    pub_report = {"sent": sum(r["sent"] for r in reports), "seconds": max(r["seconds"] for r in reports) + 1.0}
    sent = pub_report["sent"]
    deadline = time.monotonic() + 30
    while twin.router.received < sent and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    t_received = time.perf_counter() - t_start
    await asyncio.sleep(2 * SNAPSHOT_S)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lat = list(twin.latency_s)
    pub = twin.publish_to_kpi
    return {
        "offered_rate": rate, "seconds": seconds, "sent": sent,
        "publisher_s": pub_report["seconds"] - 1.0,  # it lingers 1 s for the last acknowledgements
        "used": twin.router.counts()["used"],
        # from the first sample to the last one received: the publishers' start-up is not ingest time
        "delivered_rate": twin.router.counts()["used"] / max(twin.last_receipt - twin.first_receipt, 1e-9),
        "wall_s_including_publisher_startup": t_received,
        "snapshot_every_s": SNAPSHOT_S,
        "receipt_to_kpi_p50_s": _pct(lat, 50), "receipt_to_kpi_p99_s": _pct(lat, 99),
        "publish_to_kpi_p50_s": _pct(pub, 50), "publish_to_kpi_p99_s": _pct(pub, 99),
        "snapshot_p50_s": _pct(snap_s, 50), "snapshot_max_s": max(snap_s) if snap_s else None,
        "target_p99_s": 1.0,
    }


# --- OPC UA ---------------------------------------------------------------------------------------


def opcua_server_main(rate: float) -> None:
    """Child process: the simulated PLC, writing ``rate`` power_kw values/s round-robin, forever."""

    async def serve():
        from connectors.opcua.plc import SimulatedPlc

        factory = load_factory(CONFIG)
        plc = SimulatedPlc(factory, host="127.0.0.1", port=0)
        await plc.start()
        signals = [s for s in plc.signals() if s.endswith("/power_kw")]
        for s in signals:
            await plc.update(s, 0.0)
        print(json.dumps({"endpoint": plc.endpoint, "nodes": [plc.node_id(s) for s in signals],
                          "signals": signals}), flush=True)
        t0 = time.monotonic()
        k = 0
        last_report = t0
        while True:
            due = int((time.monotonic() - t0) * rate)
            while k < due:
                s = signals[k % len(signals)]
                await plc.update(s, float(k), None)
                k += 1
            now = time.monotonic()
            if now - last_report >= 1.0:
                print(json.dumps({"t": now - t0, "writes": k}), flush=True)
                last_report = now
            await asyncio.sleep(0.001)

    asyncio.run(serve())


class _Counter:
    def __init__(self):
        self.n = 0

    def datachange_notification(self, node, val, data):
        self.n += 1


async def opcua_raw(endpoint: str, nodes: list[str], warmup_s: float, seconds: float) -> dict:
    from asyncua import Client, ua

    from connectors.opcua.client import resolve_node_id

    client = Client(endpoint)
    await client.connect()
    try:
        ns = await client.get_namespace_array()
        handler = _Counter()
        params = ua.CreateSubscriptionParameters(RequestedPublishingInterval=100, RequestedLifetimeCount=600,
                                                 RequestedMaxKeepAliveCount=100, MaxNotificationsPerPublish=0,
                                                 PublishingEnabled=True, Priority=0)
        sub = await client.create_subscription(params, handler)
        await sub.subscribe_data_change([client.get_node(resolve_node_id(n, ns)) for n in nodes],
                                        queuesize=1000, sampling_interval=0)
        await asyncio.sleep(warmup_s)
        n0, c0, t0 = handler.n, time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        n1, c1, t1 = handler.n, time.process_time(), time.perf_counter()
        await sub.delete()
    finally:
        await client.disconnect()
    return {"rate": (n1 - n0) / (t1 - t0), "cpu_us_per_sample": 1e6 * (c1 - c0) / max(n1 - n0, 1)}


async def opcua_twin(factory, endpoint: str, nodes: list[str], signals: list[str], warmup_s: float,
                     seconds: float, tmp: Path) -> dict:
    from connectors.mapping import OpcUaNode, OpcUaSource, Subscription
    from connectors.opcua.client import OpcUaClient
    from twin.shadow.live_twin import LiveTwin

    cfg = OpcUaSource(name="plc", endpoint=endpoint,
                      subscription=Subscription(publishing_interval_ms=100, sampling_interval_ms=0, queue_size=1000),
                      nodes=[OpcUaNode(node=n, signal=s) for n, s in zip(nodes, signals)])
    client = OpcUaClient(cfg, factory.site.name, known_signals(factory), tmp / "deadletter-plc.jsonl")
    twin = LiveTwin(factory, source_signals={client.name: client.signals()})
    queue: asyncio.Queue = asyncio.Queue(maxsize=200_000)
    tasks = [asyncio.create_task(client.run(queue)), asyncio.create_task(twin.consume(queue))]
    try:
        deadline = time.monotonic() + 20
        while client.stats()["monitored_items"] < len(nodes) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(warmup_s)
        n0, c0, t0 = twin.router.received, time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        twin.snapshot()
        n1, c1, t1 = twin.router.received, time.process_time(), time.perf_counter()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return {"rate": (n1 - n0) / (t1 - t0), "cpu_us_per_sample": 1e6 * (c1 - c0) / max(n1 - n0, 1),
            "rejected": twin.router.counts()["rejected"]}


def opcua_bench(factory, rate: float, seconds: float, rounds: int, tmp: Path) -> dict:
    proc = subprocess.Popen([sys.executable, "-m", "bench.ingest", "--_opcua-server", str(rate)],
                            stdout=subprocess.PIPE, cwd=str(ROOT), text=True)
    writes: list[tuple[float, int]] = []
    try:
        info = json.loads(proc.stdout.readline())

        def reader():
            for line in proc.stdout:
                d = json.loads(line)
                writes.append((d["t"], d["writes"]))

        threading.Thread(target=reader, daemon=True).start()
        per_round = []
        for r in range(rounds):
            res = {}
            for which in (("raw", "twin") if r % 2 == 0 else ("twin", "raw")):
                if which == "raw":
                    res["raw"] = asyncio.run(opcua_raw(info["endpoint"], info["nodes"], 1.0, seconds))
                else:
                    res["twin"] = asyncio.run(opcua_twin(factory, info["endpoint"], info["nodes"], info["signals"],
                                                         1.0, seconds, tmp))
            per_round.append({
                "raw_rate": res["raw"]["rate"], "twin_rate": res["twin"]["rate"],
                "ratio": res["twin"]["rate"] / res["raw"]["rate"],
                "raw_cpu_us": res["raw"]["cpu_us_per_sample"], "twin_cpu_us": res["twin"]["cpu_us_per_sample"],
                "cpu_ratio": res["raw"]["cpu_us_per_sample"] / res["twin"]["cpu_us_per_sample"],
            })
            p = per_round[-1]
            log(f"opcua round {r + 1}/{rounds}: raw {p['raw_rate']:,.0f}/s ({p['raw_cpu_us']:.1f} us CPU each), "
                f"twin {p['twin_rate']:,.0f}/s ({p['twin_cpu_us']:.1f} us), ratio {p['ratio']:.2f}, cpu ratio {p['cpu_ratio']:.2f}")
    finally:
        proc.terminate()
        proc.wait(10)
    achieved = None
    if len(writes) >= 2:
        (ta, wa), (tb, wb) = writes[0], writes[-1]
        achieved = (wb - wa) / (tb - ta) if tb > ta else None
    med = {k: statistics.median(p[k] for p in per_round) for k in per_round[0]}
    return {"offered_rate": rate, "server_write_rate": achieved, "nodes": len(info["nodes"]), "seconds": seconds,
            "raw_asyncua_rate": med["raw_rate"], "twin_rate": med["twin_rate"], "ratio": med["ratio"],
            "raw_cpu_us_per_sample": med["raw_cpu_us"], "twin_cpu_us_per_sample": med["twin_cpu_us"],
            "cpu_ratio": med["cpu_ratio"], "target_ratio": 0.8, "per_round": per_round}


# --- main -------------------------------------------------------------------------------------------


def _warm_up(factory) -> None:
    """One snapshot of a small twin, so no timed phase pays for compiling the KPI kernels."""
    from factory_models import Sample
    from twin.shadow.live_twin import LiveTwin

    t = time.perf_counter()
    twin = LiveTwin(factory)
    now = time.time()
    for k, signal in enumerate(metered_signals(factory)):
        twin.add(Sample(signal, 1.0, now - 10 + k * 0.01))
    twin.snapshot()
    log(f"KPI core warmed up in {time.perf_counter() - t:.1f} s")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--_publisher":
        host, port, rate, seconds, site, part, parts = argv[1:8]
        publisher_main(host, int(port), float(rate), float(seconds), site, int(part), int(parts))
        return 0
    if argv and argv[0] == "--_opcua-server":
        opcua_server_main(float(argv[1]))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.ingest", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000, help="MQTT backlog per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--latency-rate", type=float, default=10_000.0)
    parser.add_argument("--latency-s", type=float, default=10.0)
    parser.add_argument("--opcua-rate", type=float, default=6_000.0)
    parser.add_argument("--opcua-s", type=float, default=5.0)
    parser.add_argument("--skip", default="", help="comma-separated: mqtt, latency, opcua")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    skip = set(filter(None, args.skip.split(",")))
    factory = load_factory(CONFIG)
    _warm_up(factory)
    out: dict = {"bench": "ingest", "config": str(CONFIG.relative_to(ROOT)), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as d:
        tmp = Path(d)
        if not skip >= {"mqtt", "latency"}:
            broker = Broker(tmp)
            try:
                if "mqtt" not in skip:
                    out["mqtt"] = mqtt_throughput(factory, broker, args.messages, args.rounds, tmp)
                if "latency" not in skip:
                    out["latency"] = asyncio.run(mqtt_latency(factory, broker, args.latency_rate, args.latency_s, tmp))
                    lat = out["latency"]
                    log(f"latency at {args.latency_rate:,.0f}/s: receipt->KPI p50 {lat['receipt_to_kpi_p50_s']:.3f} s "
                        f"p99 {lat['receipt_to_kpi_p99_s']:.3f} s; publish->KPI p50 {lat['publish_to_kpi_p50_s']:.3f} s "
                        f"p99 {lat['publish_to_kpi_p99_s']:.3f} s")
            finally:
                broker.stop()
        if "opcua" not in skip:
            out["opcua"] = opcua_bench(factory, args.opcua_rate, args.opcua_s, args.rounds, tmp)
    if args.json:
        print(json.dumps(out))
    else:
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
