"""Simulated energy meters that publish over MQTT per the default convention.

Per-station power and energy meters and the site meters (grid import, PV, gas, compressed air),
published as ``factory/<site>/<line>/<station>/<signal>`` with the JSON payload
``{"value": v, "ts": <epoch ms>, "quality": "good"}`` (docs/architecture.md, Contracts). The runtime drives
them from the SimPy model through ``publish(signal, value, ts)``; this module knows nothing of the
twin.

QoS 1 with a fixed client id and a kept session, so messages published while the broker is down are
delivered after it returns. The window is bounded (docs/connectors.md: QoS 1 message ids are
16-bit and an unbounded paho queue slows down under the garbage collector): at most ``window``
messages in flight and ``backlog`` queued in all; beyond that a publish is refused, counted and
logged, never silently lost. ``publish`` itself never blocks, so a real-time simulation does not
stall on a slow broker.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import threading

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


def payload_of(value: float | str, ts: float, quality: str = "good") -> bytes:
    """Default-convention JSON payload, ``ts`` in integer epoch milliseconds."""
    if isinstance(value, str):
        v = json.dumps(value)
    else:
        value = float(value)
        if not math.isfinite(value):
            raise ValueError(f"a meter cannot publish {value!r}")
        v = repr(value)
    return f'{{"value":{v},"ts":{round(ts * 1000)},"quality":"{quality}"}}'.encode()


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
    ):
        if not 1 <= window <= backlog < 65_535:
            raise ValueError("need 1 <= window <= backlog < 65535 (QoS 1 message ids are 16-bit)")
        self.site = factory.site.name
        self.host, self.port = host, port
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
        self.published = 0  # accepted by publish()
        self.acked = 0  # PUBACK received
        self.dropped = 0  # refused: window and backlog full
        self.connected = False
        self.reconnects = 0
        self._connects = 0
        self._connected_evt = threading.Event()
        self._started = False

    def signals(self) -> set[str]:
        return set(self._signals)

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
                log.warning("sensors: broker %s:%s not reachable yet; publishes queue until it is", self.host, self.port)

    def publish(self, signal: str, value: float | str, ts: float) -> bool:
        """Queue one reading; False when the backlog is full (counted in ``dropped``)."""
        topic = self._topics.get(signal)
        if topic is None:
            raise ValueError(f"{signal!r} is not a metered signal of site {self.site!r}")
        if is_text(signal):
            raise ValueError(f"{signal!r} is not a meter reading")
        info = self.client.publish(topic, payload_of(value, ts), qos=1)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            with self._lock:
                self.dropped += 1
                n = self.dropped
            if n <= 5 or n % 1000 == 0:
                log.warning("sensors: backlog full, dropped %s (#%d)", signal, n)
            return False
        # NO_CONN: paho keeps a QoS 1 message and sends it after reconnecting
        with self._lock:
            self.published += 1
        return True

    async def drain(self, timeout_s: float = 30.0, poll_s: float = 0.02) -> bool:
        """Wait until every accepted message is acknowledged; False on timeout."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.acked < self.published:
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
        self.connected = False  # a disconnect we asked for is not a lost connection
        self.client.disconnect()
        await asyncio.to_thread(self.client.loop_stop)
        self._started = False
        self.connected = False

    def stats(self) -> dict:
        with self._lock:
            return {
                "published": self.published,
                "acked": self.acked,
                "dropped": self.dropped,
                "unacked": self.published - self.acked,
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
