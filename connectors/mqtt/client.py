"""MQTT source: subscribes to the topics of a mapping and puts Samples on the twin's queue.

paho-mqtt 2.x with callback API version 2, MQTT 3.1.1 (mosquitto, amqtt and most plant brokers
speak it). Reliability rules (reference/connectors.md):
- QoS 1, a fixed client id and ``clean_session=False``: the broker keeps our subscriptions and
  queues QoS 1 messages while we are away, so a restart of either side loses nothing.
- Subscriptions are (re)made in ``on_connect`` (paho #375, telegraf #16038): a broker that lost
  its state still gets them after it comes back.
- paho's network thread reconnects with exponential backoff between ``reconnect_min_s`` (1 s) and
  ``reconnect_max_s`` (30 s).
- Every message is either a Sample or a counted rejection in the dead-letter log; none crashes the
  client.

Threading: paho calls back on its own thread. Samples go to a bounded hand-over buffer; the asyncio
side moves them onto the twin's queue. When the twin falls behind, the buffer fills and the paho
thread waits, so the socket stops being read and the broker holds the rest (back-pressure, not loss).
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import threading
import time
from collections import deque
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from factory_models import Factory, Quality, Sample

from ..mapping import Deadband, Mapping, MqttSource, PathPattern, Transform, template_regex, pick_timestamp, render
from ..signals import BadValue, coerce, is_text, known_signals, signal_name
from ..source import DeadLetterLog, SourceStats, connection_sample
from .payload import PayloadReader

log = logging.getLogger(__name__)

#: paho's ReasonCode values (MQTT 5 numbering, also used for 3.1.1 CONNACK codes 4 and 5).
AUTH_REFUSED = {134: "bad user name or password", 135: "not authorized"}


class MqttAuthError(ConnectionRefusedError):
    """The broker refused our credentials on the first connection: a configuration error."""


class _Route:
    """A resolved topic: the signal it feeds and how to read and convert its payloads."""

    __slots__ = ("signal", "transform", "reader", "text", "scale", "offset", "deadband", "policy")

    def __init__(self, signal: str, transform: Transform, reader: PayloadReader):
        self.signal = signal
        self.transform = transform
        self.reader = reader
        self.text = is_text(signal)
        # copied out of the pydantic model: attribute reads on it cost more in the per-message path
        self.scale = transform.scale
        self.offset = transform.offset
        self.deadband = transform.deadband
        self.policy = transform.timestamp


class MqttClient:
    """One MQTT connection feeding the twin; implements ``connectors.source.Source``.

    ``known`` is the set of signals the twin accepts (``known_signals(factory)``); a topic that
    matches a pattern but names another signal is rejected as ``unknown_signal``.
    """

    #: hand-over buffer between paho's thread and the event loop, in Samples
    MAX_PENDING = 10_000
    #: how long the event loop lets Samples gather before taking them over, seconds
    HANDOVER_S = 0.002
    #: resolved topics kept; a flood of distinct junk topics only costs a cache reset
    MAX_ROUTES = 100_000

    def __init__(self, config: MqttSource, site: str, known: set[str], dead_letter: str | Path | None = None):
        self.config = config
        self.name = config.name
        self.site = site
        self.known = frozenset(known)
        path = dead_letter or config.dead_letter or Path(tempfile.gettempdir()) / f"factory-twin-deadletter-{config.name}.jsonl"
        self.dead_letter = DeadLetterLog(path)
        self._stats = SourceStats(self.name, self.dead_letter)
        self._stats_extra = {"duplicates": 0, "subscribe_refused": 0, "unsent_at_stop": 0, "last_error": None}
        self._patterns = [(PathPattern(t.pattern, {"site": site}), t) for t in config.topics]
        self._routes: dict[str, _Route | None] = {}
        self._deadband = Deadband()
        self._last: dict[str, tuple[float, object]] = {}
        self._cond = threading.Condition(threading.Lock())
        self._pending: deque[Sample] = deque()
        self._wake_scheduled = False
        self._stopping = False
        self._ever_connected = False
        self._fatal: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self.client: paho.Client | None = None

    # --- Source interface -------------------------------------------------------------------------

    def signals(self) -> set[str]:
        out: set[str] = set()
        for _, topic in self._patterns:
            rx = template_regex(topic.signal.replace("{site}", self.site))
            out.update(s for s in self.known if rx.match(s))
        return out

    def stats(self) -> dict:
        d = self._stats.as_dict()
        d.update(self._stats_extra)
        return d

    async def run(self, out: asyncio.Queue) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        client = self.client = self._make_client()
        client.connect_async(self.config.host, self.config.port, self.config.keepalive_s)
        client.loop_start()
        try:
            while True:
                await self._wake.wait()
                # let a burst gather: one hand-over of many Samples costs far less than many of one
                # (each is a thread switch under the GIL); 2 ms of latency means nothing to a twin
                await asyncio.sleep(self.HANDOVER_S)
                self._wake.clear()
                if self._fatal is not None:
                    raise self._fatal
                with self._cond:
                    batch, self._pending = self._pending, deque()
                    self._wake_scheduled = False
                    self._cond.notify_all()
                for sample in batch:
                    if out.full():
                        await out.put(sample)
                    else:
                        out.put_nowait(sample)
        finally:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            client.disconnect()  # a clean DISCONNECT keeps the persistent session on the broker
            await asyncio.to_thread(client.loop_stop)
            with self._cond:
                left, self._pending = self._pending, deque()
            for sample in left:
                try:
                    out.put_nowait(sample)
                except asyncio.QueueFull:
                    self._stats_extra["unsent_at_stop"] += 1
            if self._stats_extra["unsent_at_stop"]:
                log.warning("%s: %d samples not handed over at stop", self.name, self._stats_extra["unsent_at_stop"])
            self._stats.connected = False
            self.dead_letter.close()

    # --- paho setup and callbacks (paho's thread) --------------------------------------------------

    def _make_client(self) -> paho.Client:
        cfg = self.config
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=cfg.session_id,
            clean_session=cfg.qos == 0,  # QoS 1 needs the session kept across disconnects
            protocol=paho.MQTTv311,
        )
        user, password = cfg.resolve_credentials()
        if user is not None:
            client.username_pw_set(user, password)
        if cfg.uses_tls:
            tls = cfg.tls
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
                certfile=str(tls.cert_file) if tls and tls.cert_file else None,
                keyfile=str(tls.key_file) if tls and tls.key_file else None,
            )
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            text = AUTH_REFUSED.get(reason_code.value, str(reason_code))
            self._stats_extra["last_error"] = f"connection refused: {text}"
            if reason_code.value in AUTH_REFUSED and not self._ever_connected:
                # wrong credentials will not heal by retrying: stop and say so
                self._fail(MqttAuthError(
                    f"MQTT source {self.name!r}: broker {self.config.host}:{self.config.port} refused "
                    f"the connection: {text} (check {self.config.username_env or 'username_env'} and the password)"
                ))
                return
            log.error("%s: broker refused the connection: %s", self.name, text)
            return
        if self._ever_connected:
            self._stats.reconnects += 1
        self._ever_connected = True
        self._stats.connected = True
        self._stats_extra["last_error"] = None
        self._deadband.forget()
        log.info("%s: connected to %s:%s (session present: %s)", self.name, self.config.host,
                 self.config.port, flags.session_present)
        client.subscribe([(p.subscription(), self.config.qos) for p, _ in self._patterns])
        self._emit(connection_sample(self.name, True))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self._stats.connected
        self._stats.connected = False
        if self._stopping:
            log.info("%s: disconnected on stop", self.name)
        elif was:
            log.warning("%s: disconnected (%s); reconnecting with backoff", self.name, reason_code)
            self._emit(connection_sample(self.name, False))

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        for (pattern, _), rc in zip(self._patterns, reason_codes):
            if rc.is_failure:
                self._stats_extra["subscribe_refused"] += 1
                log.error("%s: broker refused subscription %r: %s", self.name, pattern.subscription(), rc)

    def _on_message(self, client, userdata, msg) -> None:
        try:
            sample = self.to_sample(msg.topic, msg.payload, time.time(), msg.dup)
        except Exception as exc:  # a bug here must cost one message, counted, never the connection
            log.exception("%s: unexpected error on topic %r", self.name, msg.topic)
            self._stats.reject("internal_error", repr(exc)[:200], msg.topic, msg.payload)
            return
        if sample is not None:
            self._emit(sample)

    # --- message -> Sample ------------------------------------------------------------------------

    def _route(self, topic: str) -> _Route | None:
        route = self._routes.get(topic, False)
        if route is not False:
            return route
        route = None
        for pattern, cfg in self._patterns:
            values = pattern.match(topic)
            if values is not None:
                signal = render(cfg.signal, values)
                reader = PayloadReader(cfg.field, cfg.ts_field, cfg.quality_field)
                route = _Route(signal, cfg.transform(self.config.defaults), reader)
                break
        if len(self._routes) >= self.MAX_ROUTES:
            self._routes.clear()
        self._routes[topic] = route
        return route

    def to_sample(self, topic: str, payload: bytes, receive_ts: float, dup: bool = False) -> Sample | None:
        """The Sample a message makes, or None when it was rejected (counted) or held back by a
        deadband or as a redelivered duplicate."""
        st = self._stats
        st.received += 1
        if len(payload) > self.config.max_payload_bytes:
            st.reject("oversized", f"{len(payload)} bytes > max_payload_bytes {self.config.max_payload_bytes}", topic, payload)
            return None
        route = self._route(topic)
        if route is None:
            st.reject("unknown_topic", "matches no topic pattern of the mapping", topic, payload)
            return None
        signal = route.signal
        if signal not in self.known:
            st.reject("unknown_signal", f"topic maps to {signal!r}, which the factory does not have", topic, payload)
            return None
        try:
            raw, source_ts, quality = route.reader.read(payload)
            value = _convert(signal, raw, quality, route)
        except BadValue as exc:
            st.reject(exc.reason, str(exc), topic, payload)
            return None
        ts, kind = pick_timestamp(route.policy, source_ts, None, receive_ts)
        if dup:
            if self._last.get(signal) == (ts, value):
                self._stats_extra["duplicates"] += 1  # QoS 1 is at-least-once: same message again
                return None
        self._last[signal] = (ts, value)
        if route.deadband and quality != Quality.BAD and not self._deadband.passes(signal, value, route.deadband):
            st.suppressed += 1
            return None
        st.samples += 1
        return Sample(signal, value, ts, quality, kind)

    # --- hand-over to the event loop ----------------------------------------------------------------

    def _emit(self, sample: Sample) -> None:
        with self._cond:
            while len(self._pending) >= self.MAX_PENDING and not self._stopping:
                self._cond.wait(0.5)
            self._pending.append(sample)
            if self._wake_scheduled or self._loop is None:
                return
            self._wake_scheduled = True
        try:
            self._loop.call_soon_threadsafe(self._wake.set)
        except RuntimeError:  # event loop closed while stopping
            pass

    def _fail(self, exc: BaseException) -> None:
        self._fatal = exc
        if self.client is not None:
            self.client.disconnect()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)


def _convert(signal: str, raw: object, quality: Quality, route: _Route) -> float | str:
    """Typed, scaled value. A Bad reading whose value is unusable still becomes a Sample (the twin
    counts it and keeps it out of KPIs): NaN for numbers, "UNKNOWN" for a state, "" for text."""
    if not route.text and type(raw) in (float, int):
        # the common case, a JSON number for a gauge or counter: skip the general coercion
        try:
            value = float(raw) * route.scale + route.offset
        except OverflowError:  # an integer beyond float range
            value = float("inf")
        if value - value == 0.0:  # false for NaN and infinities
            return value
        if quality == Quality.BAD:
            return float("nan")
        raise BadValue("not_finite", f"{signal}: {raw!r} (x {route.scale} + {route.offset}) is not a finite number"[:200])
    try:
        value = coerce(signal, raw)
    except BadValue:
        if quality != Quality.BAD:
            raise
        if not route.text:
            return float("nan")
        return "UNKNOWN" if signal_name(signal) == "state" else ""
    if route.text:
        return value
    scaled = value * route.scale + route.offset
    if scaled - scaled != 0.0:
        raise BadValue("not_finite", f"{signal}: {value!r} x {route.scale} + {route.offset} is not a finite number")
    return scaled


def mqtt_sources(mapping: Mapping, factory: Factory, dead_letter_dir: str | Path | None = None) -> list[MqttClient]:
    """One MqttClient per ``mqtt`` entry of the mapping. Dead-letter logs go to each entry's
    ``dead_letter`` path, else ``<dead_letter_dir>/deadletter-<source>.jsonl``, else the temp dir."""
    known = known_signals(factory)
    out = []
    for cfg in mapping.mqtt:
        path = cfg.dead_letter
        if path is None and dead_letter_dir is not None:
            path = Path(dead_letter_dir) / f"deadletter-{cfg.name}.jsonl"
        out.append(MqttClient(cfg, mapping.site, known, path))
    return out
