"""``demo`` and ``run``: live sources into the live twin, the twin into its sinks.

``demo`` builds the whole plant on loopback: the SimPy model runs in step with the wall clock
(times ``speed``) and feeds a simulated PLC (OPC UA server: states, counters, products) and
simulated energy meters (MQTT publisher: power, energy, site meters) through a broker (embedded
amqtt by default, or ``--mqtt-url``). The twin then reads them back over the wire exactly as it
would read a real line, through the same mapping, clients, router and KPI core. Because the model
also logs what really happened, the demo can compare the twin's KPIs with that ground truth.

``run`` is the same without simulators: only the sources a mapping names.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.table import Table

from connectors.influxdb import InfluxWriter
from connectors.mapping import Mapping, MqttSource, MqttTopic, OpcUaNode, OpcUaSource, Subscription
from connectors.mqtt.broker import EmbeddedBroker
from connectors.mqtt.client import MqttClient
from connectors.mqtt.sensors import MqttSensors
from connectors.opcua.client import OpcUaClient
from connectors.opcua.plc import SimulatedPlc
from factory_models.signals import known_signals
from factory_models import Factory, Sample, State
from factory_models.records import iso_utc

from twin.dashboard import Dashboard
from twin.shadow.forecast import forecast_shift_end
from twin.kpi import compute_kpis
from twin.shadow.live_twin import LiveTwin
from twin.dashboard.state import build_state
from twin.model import FactorySim
from twin.runtime.summary import kpi_json
from twin.runtime import Sinks, write_sinks

log = logging.getLogger(__name__)

PROGRESS_EVERY_S = 5.0  # wall seconds between two progress lines when stderr is not a terminal
METER_INTERVAL_S = 10.0  # simulated seconds between two readings of each simulated meter


@dataclass
class DashboardOptions:
    host: str = "127.0.0.1"
    port: int = 8050
    token: str | None = None  # required when host is not a loopback address
    push_interval_s: float = 0.5


@dataclass
class LiveOptions:
    duration_s: float | None = None  # wall seconds; None: until interrupted
    speed: float = 60.0  # simulated seconds per wall second (demo only)
    seed: int = 0
    mqtt_url: str | None = None
    tick_s: float = 0.5  # KPI recomputation period, wall seconds
    sinks: Sinks = field(default_factory=Sinks)
    progress: bool = True  # a status line on stderr each tick
    forecast_replications: int = 3
    dashboard: DashboardOptions | None = None
    stop: asyncio.Event | None = None  # set by the caller to end the run (tests, embedding)
    on_state: Callable[[dict], None] | None = None  # every dashboard state document, as it is built
    forecast_every_s: float = 30.0  # wall seconds between two end-of-shift forecasts


#: what the demo's PLC is read for; power and energy come from the energy meters over MQTT
PLC_SIGNALS = ("state", "product", "produced", "good", "scrap", "rework")


def demo_mapping(factory: Factory, plc: SimulatedPlc, mqtt_url: str) -> Mapping:
    """The mapping a plant engineer would write for the demo plant (``browse`` drafts the PLC part):
    the PLC's state, product and counter nodes by namespace URI, the meters by the default topic
    convention."""
    nodes = [OpcUaNode(node=plc.node_id(sig), signal=sig)
             for sig in plc.signals() if sig.rsplit("/", 1)[-1] in PLC_SIGNALS]
    return Mapping(
        site=factory.site.name,
        opcua=[OpcUaSource(
            name="plc", endpoint=plc.endpoint,
            subscription=Subscription(publishing_interval_ms=100, sampling_interval_ms=0, queue_size=100),
            nodes=nodes,
        )],
        mqtt=[MqttSource(
            name="meters", url=mqtt_url, client_id=f"factory-twin-{factory.site.name}",
            topics=[MqttTopic(pattern="factory/{site}/{line}/{station}/{signal}", signal="{line}/{station}/{signal}",
                              field="value")],
        )],
    )


class PlantFeed:
    """Turns the model's readings into PLC values and meter messages (the demo's field wiring)."""

    def __init__(self, factory: Factory, plc: SimulatedPlc, sensors: MqttSensors):
        self.plc, self.sensors = plc, sensors
        units = factory.station_units()
        self.n_stations = len(units)
        self.station = [f"{ln.name}/{name}" for ln, _, name in units]
        self.power = [st.power_kw for _, st, _ in units]
        self.products = factory.product_names()
        volume = {"natural_gas": "volume_nm3", "compressed_air": "volume_m3"}
        self.meter = [(f"site/{m.name}", volume.get(m.kind)) for m in factory.meters]
        self.live: set[str] = set()  # "plc", "mqtt": the outputs that publish
        self.published = 0
        self.last: dict[tuple[str, str], tuple[str, float | str, float]] = {}

    def __call__(self, kind: str, unit: int, t: float, value: float) -> None:
        if unit < self.n_stations:
            base = self.station[unit]
            if kind == "state":
                state = State(int(value))
                self._send("plc", f"{base}/state", state.name, t)
                self._send("mqtt", f"{base}/power_kw", self.power[unit].kw(state), t)
            elif kind == "product":
                self._send("plc", f"{base}/product", self.products[int(value)], t)
            elif kind == "energy_kwh":
                self._send("mqtt", f"{base}/energy_kwh", value, t)
            elif kind in ("produced", "good", "scrap", "rework"):
                self._send("plc", f"{base}/{kind}", value, t)
        else:
            base, volume_name = self.meter[unit - self.n_stations]
            if kind == "energy_kwh":
                self._send("mqtt", f"{base}/energy_kwh", value, t)
            elif kind == "volume" and volume_name:
                self._send("mqtt", f"{base}/{volume_name}", value, t)
            elif kind == "power_kw":
                self._send("mqtt", f"{base}/power_kw", value, t)

    def _send(self, where: str, signal: str, value, t: float) -> None:
        key = (where, signal)
        if self.last.get(key) == (where, value, t):
            return  # the same reading again (a meter read and a state change in one instant)
        self.last[key] = (where, value, t)
        if where not in self.live:
            return
        self.published += 1
        if where == "plc":
            self.plc.publish(signal, value, t)
        else:
            self.sensors.publish(signal, value, t)

    def go_live(self, where: str) -> None:
        """Publish the current value of every signal of ``where``, then every reading as it happens."""
        self.live.add(where)
        for (w, signal), (_, value, t) in list(self.last.items()):
            if w == where:
                self.published += 1
                (self.plc.publish if w == "plc" else self.sensors.publish)(signal, value, t)


class Board:
    """What operators see: the state document rebuilt on every KPI tick, served by the dashboard."""

    def __init__(self, factory: Factory, twin: LiveTwin, sources, opts: LiveOptions, config: Path | None, *,
                 buffers=None, actions=None, forecast_seed: int = 0):
        from twin.emissions.account import carbon_setup

        self.factory, self.twin, self.sources, self.opts = factory, twin, sources, opts
        self.sinks = LiveSinks(factory, twin, opts.sinks, config)
        self.buffers = buffers
        cfg, registry = carbon_setup(factory, config)
        self.factors = {}
        for method, fid in (("location", cfg.grid_factor), ("market", cfg.residual_factor)):
            f = registry.get(fid)
            if f.kind == "grid_electricity":  # an hourly series has no single figure for "now"
                self.factors[method] = carbon_station_factor(f)
        self.forecast: dict | None = None
        self._forecast_at = -1e18
        self.doc: dict | None = None
        self.forecast_seed = forecast_seed
        self.server = None
        if opts.dashboard is not None:
            d = opts.dashboard
            self.server = Dashboard(host=d.host, port=d.port, token=d.token, state=self.state, health=self.health,
                                    actions=actions, push_interval_s=d.push_interval_s)

    def on_snapshot(self, snap) -> None:
        self.sinks.on_snapshot(snap)
        now = time.monotonic()
        if now - self._forecast_at >= self.opts.forecast_every_s:
            self._forecast_at = now
            fc = forecast_shift_end(self.factory, self.twin, sim_seed=self.forecast_seed, replications=1)
            self.forecast = None if fc is None else {k: fc[k] for k in ("expected_good", "oee", "energy_kwh")}
        self.doc = build_state(self.factory, self.twin, snap, factors_kg_per_kwh=self.factors,
                               buffers=self.buffers, forecast=self.forecast)
        if self.opts.on_state is not None:
            self.opts.on_state(self.doc)

    def state(self) -> dict:
        if self.doc is None:
            self.on_snapshot(self.twin.snapshot())
        return self.doc

    def health(self) -> dict:
        connections = {s.name: ("up" if s.stats().get("connected") else "down") for s in self.sources}
        return {"status": "ok" if all(v == "up" for v in connections.values()) else "degraded",
                "connections": connections, "spool": self.sinks.health(),
                "samples": _samples_block(self.twin, self.sources)}

    async def __aenter__(self) -> "Board":
        if self.server is not None:
            await self.server.start()
            log.warning("dashboard on %s", self.server.url)
        return self

    async def __aexit__(self, *exc) -> None:
        if self.server is not None:
            await self.server.stop()
        self.sinks.close()


class LiveSinks:
    """The run's sinks while it runs: samples as they are used, closed one-minute KPI windows and
    closed hours of emissions. The last ``REWRITE_WINDOWS`` minutes are written again at every minute,
    so a late sample still lands in the store and InfluxDB (writes are idempotent upserts)."""

    REWRITE_WINDOWS = 5

    def __init__(self, factory: Factory, twin: LiveTwin, sinks: Sinks, config: Path | None):
        from twin.emissions.account import carbon_setup
        from twin.store import Store

        self.factory, self.twin, self.config = factory, twin, config
        self.store = Store(sinks.store) if sinks.store is not None else None
        self.influx = InfluxWriter(sinks.influx) if sinks.influx is not None else None
        self.enabled = self.store is not None or self.influx is not None
        if self.enabled:
            twin.outbox = []
        self.carbon = carbon_setup(factory, config)
        self._minute = None  # start of the newest closed minute written
        self._hour = None

    def on_snapshot(self, snap) -> None:
        if not self.enabled:
            return
        samples, self.twin.outbox = self.twin.outbox, []
        if samples:
            if self.store is not None:
                self.store.write_samples(samples, self.factory.site.name)
            if self.influx is not None:
                self.influx.write_samples(samples, self.factory.site.name)
        frozen = self.twin.last_frozen
        if frozen is None or frozen.t_end <= frozen.t_start:
            return
        closed = frozen.t_end - frozen.t_end % 60.0
        if self._minute is None or closed > self._minute:
            first = max(closed - 60.0 * self.REWRITE_WINDOWS, frozen.t_start - frozen.t_start % 60.0)
            if closed > first:
                edges = np.arange(first, closed + 1.0, 60.0)
                windows = compute_kpis(frozen, self.factory, edges).windows
                self._write("write_kpis", windows)
            self._minute = closed
        hour = frozen.t_end - frozen.t_end % 3600.0
        if self._hour is not None and hour > self._hour and self._hour >= frozen.t_start:
            from twin.emissions.account import account_log

            span = dataclasses.replace(frozen, t_start=self._hour, t_end=hour)
            report = compute_kpis(span, self.factory)
            em = account_log(self.factory, span, report, *self.carbon)
            self._write("write_emissions", em.records)
        self._hour = hour

    def _write(self, method: str, records) -> None:
        for sink in (self.store, self.influx):
            if sink is not None and records:
                getattr(sink, method)(records)

    def health(self) -> dict | None:
        return None if self.influx is None else self.influx.stats()

    def close(self) -> dict:
        """Flush and close; the sinks block of the summary (the final whole-run write adds to it)."""
        out = {}
        if self.influx is not None:
            self.influx.flush(timeout_s=10.0)
            st = self.influx.stats()
            self.influx.close()
            out["influxdb"] = {k: st[k] for k in ("written", "spooled", "retried", "rejected", "dropped")}
        if self.store is not None:
            out["store"] = {"written": self.store.stats()["written"]}
            self.store.close()
        return out


def carbon_station_factor(factor) -> float:
    from carbon import station_co2e

    return station_co2e(1.0, factor)


def _sim_buffers(sim: FactorySim, factory: Factory):
    """unit -> (parts in the buffer after its station, capacity); the last station ships to a sink."""
    where = {}
    for lm in sim.lines:
        for i, st in enumerate(lm.line.stations[:-1]):
            for ln, spec, name in factory.station_units():
                if ln is lm.line and spec is st:
                    where[f"{ln.name}/{name}"] = (lm.buffers[i + 1], st.buffer_after)

    def level(unit: str):
        b = where.get(unit)
        return None if b is None else (len(b[0]), b[1])

    return level


def _first_shift_start_s(sim: FactorySim) -> float:
    from twin.model.calendar import ON

    mode, change = sim.calendar.at(0.0)
    return 0.0 if mode == ON else change


STATE_STYLE = {"PRODUCING": "green", "SETUP": "blue", "DOWN": "bold red", "STARVED": "yellow", "BLOCKED": "yellow",
               "IDLE": "yellow", "PLANNED_STOP": "grey50", "NO_SHIFT": "grey50", "UNKNOWN": "magenta"}


def _status_table(snap) -> Table:
    """The operator's terminal view: each station's state and its shift-so-far figures."""
    s = snap.shift.site
    oee = "-" if s.oee is None else f"{100 * s.oee:.1f} %"
    table = Table(title=f"{iso_utc(snap.now)}  shift {snap.shift_name}: OEE {oee}, good {s.good:.0f}, "
                        f"{s.energy_kwh or 0:.1f} kWh; samples {snap.samples['used']} used, "
                        f"{snap.samples['rejected']} rejected", title_justify="left")
    for col in ("station", "state", "OEE", "avail.", "perf.", "quality", "good", "kWh"):
        table.add_column(col, justify="left" if col in ("station", "state") else "right")
    pct = lambda x: "-" if x is None else f"{100 * x:.1f} %"  # noqa: E731
    for w in snap.shift.stations:
        unit = f"{w.line}/{w.station}"
        state = snap.states.get(unit, "UNKNOWN")
        table.add_row(unit, f"[{STATE_STYLE.get(state, '')}]{state}[/]", pct(w.oee), pct(w.availability),
                      pct(w.performance), pct(w.quality), f"{w.good:.0f}",
                      "-" if w.energy_kwh is None else f"{w.energy_kwh:.1f}")
    return table


async def _ticker(twin: LiveTwin, opts: LiveOptions, console: Console, stop: asyncio.Event, on_snapshot=None) -> None:
    """Recompute the KPIs every ``tick_s``; show them (a live table on a terminal, else a line every
    ``PROGRESS_EVERY_S``) and hand each snapshot to ``on_snapshot`` (the dashboard)."""
    live = Live(console=console, auto_refresh=False, transient=False) if opts.progress and console.is_terminal else None
    last_line = 0.0
    if live is not None:
        live.start()
    try:
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=opts.tick_s)
            except asyncio.TimeoutError:
                pass
            snap = twin.snapshot()
            if on_snapshot is not None:
                on_snapshot(snap)
            if live is not None:
                live.update(_status_table(snap), refresh=True)
            elif opts.progress and time.monotonic() - last_line >= PROGRESS_EVERY_S:
                last_line = time.monotonic()
                s = snap.shift.site
                oee = "-" if s.oee is None else f"{100 * s.oee:.1f} %"
                down = [u for u, st in snap.states.items() if st in ("DOWN", "UNKNOWN")]
                console.print(f"{iso_utc(snap.now)} shift {snap.shift_name}: OEE {oee}, good {s.good:.0f}, "
                              f"{s.energy_kwh or 0:.1f} kWh; samples {snap.samples['used']}/{snap.samples['received']}"
                              + (f"; down/unknown: {', '.join(down)}" if down else ""), highlight=False)
    finally:
        if live is not None:
            live.stop()


def _compare(truth, live) -> dict:
    """Ground truth (the model's own log) against the twin (what came over the wire), per station."""
    out = []
    for a, b in zip(truth.stations, live.stations):
        item = {"line": a.line, "station": a.station}
        for key in ("apt_s", "produced", "good", "availability", "oee", "energy_kwh"):
            item[key] = {"truth": getattr(a, key), "twin": getattr(b, key)}
        out.append(item)
    return {"stations": out}


def _samples_block(twin: LiveTwin, sources) -> dict:
    """The ``samples`` counts: what the router saw plus what each source refused before it."""
    counts = twin.router.counts()
    by_reason = dict(counts["rejected_by_reason"])
    received = counts["received"]
    per_source = {}
    for src in sources:
        st = src.stats()
        per_source[src.name] = st
        received += st.get("rejected", 0)
        for reason, n in st.get("rejected_by_reason", {}).items():
            by_reason[f"{src.name}:{reason}"] = by_reason.get(f"{src.name}:{reason}", 0) + n
    rejected = sum(by_reason.values())
    return {"received": received, "used": counts["used"], "rejected": rejected,
            "rejected_by_reason": dict(sorted(by_reason.items())), "sources": per_source}


async def _shadow(factory: Factory, sources, twin: LiveTwin, opts: LiveOptions, stop: asyncio.Event,
                  extra_tasks=(), settle=None, on_snapshot=None) -> None:
    if opts.stop is not None:
        external = asyncio.create_task(opts.stop.wait())
        external.add_done_callback(lambda _: stop.set())
        extra_tasks = [*extra_tasks, external]
    queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=200_000)
    console = Console(stderr=True)
    tasks = [asyncio.create_task(src.run(queue), name=f"source-{src.name}") for src in sources]
    tasks.append(asyncio.create_task(twin.consume(queue), name="twin"))
    tasks.append(asyncio.create_task(_ticker(twin, opts, console, stop, on_snapshot), name="ticker"))
    tasks.extend(extra_tasks)
    try:
        if opts.duration_s is None:
            await stop.wait()
        else:
            try:
                await asyncio.wait_for(stop.wait(), timeout=opts.duration_s)
            except asyncio.TimeoutError:
                stop.set()
        if settle is not None:
            await settle()
        # let what is on the wire arrive before the final figures: until the queue stays empty
        quiet = 0
        for _ in range(250):
            quiet = quiet + 1 if queue.empty() else 0
            if quiet >= 10:
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        while not queue.empty():
            twin.add(queue.get_nowait())


async def _wait_subscribed(sources, timeout_s: float = 20.0) -> None:
    """Until every source is connected (and an OPC UA source has its monitored items), or timeout."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        stats = [s.stats() for s in sources]
        if all(st.get("connected") and st.get("monitored_items", 1) > 0 for st in stats):
            return
        await asyncio.sleep(0.05)
    log.warning("demo: not every source connected within %.0f s: %s", timeout_s,
                {s.name: s.stats().get("last_error") for s in sources})


async def run_demo(factory: Factory, config: Path, opts: LiveOptions) -> dict[str, Any]:
    """The demonstration plant on loopback; returns the summary document of ``demo --json``."""
    stop = asyncio.Event()
    plc = SimulatedPlc(factory, host="127.0.0.1", port=0)
    broker = None
    sensors = None
    await plc.start()
    try:
        if opts.mqtt_url:
            mqtt_url = opts.mqtt_url
        else:
            broker = EmbeddedBroker()
            await broker.start()
            mqtt_url = broker.url
        host, port = _host_port(mqtt_url)
        sensors = MqttSensors(factory, host=host, port=port, client_id=f"factory-twin-sensors-{factory.site.name}")
        await sensors.start()
        feed = PlantFeed(factory, plc, sensors)
        sim = FactorySim(factory, opts.seed, meter_interval_s=METER_INTERVAL_S, on_event=feed)
        # up to the start of the first shift at full speed: the twin then sees the whole shift
        sim.env.run(until=_first_shift_start_s(sim))
        # the PLC holds its values before anyone connects, as a running PLC does
        feed.go_live("plc")
        await plc.flush()
        mapping = demo_mapping(factory, plc, mqtt_url)
        known = known_signals(factory)
        dead = _dead_letter_dir(opts)
        sources = [OpcUaClient(mapping.opcua[0], factory.site.name, known, dead / "deadletter-plc.jsonl"),
                   MqttClient(mapping.mqtt[0], factory.site.name, known, dead / "deadletter-meters.jsonl")]
        twin = LiveTwin(factory, clock=lambda: sim.now_epoch,
                        source_signals={s.name: s.signals() for s in sources})
        live_from = sim.now_epoch

        async def drive() -> None:
            await _wait_subscribed(sources)
            feed.go_live("mqtt")  # meters publish from now on; their first readings are the baselines
            loop = asyncio.get_running_loop()
            wall0, sim0 = loop.time(), sim.env.now
            read_at = sim0
            while not stop.is_set():
                sim.env.run(until=sim0 + (loop.time() - wall0) * opts.speed)
                if sim.env.now - read_at >= METER_INTERVAL_S:
                    # energy meters report on their own clock too, not only when a state changes
                    sim.flush()
                    read_at = sim.env.now
                await asyncio.sleep(0.05)

        driver = asyncio.create_task(drive(), name="sim")

        async def settle() -> None:
            # the model stops first; what it published must reach the twin before the books close
            await asyncio.gather(driver, return_exceptions=True)
            await plc.flush()
            await sensors.drain(timeout_s=5.0)
            await asyncio.sleep(0.3)  # a few OPC UA publishing intervals

        def force_down(unit: str, seconds: float = 600.0) -> dict:
            """An operator-injected stop: the station goes DOWN now for ``seconds`` of working time."""
            sim.force_down(unit, float(seconds))
            env = sim.env
            while env.peek() <= env.now:  # let the interrupt land now, not at the next step of the driver
                env.step()
            return {"unit": unit, "state": sim.station_state(unit).name}

        board = Board(factory, twin, sources, opts, config, buffers=_sim_buffers(sim, factory),
                      actions={"force_down": force_down}, forecast_seed=opts.seed)
        async with board:
            await _shadow(factory, sources, twin, opts, stop, [driver], settle, board.on_snapshot)
        live_to = sim.now_epoch
        await sensors.stop(drain_s=5.0)
        feed.live.clear()
        sim.flush()  # the ground truth closes its energy readings at the end of the run
        return _summary(factory, config, twin, sources, opts, live_from, live_to, sim=sim,
                        extra={"speed": opts.speed, "mqtt": mqtt_url, "opcua": plc.endpoint,
                               "published": feed.published, "sensors": sensors.stats()})
    finally:
        await plc.stop()
        if broker is not None:
            await broker.stop()


async def run_mapping(factory: Factory, config: Path, mapping: Mapping, opts: LiveOptions) -> dict[str, Any]:
    """``run``: the sources a mapping names (real PLCs and brokers), no simulators."""
    from connectors.mqtt.client import mqtt_sources
    from connectors.opcua.client import opcua_sources

    known = known_signals(factory)
    dead = _dead_letter_dir(opts)
    sources = [*opcua_sources(mapping, factory, dead), *mqtt_sources(mapping, factory, dead)]
    if not sources:
        raise ValueError("the mapping names no OPC UA or MQTT source")
    twin = LiveTwin(factory, source_signals={s.name: s.signals() for s in sources})
    del known
    stop = asyncio.Event()
    t0 = time.time()
    async with Board(factory, twin, sources, opts, config) as board:
        await _shadow(factory, sources, twin, opts, stop, on_snapshot=board.on_snapshot)
    return _summary(factory, config, twin, sources, opts, t0, time.time())


def _summary(factory: Factory, config: Path, twin: LiveTwin, sources, opts: LiveOptions, t0: float, t1: float,
             *, sim: FactorySim | None = None, extra: dict | None = None) -> dict[str, Any]:
    if twin.retained_from is not None and twin.retained_from > t0:
        t0 = twin.retained_from  # older rows were forgotten: the summary covers what is kept
    frozen = twin.frozen(t1)
    frozen.t_start = t0
    report = compute_kpis(frozen, factory, None)
    from twin.emissions.account import account_log, carbon_setup

    cfg, registry = carbon_setup(factory, config)
    em = account_log(factory, frozen, report, cfg, registry)  # fills co2e_kg of stations, lines, site
    doc: dict[str, Any] = {
        "command": "demo" if sim is not None else "run",
        "config": str(config),
        "start": iso_utc(t0),
        "end": iso_utc(t1),
        **kpi_json(report, with_windows=False),
        "emissions": em.summary,
        "samples": _samples_block(twin, sources),
        "connections": {"gaps": twin.gaps, "state": twin.connections},
        "latency_s": _latency(twin),
    }
    if sim is not None:
        truth_log = sim.log.freeze()
        truth_log.t_start, truth_log.t_end = t0, t1
        truth = compute_kpis(truth_log, factory, None)
        doc["ground_truth"] = _compare(truth, report)
        doc["forecast"] = forecast_shift_end(factory, twin, sim_seed=opts.seed, replications=opts.forecast_replications)
    if extra:
        doc["demo"] = extra
    doc["sinks"] = write_sinks(factory, opts.sinks, report, em, frozen)
    return doc


def _dead_letter_dir(opts: LiveOptions) -> Path:
    """Rejected messages are kept next to the store (a file appears only once something is rejected)."""
    if opts.sinks.store is not None:
        return Path(opts.sinks.store).resolve().parent / "deadletter"
    return Path(tempfile.gettempdir()) / "factory-twin-deadletter"


def _latency(twin: LiveTwin) -> dict:
    lat = np.asarray(twin.latency_s or [0.0])
    return {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)), "n": len(twin.latency_s)}


def _host_port(url: str) -> tuple[str, int]:
    from urllib.parse import urlsplit

    u = urlsplit(url)
    return u.hostname or "127.0.0.1", u.port or 1883
