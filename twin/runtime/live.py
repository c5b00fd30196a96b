"""``demo`` and ``run``: live sources into the live twin, the twin's snapshots into its sinks.

``run`` reads the sources a mapping names (real PLCs and brokers). ``demo`` reads the simulated
plant of ``demo_plant.py`` the same way, over the wire, and compares what the twin saw with the
model's ground truth. Both share ``LiveRun``: the sinks (store, InfluxDB, the dashboard feed),
each a subscriber of the twin's immutable snapshots, the terminal view and the tick loop.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from connectors.mapping import Mapping
from connectors.mqtt.client import MqttClient
from connectors.opcua.client import OpcUaClient
from factory_models import Factory, Sample
from factory_models.signals import known_signals
from twin.dashboard import Dashboard
from twin.dashboard.feed import DashboardFeed
from twin.emissions.account import carbon_setup
from twin.runtime.demo_plant import DemoPlant, sim_buffers
from twin.runtime.diagnostics import never_connected, sources_block
from twin.runtime.live_summary import live_summary, samples_block, whole_run
from twin.runtime.sinks import LiveWriter, Sinks, close_sinks, open_sinks, write_final
from twin.runtime.supervisor import LoopLag, Supervisor, sink_reasons
from twin.runtime.terminal import TerminalView
from twin.shadow.forecast import forecast_shift_end
from twin.shadow.live_twin import LiveTwin

log = logging.getLogger(__name__)


class SourcesUnreachable(ConnectionError):
    """No source of a live run ever connected (docs/architecture.md: exit 3); the message names each and why."""


@dataclass
class DashboardOptions:
    host: str = "127.0.0.1"
    port: int = 8050
    token: str | None = None  # required when host is not a loopback address
    push_interval_s: float = 0.5
    allowed_hosts: tuple[str, ...] = ()  # more names the page answers to (``name`` or ``name:port``)


@dataclass
class LiveOptions:
    duration_s: float | None = None  # wall seconds; None: until interrupted
    speed: float = 60.0  # simulated seconds per wall second (demo only)
    seed: int = 0
    mqtt_url: str | None = None
    plc_port: int = 0  # the demo's simulated PLC; 0: a free port (tests, embedding); the CLI's default is 4840
    broker_port: int = 0  # the demo's embedded broker; 0: a free port; the CLI's default is 1883
    tick_s: float = 0.5  # KPI recomputation period, wall seconds
    sinks: Sinks = field(default_factory=Sinks)
    progress: bool = True  # a status line on stderr each tick
    forecast_replications: int = 3
    dashboard: DashboardOptions | None = None
    stop: asyncio.Event | None = None  # set by the caller to end the run (tests, embedding)
    on_state: Callable[[dict], None] | None = None  # every dashboard state document, as it is built
    forecast_every_s: float = 30.0  # wall seconds between two end-of-shift forecasts
    connect_timeout_s: float = 15.0  # ``run``: wall seconds for a first source to connect, else exit 3
    extra_sinks: tuple = ()  # sink objects of the caller (embedding, tests): fed and closed like the others
    partition: Any = None  # ``run --lines``: the lines (and meters) this process owns (twin/runtime/lines.py)


def page_factors(cfg, registry) -> dict[str, float]:
    """kg CO2e per kWh for the page's "now" figures, by method (an hourly series has no single one)."""
    from carbon import station_co2e

    out = {}
    for method, fid in (("location", cfg.grid_factor), ("market", cfg.residual_factor)):
        f = registry.get(fid)
        if f.kind == "grid_electricity":
            out[method] = station_co2e(1.0, f)
    return out


class LiveRun:
    """One live run's plumbing around a twin and its sources: the carbon set-up (once), the sinks
    and the dashboard feed subscribed to the twin, the dashboard server, the tick loop."""

    def __init__(self, factory: Factory, config: Path, twin: LiveTwin, sources, opts: LiveOptions, *,
                 buffers=None, actions=None, forecast_seed: int = 0, origin: str = "measured"):
        self.factory, self.config, self.twin, self.sources, self.opts = factory, config, twin, sources, opts
        self.carbon = carbon_setup(factory, config)
        self.supervisor = Supervisor()
        self.lag = LoopLag()
        self.feed = None
        if opts.dashboard is not None or opts.on_state is not None:
            self.feed = DashboardFeed(factory, twin, factors_kg_per_kwh=page_factors(*self.carbon), health=self.health,
                                      buffers=buffers, forecast_every_s=opts.forecast_every_s,
                                      forecast_seed=forecast_seed, on_state=opts.on_state)
            self.feed.supervisor = self.supervisor
        self.server = None
        if opts.dashboard is not None:
            d = opts.dashboard
            self.server = Dashboard(host=d.host, port=d.port, token=d.token, state=self.feed.state,
                                    health=self.feed.health, actions=actions, push_interval_s=d.push_interval_s,
                                    allowed_hosts=d.allowed_hosts)
        # opened last: nothing after this can fail and leave a sink open
        self.sinks = open_sinks(opts.sinks) + list(opts.extra_sinks) + ([self.feed] if self.feed is not None else [])
        self._closed: dict | None = None
        self.writer = LiveWriter(factory, self.sinks, self.carbon, self.supervisor, origin=origin,
                                 partition=opts.partition)
        # each subscriber under its own guard: one that raises never keeps the snapshot from the other
        twin.subscribe(self.supervisor.guard("tick", self.writer.on_snapshot))
        if self.feed is not None:
            twin.subscribe(self.supervisor.guard("dashboard", self.feed.on_snapshot))
        self.console = Console(stderr=True)
        self.connected: set[str] = set()  # sources that were connected at some moment of the run

    def health(self) -> dict:
        connections = {s.name: ("up" if s.stats().get("connected") else "down") for s in self.sources}
        sinks = {s.sink_name: self.supervisor.call(f"sink:{s.sink_name}", s.health, context="health",
                                                   default={"error": "health failed"})
                 for s in self.sinks if s is not self.feed}
        reasons = [f"source {k} is down" for k, v in connections.items() if v != "up"] + self.supervisor.reasons()
        for name, h in sinks.items():
            reasons += sink_reasons(name, h) if isinstance(h, dict) else []
        return {"status": "degraded" if reasons else "ok", "reasons": reasons,
                "connections": connections, "spool": sinks.get("influxdb"), "sinks": sinks,
                "samples": samples_block(self.twin, self.sources),
                "sources": sources_block(self.sources, self.twin.router), "errors": self.supervisor.errors(),
                "loop_lag_s": self.lag.block()}

    async def __aenter__(self) -> "LiveRun":
        if self.server is not None:
            try:
                await self.server.start()
            except BaseException:
                self.close()
                raise
            log.info("dashboard on %s", self.server.url)
            self.console.print(f"dashboard: {self.server.url}", highlight=False, soft_wrap=True)
        self._lag_task = asyncio.create_task(self.lag.run(), name="loop-lag")
        await self._kernels_ready()
        return self

    async def _kernels_ready(self) -> None:
        """The KPI kernels compiled (or loaded from Numba's cache) before any source starts: a first
        compilation inside the tick would block the loop for seconds (twin/kpi/warmup.py). The wait
        is in a worker thread: the dashboard and the loop-lag probe go on meanwhile."""
        from twin.kpi import warm_up

        began = time.perf_counter()
        thread = warm_up()
        if thread is not None and thread.is_alive():
            await asyncio.to_thread(thread.join)
        log.info("KPI kernels ready in %.2f s", time.perf_counter() - began)

    async def __aexit__(self, *exc) -> None:
        lag = getattr(self, "_lag_task", None)
        if lag is not None:
            lag.cancel()
            await asyncio.gather(lag, return_exceptions=True)
        if self.server is not None:
            await self.supervisor.run("dashboard", self.server.stop, restart=False)
        self.close()

    def close(self) -> dict:
        """Close every sink once; their ``sinks`` block."""
        if self._closed is None:
            self._closed = close_sinks(self.sinks, self.supervisor)
        return self._closed

    def _note_connections(self) -> None:
        for src in self.sources:
            if src.stats().get("connected") or self.twin.connections.get(src.name) == "up":
                self.connected.add(src.name)

    async def _watch(self, stop: asyncio.Event, timeout_s: float) -> None:
        """Until ``timeout_s``: note which sources connect; none by then ends the run, some by then
        names the others in a warning."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not stop.is_set() and loop.time() < deadline:
            self._note_connections()
            if len(self.connected) == len(self.sources):
                return
            await asyncio.sleep(0.1)
        self._note_connections()
        if not self.connected:
            stop.set()
        elif len(self.connected) < len(self.sources):
            log.warning("not connected after %.0f s: %s", timeout_s, self.unreached())

    def unreached(self) -> str:
        """``name (endpoint): why`` of every source that never connected, joined by '; '."""
        return "; ".join(never_connected(self.sources, self.connected))

    async def _ticker(self, stop: asyncio.Event) -> None:
        """Recompute the KPIs every ``tick_s`` (the twin hands each snapshot to its subscribers)
        and show them on the terminal."""
        view = TerminalView(self.console, self.factory.calendar.timezone, enabled=self.opts.progress)
        view.start()
        try:
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), timeout=self.opts.tick_s)
                except asyncio.TimeoutError:
                    pass
                # a tick that raises is counted and the next one runs: the loop never dies of one
                snap = self.supervisor.call("tick", self.twin.snapshot, context="snapshot")
                if snap is not None:
                    self.supervisor.call("terminal", view.on_snapshot, snap)
        finally:
            view.stop()

    async def shadow(self, stop: asyncio.Event, extra_tasks=(), settle=None, *, watch: bool = False) -> None:
        """Sources into the twin until ``duration_s``, ``opts.stop`` or ``stop``; then what is still
        on the wire (``settle``, then until the queue stays empty) into the twin."""
        opts = self.opts
        if opts.stop is not None:
            external = asyncio.create_task(opts.stop.wait())
            external.add_done_callback(lambda _: stop.set())
            extra_tasks = [*extra_tasks, external]
        queue: asyncio.Queue[Sample] = asyncio.Queue(maxsize=200_000)
        sup = self.supervisor
        tasks = [asyncio.create_task(sup.run(f"source:{src.name}", lambda src=src: src.run(queue)),
                                     name=f"source-{src.name}") for src in self.sources]
        tasks.append(asyncio.create_task(sup.run("twin", lambda: self.twin.consume(queue)), name="twin"))
        tasks.append(asyncio.create_task(sup.run("tick", lambda: self._ticker(stop)), name="ticker"))
        if watch:
            tasks.append(asyncio.create_task(self._watch(stop, opts.connect_timeout_s), name="watch"))
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
                sup.call("twin", self.twin.add, queue.get_nowait(), context="last samples")
        self._note_connections()

    async def finish(self, t0: float, t1: float, *, sim=None, extra: dict | None = None) -> dict[str, Any]:
        """The last snapshot (the samples still queued go to the sinks), the last partial minute
        and hour, the whole run to every sink, and the summary with the sinks' own block, the
        ``errors`` by component and the loop's lag. The forecast runs in a worker thread."""
        sup = self.supervisor
        snap = sup.call("tick", self.twin.snapshot, t1, context="final snapshot")
        sup.call("tick", self.writer.flush, snap or self.twin.last_snapshot, context="final flush")
        # the whole run's KPIs, emissions and forecast take seconds: in worker threads, while the
        # loop keeps serving the dashboard (the sources and the tick have stopped: nothing else
        # touches the twin meanwhile)
        frozen, report, em = await asyncio.to_thread(whole_run, self.factory, self.twin, self.carbon, t0, t1,
                                                     self.writer)
        forecast = None
        if sim is not None:
            forecast = await sup.run("forecast", lambda: asyncio.to_thread(
                forecast_shift_end, self.factory, self.twin, sim_seed=self.opts.seed,
                replications=self.opts.forecast_replications), restart=False)
        doc = await asyncio.to_thread(live_summary, self.factory, self.config, self.twin, self.sources, frozen,
                                      report, em, sim=sim, forecast=forecast, extra=extra)
        write_final(self.sinks, self.factory, report, em, frozen, supervisor=sup, partition=self.opts.partition)
        doc["sources"] = sources_block(self.sources, self.twin.router, self.twin.connections)
        doc["sinks"] = self.close()
        doc["errors"] = sup.errors()
        doc["loop_lag_s"] = self.lag.block()
        return doc


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
    plant = DemoPlant(factory, seed=opts.seed, speed=opts.speed, mqtt_url=opts.mqtt_url,
                      plc_port=opts.plc_port, broker_port=opts.broker_port)
    try:
        await plant.start()
        mapping = plant.mapping()
        known = known_signals(factory)
        dead = _dead_letter_dir(opts)
        sources = [OpcUaClient(mapping.opcua[0], factory.site.name, known, dead / "deadletter-plc.jsonl"),
                   MqttClient(mapping.mqtt[0], factory.site.name, known, dead / "deadletter-meters.jsonl")]
        twin = LiveTwin(factory, clock=lambda: plant.sim.now_epoch,
                        source_signals={s.name: s.signals for s in sources})
        live_from = plant.sim.now_epoch
        run = LiveRun(factory, config, twin, sources, opts, buffers=sim_buffers(plant.sim, factory),
                      actions={"force_down": plant.force_down}, forecast_seed=opts.seed, origin="simulated")
        stop = asyncio.Event()
        async with run:
            meters = sources[1]  # the model waits for the twin when the meters' readings lag (no drops)
            driver = asyncio.create_task(plant.drive(stop, _wait_subscribed(sources),
                                                     delivered=lambda: meters.stats()["received"]), name="sim")

            async def settle() -> None:
                # the model stops first; what it published must reach the twin before the books close
                await asyncio.gather(driver, return_exceptions=True)
                await plant.settle()

            await run.shadow(stop, [driver], settle)
            live_to = plant.sim.now_epoch
            await plant.finish()
            return await run.finish(live_from, live_to, sim=plant.sim, extra=plant.extra())
    finally:
        await plant.stop()


async def run_mapping(factory: Factory, config: Path, mapping: Mapping, opts: LiveOptions) -> dict[str, Any]:
    """``run``: the sources a mapping names (real PLCs and brokers), no simulators. Raises
    ``SourcesUnreachable`` when none of them connected within ``connect_timeout_s`` (or the run)."""
    from connectors.registry import build_sources

    part, split_notes = opts.partition, []
    if part is not None:  # run --lines: subscribe to, and compute, the owned lines only
        from twin.runtime.lines import elsewhere, narrow_mapping, notes, owned_factory

        mapping = narrow_mapping(mapping, part)
        split_notes = notes(factory, part)
        for note in split_notes:
            log.warning("run --lines: %s", note)
    # sources know the whole site, so what reaches them for another process is the router's to count
    dead = _dead_letter_dir(opts) if part is None else _dead_letter_dir(opts) / part.tag()
    sources = build_sources(mapping, factory, dead)
    if not sources:
        raise ValueError("the mapping names no source")
    if part is not None:
        site_signals, factory = elsewhere(factory, part), owned_factory(factory, part)
    twin = LiveTwin(factory, source_signals={s.name: s.signals for s in sources})
    if part is not None:
        twin.router.elsewhere = site_signals
    stop = asyncio.Event()
    t0 = time.time()
    async with LiveRun(factory, config, twin, sources, opts) as run:
        await run.shadow(stop, watch=True)
        if not run.connected:
            raise SourcesUnreachable(f"no source could be reached: {run.unreached()}")
        doc = await run.finish(t0, time.time())
        if part is not None:
            doc["partition"] = {**part.block(), "notes": split_notes}
        return doc


def _dead_letter_dir(opts: LiveOptions) -> Path:
    """Rejected messages are kept next to the store (a file appears only once something is rejected)."""
    if opts.sinks.store is not None:
        return Path(opts.sinks.store).resolve().parent / "deadletter"
    return Path(tempfile.gettempdir()) / "factory-twin-deadletter"
