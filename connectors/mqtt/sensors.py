"""Simulated energy meters that publish over MQTT per the default convention.

Per-station power and energy meters and the site meters (grid import, PV, gas, compressed air),
published as ``factory/<site>/<line>/<station>/<signal>`` with the JSON payload
``{"value": v, "ts": <epoch ms>, "quality": "good", "seq": n}`` (docs/architecture.md, Contracts;
``seq`` counts 0, 1, 2, ... per topic, so the twin can count what never arrived). The runtime
drives them from the SimPy model through ``publish(signal, value, ts)``; this module knows nothing
of the twin. A reading without ``ts`` is stamped by the meters' ``clock`` (the wall clock unless the
caller gives another), as a field meter stamps with its own. The broker is at ``host:port`` (1883,
MQTT's registered port, by default; ``url`` says where, for the line a demo prints at start).

QoS 1 with a fixed client id and a kept session, so messages published while the broker is down are
delivered after it returns. paho's queue is bounded (docs/connectors.md: QoS 1 message ids are
16-bit and an unbounded paho queue slows down under the garbage collector): at most ``window``
messages in flight and ``backlog`` queued in all. Beyond that a reading is *held* here, in order,
never dropped; ``publish`` never blocks, and ``congested()`` tells the caller to stop producing
until the held readings have gone out (the demo's driver then slows its simulated clock).
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from factory_models import Factory
from factory_models.signals import is_text, meter_signals

log = logging.getLogger(__name__)

#: per-station signals an energy meter measures
STATION_METER_NAMES = ("power_kw", "energy_kwh")


def metered_signals(factory: Factory) -> list[str]:
    """The signals simulated meters publish: power and energy of every machine, then every site meter."""
    out = [f"{ln.name}/{unit}/{name}" for ln, _, unit in factory.station_units() for name in STATION_METER_NAMES]
    for m in factory.meters:
        out.extend(meter_signals(m.name, m.kind))
    return out


def topic_of(site: str, signal: str, prefix: str = "factory") -> str:
    """Default-convention topic of a signal; a site meter uses ``site`` as its line."""
    return f"{prefix}/{site}/{signal}"


def payload_of(value: float | str, ts: float, quality: str = "good", seq: int | None = None) -> bytes:
    """Default-convention JSON payload, ``ts`` in integer epoch milliseconds, ``seq`` when given."""
    if isinstance(value, str):
        v = json.dumps(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"a meter cannot publish {value!r}")
        v = repr(value)
    tail = "" if seq is None else f',"seq":{int(seq)}'
    return f'{{"value":{v},"ts":{round(ts * 1000)},"quality":"{quality}"{tail}}}'.encode()


class MqttSensors:
    """A set of simulated meters sharing one MQTT connection."""

    def __init__(
        self,
        factory: Factory,
        host: str = "127.0.0.1",
        port: int = 1883,
        client_id: str | None = None,
        window: int = 100,
        backlog: int = 20_000,
        username: str | None = None,
        password: str | None = None,
        tls_ca_file: str | None = None,
        prefix: str = "factory",
        reconnect_min_s: float = 1.0,
        reconnect_max_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ):
        if not 1 <= window <= backlog < 65_535:
            raise ValueError("need 1 <= window <= backlog < 65535 (QoS 1 message ids are 16-bit)")
        self.site = factory.site.name
        self.host, self.port = host, port
        self.clock = clock
        self.prefix = prefix
        self._signals = frozenset(metered_signals(factory))
        self._topics: dict[str, str] = {s: topic_of(self.site, s, prefix) for s in self._signals}
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id or f"factory-twin-sensors-{self.site}",
            clean_session=False,  # the broker keeps our in-flight QoS 1 state across a restart
            protocol=paho.MQTTv311,
        )
        self.client.max_inflight_messages_set(window)
        self.client.max_queued_messages_set(backlog)
        self.client.reconnect_delay_set(reconnect_min_s, reconnect_max_s)
        if username is not None:
            self.client.username_pw_set(username, password)
        if tls_ca_file is not None:
            self.client.tls_set(ca_certs=tls_ca_file)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self._lock = threading.Lock()
        self._seq: dict[str, int] = {}  # topic -> the next seq
        self._held: deque[tuple[str, bytes]] = deque()  # (topic, payload) waiting for room in paho's queue
        self.published = 0  # accepted by publish(): every reading
        self.handed = 0  # handed to paho (queued, in flight or acknowledged)
        self.acked = 0  # PUBACK received
        self.held_max = 0  # most readings held at once
        self.backlog_full = 0  # times paho's queue was found full (the caller was told to slow down)
        self.unsent_at_stop = 0  # held or unacknowledged when stopped: the one way a reading is lost
        self.connected = False
        self.reconnects = 0
        self._connects = 0
        self._connected_evt = threading.Event()
        self._started = False

    def signals(self) -> set[str]:
        return set(self._signals)

    @property
    def url(self) -> str:
        """The broker the meters publish to."""
        return f"mqtt://{self.host}:{self.port}"

    async def start(self, wait_s: float | None = 10.0) -> None:
        """Connect in the background (retrying with backoff); wait up to ``wait_s`` for the first
        connection, then go on anyway: publishes queue until the broker answers."""
        if self._started:
            return
        self._started = True
        self.client.connect_async(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if wait_s:
            ok = await asyncio.to_thread(self._connected_evt.wait, wait_s)
            if not ok:
                log.warning("sensors: broker %s not reachable yet; publishes queue until it is", self.url)
        log.info("simulated meters publishing to %s as %s/%s/...", self.url, self.prefix, self.site)

    def publish(self, signal: str, value: float | str, ts: float | None = None) -> bool:
        """Send one reading (QoS 1, the topic's next ``seq``), stamped ``ts`` (epoch s; default the
        meters' clock): True when paho took it, False when its queue is full and the reading is
        held here until there is room (never dropped)."""
        topic = self._topics.get(signal)
        if topic is None:
            raise ValueError(f"{signal!r} is not a metered signal of site {self.site!r}")
        if is_text(signal):
            raise ValueError(f"{signal!r} is not a meter reading")
        seq = self._seq.get(topic, 0)
        payload = payload_of(value, self.clock() if ts is None else ts, seq=seq)
        self._seq[topic] = seq + 1
        with self._lock:
            self.published += 1
        if self._held and not self.pump():
            self._hold(topic, payload)
            return False
        if not self._hand(topic, payload):
            self._hold(topic, payload)
            return False
        return True

    def _hand(self, topic: str, payload: bytes) -> bool:
        # NO_CONN is fine: paho keeps a QoS 1 message and sends it after reconnecting
        if self.client.publish(topic, payload, qos=1).rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            return False
        with self._lock:
            self.handed += 1
        return True

    def _hold(self, topic: str, payload: bytes) -> None:
        if not self._held:
            self.backlog_full += 1
            # one line at INFO; the count is in stats(), and the demo says what the holding cost it
            log.log(logging.INFO if self.backlog_full == 1 else logging.DEBUG,
                    "sensors: paho's queue is full (%d queued); holding readings until the broker takes them (#%d)",
                    self.client.max_queued_messages, self.backlog_full)
        self._held.append((topic, payload))
        self.held_max = max(self.held_max, len(self._held))

    def pump(self) -> bool:
        """Hand held readings to paho while it has room; True when none is held any more."""
        held = self._held
        while held:
            if not self._hand(*held[0]):
                return False
            held.popleft()
        return True

    def congested(self) -> bool:
        """Readings are held for want of room: the producer should wait (call again to re-check)."""
        return bool(self._held) and not self.pump()

    async def drain(self, timeout_s: float = 30.0, poll_s: float = 0.02) -> bool:
        """Wait until every reading is handed over and acknowledged; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while not self.pump() or self.acked < self.handed:
            if loop.time() >= deadline:
                return False
            await asyncio.sleep(poll_s)
        return True

    async def stop(self, drain_s: float = 5.0) -> None:
        """Drain for up to ``drain_s``, then disconnect (the session stays on the broker)."""
        if not self._started:
            return
        if drain_s and self.connected:
            await self.drain(drain_s)
        with self._lock:
            self.unsent_at_stop = len(self._held) + self.handed - self.acked
        if self.unsent_at_stop:
            log.warning("sensors: stopped with %d readings not acknowledged by the broker", self.unsent_at_stop)
        self.connected = False  # a disconnect we asked for is not a lost connection
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
        self._started = False
        self.connected = False

    def last_seq(self) -> dict[str, int]:
        """topic -> the seq of the last reading published on it."""
        return {topic: n - 1 for topic, n in self._seq.items()}

    def stats(self) -> dict:
        with self._lock:
            return {
                "published": self.published,
                "acked": self.acked,
                "held": len(self._held),
                "held_max": self.held_max,
                "backlog_full": self.backlog_full,
                "unacked": self.published - self.acked,
                "unsent_at_stop": self.unsent_at_stop,
                "connected": self.connected,
                "reconnects": self.reconnects,
            }

    # paho's thread
    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("sensors: broker refused the connection: %s", reason_code)
            return
        self._connects += 1
        self.reconnects = self._connects - 1
        self.connected = True
        self._connected_evt.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected:
            log.warning("sensors: disconnected (%s); reconnecting", reason_code)
        self.connected = False

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            self.acked += 1
