"""Benchmark: a synthetic site of 20 lines x 10 stations over MQTT, one process owning every line
against two processes owning ten lines each (``run --lines``, docs/deployment.md).

    python -m bench.site [--lines 20] [--stations 10] [--messages N] [--seconds S] [--rate R]
                         [--tick S] [--no-store] [--json]

A real mosquitto (``/usr/sbin/mosquitto``) on a free loopback port. Each twin process is
``twin.runtime.live.run_mapping`` with its ``--lines`` partition, in a process of its own (spawned),
writing to one SQLite store shared by the processes of a phase (``--no-store``: none), with a probe
sink after the store: it sees each snapshot's new samples once their KPIs are computed and the
store has them.

Throughput (pre-loaded backlog, so the broker's pace and not a publisher's is what the twins get):
each process's persistent session (the client id and topic filters ``run --lines`` gives it) is
made first, then ``--messages`` QoS 1 messages in the default convention (state, produced count
and power of every station in turn, one millisecond of ``ts`` apart) are published while the
sessions are away. Then the processes start and drain their queues; a process's rate is its samples
taken into the KPIs over the time from its first snapshot with samples to the one that holds its
last (``samples_per_s``); ``site_samples_per_s`` is the sum over the processes of a phase.

Latency: a publisher process offers ``--rate`` messages/s (QoS 0, ``ts`` = publish time) for
``--seconds`` after every twin process has taken a first sample; p50/p99 of the time from a
sample's ``ts`` to the end of the KPI snapshot (and store write) that holds it, per process, and
the rate each process took. Publisher, broker and twins share the machine's cores: read the
figures with the machine's load (printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from bench.ingest import Broker, publish_all
from connectors.mqtt.sensors import payload_of, topic_of

SITE = "bench-site"
POWER = {"producing": 5, "setup": 2, "down": 1, "idle": 1.5, "planned_stop": 0.5, "no_shift": 0.2}
NAMES = ("state", "produced", "power_kw")


def site_doc(lines: int, stations: int) -> dict:
    return {"site": {"name": SITE, "country": "CN"}, "products": [{"name": "p"}],
            "calendar": {"timezone": "UTC", "workdays": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
            "lines": [{"name": f"l{i + 1:02d}", "stations": [{"name": f"s{j + 1:02d}", "cycle_time_s": {"p": 10},
                                                               "power_kw": POWER} for j in range(stations)]}
                      for i in range(lines)]}


def mapping_doc(url: str) -> dict:
    return {"site": SITE, "mqtt": [{"name": "bus", "url": url, "client_id": "bench-site", "qos": 1,
                                    "topics": [{"pattern": "factory/{site}/{line}/{station}/{signal}"}]}]}


def signals(doc: dict) -> list[str]:
    return [f"{ln['name']}/{st['name']}/{n}" for ln in doc["lines"] for st in ln["stations"] for n in NAMES]


def value_of(signal: str, k: int) -> float | str:
    if signal.endswith("/state"):
        return "PRODUCING" if (k // 7) % 5 else "IDLE"
    return float(k) if signal.endswith("/produced") else float(k % 100) * 0.1


def splits(doc: dict, processes: int) -> list[list[str]]:
    names = [ln["name"] for ln in doc["lines"]]
    per = -(-len(names) // processes)
    return [names[i:i + per] for i in range(0, len(names), per)]


def session_of(doc: dict, url: str, lines: list[str]) -> tuple[str, list[str]]:
    """The client id and topic filters ``run --lines`` gives the process owning ``lines``."""
    from connectors.mapping import Mapping
    from factory_models import Factory
    from twin.runtime.lines import narrow_mapping, partition

    part = partition(Factory.model_validate(doc), ",".join(lines))
    src = narrow_mapping(Mapping.model_validate(mapping_doc(url)), part).mqtt[0]
    return src.client_id, [f"factory/{SITE}/{h}/+/+" for h in part.heads()]


def make_session(broker: Broker, client_id: str, filters: list[str]) -> None:
    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                    clean_session=False, protocol=paho.MQTTv311)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.subscribe([(f, 1) for f in filters])
    if not done.wait(10):
        raise RuntimeError(f"{client_id}: no SUBACK")
    c.disconnect()
    c.loop_stop()


# --- the twin process -------------------------------------------------------------------------


class Probe:
    """A sink after the store: counts each snapshot's new samples and their ts-to-KPI latency."""

    sink_name = "probe"

    def __init__(self, ready, measure_from, expected: int | None):
        self.ready, self.measure_from, self.expected = ready, measure_from, expected
        self.stop: asyncio.Event | None = None
        self.used, self.first, self.first_n, self.last = 0, None, 0, None
        self.latency: list[float] = []

    def write_samples(self, samples, site) -> int:
        now = time.time()
        n = len(samples)
        self.used += n
        if self.first is None:
            self.first, self.first_n = now, n
            self.ready.set()
        self.last = now
        t0 = self.measure_from.value
        if t0 > 0:
            self.latency.extend(now - s.ts for s in samples if s.ts >= t0)
        if self.expected is not None and self.used >= self.expected and self.stop is not None:
            self.stop.set()
        return n

    def write_windows(self, records) -> int:
        return 0

    def write_emissions(self, records) -> int:
        return 0

    def health(self) -> dict:
        return {}

    def close(self) -> dict:
        return {"used": self.used}


def twin_main(spec: dict, ready, measure_from, done, out) -> None:
    from connectors.mapping import Mapping
    from factory_models import Factory
    from twin.runtime import Sinks
    from twin.runtime.lines import partition
    from twin.runtime.live import LiveOptions, run_mapping

    factory = Factory.model_validate(spec["factory"])
    mapping = Mapping.model_validate(spec["mapping"])
    probe = Probe(ready, measure_from, spec.get("expected"))
    store = Path(spec["store"]) if spec["store"] else None
    opts = LiveOptions(sinks=Sinks(store=store), progress=False, tick_s=spec["tick"], extra_sinks=(probe,),
                       partition=partition(factory, ",".join(spec["lines"])), connect_timeout_s=60)

    async def main() -> dict:
        opts.stop = probe.stop = asyncio.Event()

        async def watch_done() -> None:  # the latency phase ends when the publisher says so
            while not done.is_set():
                await asyncio.sleep(0.1)
            opts.stop.set()
        watcher = asyncio.create_task(watch_done())
        try:
            return await run_mapping(factory, Path("bench-site.yaml"), mapping, opts)
        finally:
            watcher.cancel()

    cpu = time.process_time()
    doc = asyncio.run(main())
    took = (probe.last or 0) - (probe.first or 0)
    lat = np.asarray(probe.latency) if probe.latency else None
    out.put({"lines": len(spec["lines"]), "used": probe.used, "rejected": doc["samples"]["rejected"],
             "samples_per_s": (probe.used - probe.first_n) / took if took > 0 else None,
             "latency_p50_s": None if lat is None else float(np.percentile(lat, 50)),
             "latency_p99_s": None if lat is None else float(np.percentile(lat, 99)),
             "latency_n": 0 if lat is None else len(lat), "cpu_s": time.process_time() - cpu,
             "errors": doc.get("errors") or {}})


def publisher_main(host: str, port: int, sigs: list[str], rate: float, seconds: float, readies, measure_from, done) -> None:
    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="bench-site-pub", protocol=paho.MQTTv311)
    c.max_queued_messages_set(0)
    c.connect(host, port)
    c.loop_start()
    topics = [topic_of(SITE, s) for s in sigs]
    k = 0
    deadline = time.monotonic() + 120
    while not all(r.is_set() for r in readies):  # a trickle until every twin has taken a sample
        if time.monotonic() > deadline:
            raise RuntimeError("a twin process took no sample within 120 s")
        for i in range(0, len(sigs), 3 * 10):  # the first station's state of every line
            c.publish(topics[i], payload_of(value_of(sigs[i], k), time.time()), qos=0)
        k += 1
        time.sleep(0.05)
    measure_from.value = time.time()
    step = 0.01
    t_next, t_end = time.monotonic(), time.monotonic() + seconds
    sent, last = 0, [0.0] * len(sigs)
    while time.monotonic() < t_end:
        target = int(rate * (time.monotonic() - (t_end - seconds)))
        while sent < target:
            i = sent % len(sigs)
            # a signal's times stay distinct at ms resolution (a small site at a high rate)
            last[i] = max(time.time(), last[i] + 0.001)
            c.publish(topics[i], payload_of(value_of(sigs[i], k), last[i]), qos=0)
            sent += 1
            k += 1
        t_next += step
        time.sleep(max(0.0, t_next - time.monotonic()))
    time.sleep(1.0)  # what is on the wire reaches the twins
    done.set()
    c.disconnect()
    c.loop_stop()


# --- the phases -------------------------------------------------------------------------------


def start_twins(ctx, doc, url, groups, store, tick, expected=None):
    measure_from, done, out = ctx.Value("d", 0.0), ctx.Event(), ctx.Queue()
    procs, readies = [], []
    for lines in groups:
        ready = ctx.Event()
        spec = {"factory": doc, "mapping": mapping_doc(url), "lines": lines, "store": store, "tick": tick,
                "expected": None if expected is None else expected[tuple(lines)]}
        p = ctx.Process(target=twin_main, args=(spec, ready, measure_from, done, out), daemon=True)
        p.start()
        procs.append(p)
        readies.append(ready)
    return procs, readies, measure_from, done, out


def collect(procs, out, timeout_s: float = 300) -> list[dict]:
    import queue

    res, deadline = [], time.monotonic() + timeout_s
    while len(res) < len(procs):
        try:
            res.append(out.get(timeout=1.0))
        except queue.Empty:
            dead = [p.exitcode for p in procs if p.exitcode not in (None, 0)]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"a twin process failed (exit codes {dead}) or took over {timeout_s:.0f} s") from None
    for p in procs:
        p.join(30)
    return sorted(res, key=lambda r: -r["lines"])


def throughput(ctx, broker, doc, groups, n, store, tick) -> list[dict]:
    sigs = signals(doc)
    expected = {}
    for lines in groups:
        cid, filters = session_of(doc, broker.url, lines)
        make_session(broker, cid, filters)
        owned = set(lines)
        expected[tuple(lines)] = sum(1 for k in range(n) if sigs[k % len(sigs)].split("/", 1)[0] in owned)
    t0 = time.time() - n * 0.001 - 60
    msgs = [(topic_of(SITE, sigs[k % len(sigs)]), payload_of(value_of(sigs[k % len(sigs)], k), t0 + k * 0.001))
            for k in range(n)]
    publish_all(broker, msgs)
    procs, _readies, _from, _done, out = start_twins(ctx, doc, broker.url, groups, store, tick, expected)
    return collect(procs, out)  # the events stay referenced until the children are done with them


def latency(ctx, broker, doc, groups, rate, seconds, store, tick) -> list[dict]:
    procs, readies, measure_from, done, out = start_twins(ctx, doc, broker.url, groups, store, tick)
    pub = ctx.Process(target=publisher_main, args=(broker.host, broker.port, signals(doc), rate, seconds, readies,
                                                    measure_from, done), daemon=True)
    pub.start()
    res = collect(procs, out, seconds + 300)
    pub.join(30)
    return res


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--lines", type=int, default=20)
    ap.add_argument("--stations", type=int, default=10)
    ap.add_argument("--messages", type=int, default=200_000, help="backlog of the throughput phase")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of the latency phase")
    ap.add_argument("--rate", type=float, default=10_000.0, help="messages/s offered in the latency phase")
    ap.add_argument("--tick", type=float, default=0.25, help="KPI snapshot period of the twins, s")
    ap.add_argument("--no-store", action="store_true", help="no SQLite store (the probe sink only)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    ctx = mp.get_context("spawn")
    doc = site_doc(args.lines, args.stations)
    result = {"site": f"{args.lines} lines x {args.stations} stations", "messages": args.messages,
              "offered_rate": args.rate, "seconds": args.seconds, "tick_s": args.tick, "store": not args.no_store,
              "cpus": os.cpu_count(), "load_before": os.getloadavg()[0], "phases": {}}
    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        broker = Broker(Path(tmp))
        try:
            for name, procs in (("1 process", 1), ("2 processes", 2)):
                groups = splits(doc, procs)
                store = None if args.no_store else str(Path(tmp) / f"{procs}.sqlite")
                thr = throughput(ctx, broker, doc, groups, args.messages, store, args.tick)
                lat = latency(ctx, broker, doc, groups, args.rate, args.seconds, store, args.tick)
                result["phases"][name] = {
                    "throughput": thr, "site_samples_per_s": sum(r["samples_per_s"] or 0 for r in thr),
                    "latency": lat}
        finally:
            broker.stop()
    result["load_after"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"{result['site']}, {os.cpu_count()} cores, load {result['load_before']:.1f} -> {result['load_after']:.1f}")
        for name, ph in result["phases"].items():
            print(f"{name}: site {ph['site_samples_per_s']:,.0f} samples/s from a backlog of {args.messages:,}")
            for r, lt in zip(ph["throughput"], ph["latency"]):
                p99 = "-" if lt["latency_p99_s"] is None else f"{lt['latency_p99_s']:.3f}"
                p50 = "-" if lt["latency_p50_s"] is None else f"{lt['latency_p50_s']:.3f}"
                print(f"  {r['lines']} lines: {r['samples_per_s'] or 0:,.0f} samples/s; at {args.rate:,.0f}/s offered "
                      f"took {lt['latency_n'] / args.seconds:,.0f}/s, ts-to-KPI p50 {p50} s, p99 {p99} s"
                      f"{'; errors ' + str(r['errors'] or lt['errors']) if r['errors'] or lt['errors'] else ''}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
