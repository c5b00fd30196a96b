"""The demo's plant on loopback: the SimPy model run in step with the wall clock (times ``speed``),
a simulated PLC (OPC UA server: states, counters, products) and simulated energy meters (MQTT
publisher: power, energy, site meters) through a broker (embedded amqtt, or ``mqtt_url``). The
twin reads them back over the wire exactly as it would read a real line, through the same mapping,
clients, router and KPI core; the model's own log is the ground truth to compare with.

The simulators never drop a reading. When the meters' readings cannot reach the twin as fast as
the model makes them (a busy machine, a slow or stopped broker, a twin that lags), the driver holds
the simulated clock until they have: more than ``MAX_UNDELIVERED`` readings on their way, or any
held back by the meters' full publish queue, and the model waits; the demo runs slower than ``speed`` for a while, says so once in
the log, and counts it (``backpressure`` in the ``demo`` block), rather than feeding the twin a
plant with holes in it.

The PLC and the embedded broker listen on fixed ports (``plc_port``, ``broker_port``; the CLI's
4840 and 1883, the ports of ``configs/mapping_demo_*.yaml``), so an OPC UA client or a second
``factory-twin run`` can connect to the plant while the demo runs; ``start()`` prints both
endpoints. Port 0 takes free ports (tests). The PLC writes its state as PackML codes and stamps
its values with the plant's clock: the simulated one, which the demo's twin runs on too.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from connectors.mapping import Mapping, MqttSource, MqttTopic, OpcUaNode, OpcUaSource, Subscription
from connectors.mqtt.broker import EmbeddedBroker
from connectors.mqtt.sensors import MqttSensors
from connectors.opcua.plc import SimulatedPlc
from factory_models import Factory, State

from twin.model import FactorySim
from twin.shadow.live_twin import RETAIN_S

log = logging.getLogger(__name__)

METER_INTERVAL_S = 10.0  # simulated seconds between two readings of each simulated meter
#: the model runs at most this many simulated seconds between two looks at the meters' backlog
STEP_S = 60.0
#: meter readings published and not yet received by the twin, at most, before the model waits
MAX_UNDELIVERED = 2000

#: the code table of the PLC's state variable and the value map of the demo mapping that reads it
STATE_VALUES = "packml"

#: what the demo's PLC is read for; power and energy come from the energy meters over MQTT
PLC_SIGNALS = ("state", "product", "produced", "good", "scrap", "rework")


def demo_mapping(factory: Factory, plc: SimulatedPlc, mqtt_url: str) -> Mapping:
    """The mapping a plant engineer would write for the demo plant (``browse`` drafts the PLC part):
    the PLC's state (read through the ``packml`` value map), product and counter nodes by namespace
    URI, the meters by the default topic convention."""
    # the PLC's ``twin`` codes are the twin's own State numbers: they need no value map
    values = None if plc.codes.name == "twin" else plc.codes.name
    nodes = [OpcUaNode(node=plc.node_id(sig), signal=sig, values=values if sig.endswith("/state") else None)
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


def sim_buffers(sim: FactorySim, factory: Factory):
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


class DemoPlant:
    """The simulated PLC, meters and broker around one SimPy model. ``start()`` brings them up with
    the model at the start of the first shift; ``drive()`` runs the model with the wall clock once
    the twin's sources are subscribed; ``settle()`` lets what it published reach the twin."""

    def __init__(self, factory: Factory, *, seed: int, speed: float, mqtt_url: str | None = None,
                 sensor_window: int = 100, sensor_backlog: int = 20_000, plc_port: int = 0, broker_port: int = 0,
                 announce: Callable[[str], None] | None = None):
        self.factory, self.seed, self.speed = factory, seed, speed
        self.mqtt_url = mqtt_url
        self.broker_port = broker_port
        # where the endpoints are told: stderr by default, beside the dashboard's address
        self.announce = announce or (lambda line: print(line, file=sys.stderr, flush=True))
        self.sensor_window, self.sensor_backlog = sensor_window, sensor_backlog
        self.slowed_s = 0.0  # wall seconds the simulated clock stood still for the meters
        self.slowdowns = 0  # times it began to
        self.driven_s = 0.0  # wall seconds of driving (to tell the speed reached)
        self.sim_driven_s = 0.0  # simulated seconds driven
        self.delivered: Callable[[], int] | None = None  # meter messages the twin has received
        # the PLC's clock is the plant's: the simulated one (its start before the model exists)
        self.plc = SimulatedPlc(factory, host="127.0.0.1", port=plc_port, state_values=STATE_VALUES,
                                clock=lambda: self.sim.now_epoch if self.sim is not None else time.time())
        self.broker: EmbeddedBroker | None = None
        self.sensors: MqttSensors | None = None
        self.sim: FactorySim | None = None
        self.feed: PlantFeed | None = None

    async def start(self) -> None:
        if self.mqtt_url is None:
            self.broker = EmbeddedBroker(port=self.broker_port)
            await self.broker.start()
            self.mqtt_url = self.broker.url
        u = urlsplit(self.mqtt_url)
        self.sensors = MqttSensors(self.factory, host=u.hostname or "127.0.0.1", port=u.port or 1883,
                                   client_id=f"factory-twin-sensors-{self.factory.site.name}",
                                   window=self.sensor_window, backlog=self.sensor_backlog)
        self.feed = PlantFeed(self.factory, self.plc, self.sensors)
        # the ground truth keeps a little more than the twin (RETAIN_S, forgotten in 5 % steps), so it
        # covers every span the twin's summary can be computed over, in bounded memory
        self.sim = FactorySim(self.factory, self.seed, meter_interval_s=METER_INTERVAL_S, on_event=self.feed,
                              retain_s=1.1 * RETAIN_S)
        await self.plc.start()  # after the model: its first values carry the plant's clock
        await self.sensors.start()
        self.announce(f"simulated PLC: {self.plc.endpoint} (namespace {self.plc.namespace_uri}, "
                      f"state as {self.plc.codes.name} codes)")
        self.announce(f"MQTT {'broker (embedded)' if self.broker else 'broker'}: {self.mqtt_url} "
                      f"(simulated meters publish factory/{self.factory.site.name}/...)")
        # up to the start of the first shift at full speed: the twin then sees the whole shift
        first = _first_shift_start_s(self.sim)
        if first > self.sim.env.now:  # a plant whose shift starts at once has nothing to run up
            self.sim.env.run(until=first)
        # the PLC holds its values before anyone connects, as a running PLC does
        self.feed.go_live("plc")
        await self.plc.flush()

    def mapping(self) -> Mapping:
        return demo_mapping(self.factory, self.plc, self.mqtt_url)

    def congested(self) -> bool:
        """The meters' readings are not getting through: the model must wait."""
        if self.sensors.congested():
            return True
        return self.delivered is not None and self.sensors.published - self.delivered() > MAX_UNDELIVERED

    async def drive(self, stop: asyncio.Event, subscribed, delivered: Callable[[], int] | None = None) -> None:
        """Run the model in step with the wall clock until ``stop``; the meters go live once the
        awaitable ``subscribed`` is done, and their first readings are the baselines.
        ``delivered()``, the number of meter messages the twin's MQTT source has received, lets the
        model wait for the twin too, not only for the broker."""
        self.delivered = delivered
        await subscribed
        self.feed.go_live("mqtt")
        sim = self.sim
        loop = asyncio.get_running_loop()
        wall0 = start = loop.time()
        sim0 = read_at = sim.env.now
        held = False
        try:
            while not stop.is_set():
                target = sim0 + (loop.time() - wall0) * self.speed
                while sim.env.now < target and not self.congested():
                    sim.env.run(until=min(target, sim.env.now + STEP_S))
                    if sim.env.now - read_at >= METER_INTERVAL_S:
                        # energy meters report on their own clock too, not only when a state changes
                        sim.flush()
                        read_at = sim.env.now
                if sim.env.now < target:
                    # the meters hold readings: the simulated clock waits for them, and does not
                    # race to catch up afterwards (the time waited is the demo's slowdown)
                    waited = (target - sim.env.now) / self.speed
                    wall0 += waited
                    self.slowed_s += waited
                    if not held:
                        self.slowdowns += 1
                        if self.slowdowns == 1:
                            log.warning("demo: the meters' readings cannot reach the twin as fast as speed %g makes "
                                        "them; the simulated clock slows down instead of dropping any (see "
                                        "backpressure in the demo summary)", self.speed)
                    held = True
                else:
                    held = False
                await asyncio.sleep(0.05)
        finally:
            self.driven_s = loop.time() - start
            self.sim_driven_s = sim.env.now - sim0

    async def settle(self) -> None:
        """What the model published reaches the wire before the books close."""
        await self.plc.flush()
        if not await self.sensors.drain(timeout_s=30.0):
            log.warning("demo: the broker has not acknowledged %d meter readings after 30 s", self.sensors.stats()["unacked"])
        if self.delivered is not None:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 30.0
            while self.delivered() < self.sensors.published and loop.time() < deadline:
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.3)  # a few OPC UA publishing intervals

    def force_down(self, unit: str, seconds: float = 600.0) -> dict:
        """An operator-injected stop: the station goes DOWN now for ``seconds`` of working time."""
        sim = self.sim
        sim.force_down(unit, float(seconds))
        env = sim.env
        while env.peek() <= env.now:  # let the interrupt land now, not at the next step of the driver
            env.step()
        return {"unit": unit, "state": sim.station_state(unit).name}

    async def finish(self) -> None:
        """Stop the meters; the ground truth closes its energy readings at the end of the run."""
        await self.sensors.stop(drain_s=5.0)
        self.feed.live.clear()
        self.sim.flush()
        if self.slowed_s:
            log.info("demo: the simulated clock waited %.1f s for the meters in %d slowdowns (speed %.0f reached "
                     "against %g asked)", self.slowed_s, self.slowdowns, self.speed_reached(), self.speed)

    def speed_reached(self) -> float:
        return self.sim_driven_s / self.driven_s if self.driven_s > 0 else 0.0

    def extra(self) -> dict:
        return {"speed": self.speed, "mqtt": self.mqtt_url, "opcua": self.plc.endpoint,
                "published": self.feed.published, "sensors": self.sensors.stats(),
                "backpressure": {"slowed_s": round(self.slowed_s, 3), "slowdowns": self.slowdowns,
                                 "speed_reached": round(self.speed_reached(), 1)}}

    async def stop(self) -> None:
        await self.plc.stop()
        if self.broker is not None:
            await self.broker.stop()
