"""Sparkplug B source: the twin as a Sparkplug Host Application, putting Samples on its queue.

paho-mqtt 2.x (callback API 2, MQTT 3.1.1) driven by the event loop (connectors/mqtt/loop.py),
with Clean Session true as Sparkplug 3.0.0 asks of every client. The meaning of the messages
(births, aliases, seq, deaths) is session.py's; this module connects, routes each metric reading
to the signals the mapping names through the rules every source shares (``transform.to_sample``),
sends the rebirth requests session.py decides on (NCMD 'Node Control/Rebirth' = true), and turns a
death into the UNKNOWN state of every station whose state the dead node or device fed.

With ``host_id`` the client is a Host Application that announces itself: the will is
``spBv1.0/STATE/<host_id>`` ``{"online": false, "timestamp": T}`` (QoS 1, retained), and once its
subscriptions are granted it publishes ``{"online": true, "timestamp": T}`` with the same T
(Sparkplug 3.0.0, section 4, Sparkplug Host Application STATE). Edge Nodes that name this host as
their Primary Host wait for it before they publish their births.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from factory_models import Factory, Quality, Sample, TsKind
from factory_models.signals import known_signals, signal_name

from ..mqtt.client import AUTH_REFUSED, MqttAuthError
from ..mqtt.loop import PahoInLoop
from ..source import (
    Backoff,
    DeadLetterLog,
    SourceStats,
    connection_sample,
    dead_letter_path,
)
from ..transform import (
    DEADBAND,
    Rules,
    SignalMemory,
    render,
    template_signals,
    to_sample,
)
from .config import SparkplugSource
from .payload import rebirth_request
from .session import NAMESPACE, Outcome, Sessions, parse_topic

log = logging.getLogger(__name__)

SUBSCRIBED = ("NBIRTH", "NDEATH", "DBIRTH", "DDEATH", "NDATA", "DDATA")


class SparkplugClient:
    """One broker connection as a Sparkplug Host Application; implements ``connectors.source.Source``."""

    #: resolved (group, node, device, metric) routes kept; a flood of distinct names only costs a reset
    MAX_ROUTES = 100_000

    def __init__(self, config: SparkplugSource, site: str, known: set[str], dead_letter: str | Path | None = None):
        self.config = config
        self.name = config.name
        self.site = site
        self.known = frozenset(known)
        self.dead_letter = DeadLetterLog.for_source(config, dead_letter)
        self._stats = SourceStats(self.name, self.dead_letter)
        self._extra = {"metrics_unmapped": 0, "unknown_marked": 0, "rebirths_sent": 0, "connect_failures": 0,
                       "last_error": None}
        self.sessions = Sessions(config.reorder_timeout_s, config.rebirth_interval_s)
        self._entries = [(e.placeholders(), e.signal, e.transform(config.defaults)) for e in config.metrics]
        self._routes: dict[tuple, tuple[tuple[str, Rules | None], ...]] = {}
        # (group, node) -> device (None: the node) -> signals its metrics fed: what a death leaves unknown
        self._fed: dict[tuple[str, str], dict[str | None, set[str]]] = {}
        self._deadband = SignalMemory()  # deadband, rollovers, unmapped state codes
        self._state_ts: int | None = None  # ms of the current STATE will and birth
        self._ever_connected = False
        self._fatal: BaseException | None = None
        self._io: PahoInLoop | None = None
        self._backoff: Backoff | None = None
        self.client: paho.Client | None = None

    # --- Source interface -------------------------------------------------------------------------

    def signals(self) -> set[str]:
        """The signals its entries name outright, and those its templates have delivered: a template
        such as ``{line}/{station}/{signal}`` could feed every signal of the site, but a broker
        outage must blank only what this source actually feeds (as the MQTT source does)."""
        out = set(self._stats.delivered)
        for _, template, _ in self._entries:
            if "{" not in template:
                out |= template_signals(template, self.site, self.known)
        return out

    def delivered_signals(self) -> set[str]:
        """The signals at least one Sample was put on the queue for (run diagnostics)."""
        return set(self._stats.delivered)

    def possible_signals(self) -> set[str]:
        """Every known signal its entries' templates can produce."""
        out: set[str] = set()
        for _, template, _ in self._entries:
            out |= template_signals(template, self.site, self.known)
        return out

    def stats(self) -> dict:
        d = self._stats.as_dict()
        d.update(self._extra)
        d.update(self.sessions.counts)
        d.update(self.sessions.online())
        return d

    async def run(self, out: asyncio.Queue) -> None:
        cfg = self.config
        client = self.client = self._make_client()
        io = self._io = PahoInLoop(client, out)
        backoff = self._backoff = Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s)
        reorder = asyncio.create_task(self._reorder_watch(), name=f"{self.name}-reorder")
        client.connect_async(cfg.host, cfg.port, cfg.keepalive_s)
        try:
            while True:
                io.gone.clear()
                self._set_will(client)
                try:
                    await asyncio.to_thread(client.reconnect)
                except OSError as exc:
                    self._connect_failed(f"cannot connect: {exc}")
                    await backoff.sleep()
                    continue
                await io.gone.wait()
                if self._fatal is not None:
                    raise self._fatal
                await backoff.sleep()  # reset in _on_connect: after a working connection, reconnect_min_s
        finally:
            reorder.cancel()
            if cfg.host_id and self._stats.connected:  # a clean stop announces the host offline first
                client.publish(self._state_topic(), self._state_payload(False), qos=1, retain=True)
            io.stop()
            self._stats.connected = False
            self.dead_letter.close()

    def _connect_failed(self, message: str) -> None:
        self._extra["connect_failures"] += 1
        # the drop was the one WARNING line; attempts while the broker is away are counted, and
        # logged once per new reason only before the first connection
        quiet = self._ever_connected or message == self._extra["last_error"]
        self._extra["last_error"] = self._stats.last_error = message
        log.log(logging.DEBUG if quiet else logging.WARNING, "%s: %s:%s: %s; retrying with backoff",
                self.name, self.config.host, self.config.port, message)

    async def _reorder_watch(self) -> None:
        """Rebirth requests for gaps whose Reorder Timeout elapsed with no message arriving since."""
        step = min(0.25, max(self.config.reorder_timeout_s / 4, 0.05))
        while True:
            await asyncio.sleep(step)
            if self._stats.connected:
                for group, node in self.sessions.due(time.time()):
                    self._send_rebirth(group, node)

    # --- paho -----------------------------------------------------------------------------------------

    def _make_client(self) -> paho.Client:
        cfg = self.config
        client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=cfg.session_id,
                             clean_session=True, protocol=paho.MQTTv311)
        user, password = cfg.resolve_credentials()
        if user is not None:
            client.username_pw_set(user, password)
        if cfg.uses_tls:
            tls = cfg.tls
            client.tls_set(ca_certs=str(tls.ca_file) if tls and tls.ca_file else None,
                           certfile=str(tls.cert_file) if tls and tls.cert_file else None,
                           keyfile=str(tls.key_file) if tls and tls.key_file else None)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _subscriptions(self) -> list[tuple[str, int]]:
        group = self.config.group_id or "+"
        subs = [(f"{NAMESPACE}/{group}/{kind}/#", 1) for kind in SUBSCRIBED]
        if self.config.host_id:
            subs.append((self._state_topic(), 1))
        return subs

    def _state_topic(self) -> str:
        return f"{NAMESPACE}/STATE/{self.config.host_id}"

    def _state_payload(self, online: bool) -> bytes:
        return json.dumps({"online": online, "timestamp": self._state_ts}).encode()

    def _set_will(self, client: paho.Client) -> None:
        if self.config.host_id:
            self._state_ts = int(time.time() * 1000)  # birth and will of one connection share it
            client.will_set(self._state_topic(), self._state_payload(False), qos=1, retain=True)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            text = AUTH_REFUSED.get(reason_code.value, str(reason_code))
            self._connect_failed(f"connection refused: {text}")
            if reason_code.value in AUTH_REFUSED and not self._ever_connected:
                self._fatal = MqttAuthError(f"Sparkplug source {self.name!r}: broker {self.config.host}:"
                                            f"{self.config.port} refused the connection: {text}")
                client.disconnect()
                self._io.gone.set()
            return
        if self._ever_connected:
            self._stats.reconnects += 1
        self._ever_connected = True
        self._stats.connected = True
        self._extra["last_error"] = self._stats.last_error = None
        self._backoff.reset()
        self._deadband.forget()
        known = list(self.sessions.nodes)
        self.sessions.forget_all()  # a clean session: what happened while away is unknown
        log.info("%s: connected to %s:%s", self.name, self.config.host, self.config.port)
        client.subscribe(self._subscriptions())
        self._io.emit(connection_sample(self.name, True))
        for group, node in known:  # ask the nodes known before for their births now, not at their next change
            if self.sessions.ask(self.sessions.node(group, node), time.time()):
                self._send_rebirth(group, node)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        for (topic, _), rc in zip(self._subscriptions(), reason_codes):
            if rc.is_failure:
                log.error("%s: broker refused subscription %r: %s", self.name, topic, rc)
        if self.config.host_id:  # subscribed first, then the birth (Sparkplug 3.0.0, 5: Host Session Establishment)
            client.publish(self._state_topic(), self._state_payload(True), qos=1, retain=True)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self._stats.connected
        self._stats.connected = False
        if self._io is not None and self._io.stopping:
            return
        if was:
            log.warning("%s: disconnected (%s); reconnecting with backoff", self.name, reason_code)
            self._io.emit(connection_sample(self.name, False))
        elif self._fatal is None and self._extra["last_error"] is None:
            self._connect_failed(f"the broker closed the connection before accepting it: {reason_code}")

    def _on_message(self, client, userdata, msg) -> None:
        self._io.messages += 1
        try:
            samples = self.handle(msg.topic, msg.payload, time.time())
        except Exception as exc:  # a bug here must cost one message, counted, never the connection
            log.exception("%s: unexpected error on topic %r", self.name, msg.topic)
            self._stats.reject("internal_error", repr(exc)[:200], msg.topic, msg.payload)
            return
        for sample in samples:
            self._io.emit(sample)

    def _send_rebirth(self, group: str, node: str) -> None:
        if not self.config.rebirth or self.client is None or not self._stats.connected:
            return
        self.client.publish(f"{NAMESPACE}/{group}/NCMD/{node}", rebirth_request(), qos=0, retain=False)
        self._extra["rebirths_sent"] += 1
        log.info("%s: asked %s/%s for a rebirth", self.name, group, node)

    # --- message -> Samples ---------------------------------------------------------------------------

    def handle(self, topic: str, payload: bytes, receive_ts: float) -> list[Sample]:
        """The Samples one message makes (rejections counted, rebirths requested on the way)."""
        st = self._stats
        st.received += 1
        if len(payload) > self.config.max_payload_bytes:
            st.reject("oversized", f"{len(payload)} bytes > max_payload_bytes {self.config.max_payload_bytes}", topic, payload)
            return []
        if self.config.host_id and topic == self._state_topic():
            self._own_state(payload)
            return []
        parts = parse_topic(topic)
        if parts is None:
            st.reject("bad_topic", f"not {NAMESPACE}/<group>/<message_type>/<edge_node>[/<device>]", topic, payload)
            return []
        out = self.sessions.handle(parts, payload, receive_ts)
        for reason, detail in out.rejected:
            st.reject(reason, detail, topic, payload)
        if out.rebirth:
            self._send_rebirth(parts.group, parts.node)
        samples = self._unknown(out, receive_ts) if out.died else []
        for reading in out.readings:
            samples.extend(self._samples(out, reading, receive_ts, topic, payload))
        st.samples += len(samples)
        return samples

    def _own_state(self, payload: bytes) -> None:
        """Our own STATE topic: a death of ours (an old will, or another client with our host_id)
        while we are online is answered with our birth again, as the host's STATE is what edge
        nodes wait on."""
        try:
            online = json.loads(payload).get("online")
        except (ValueError, AttributeError):
            return
        if online is False and self._stats.connected and self.client is not None:
            self.client.publish(self._state_topic(), self._state_payload(True), qos=1, retain=True)

    def _unknown(self, out: Outcome, ts: float) -> list[Sample]:
        """UNKNOWN for every state signal the dead node (with its devices) or device fed."""
        fed = self._fed.get((out.topic.group, out.topic.node), {})
        signals = set().union(*fed.values()) if out.topic.device is None and fed else fed.get(out.topic.device, set())
        marked = [Sample(s, "UNKNOWN", ts, Quality.GOOD, TsKind.RECEIVE) for s in sorted(signals)
                  if signal_name(s) == "state"]
        self._extra["unknown_marked"] += len(marked)
        self._deadband.forget()  # the first values after the next birth must pass whatever they are
        return marked

    def _samples(self, out: Outcome, reading, receive_ts: float, topic: str, payload: bytes) -> list[Sample]:
        routes = self._route(out.topic.group, out.topic.node, reading.device, reading.name)
        if not routes:
            self._extra["metrics_unmapped"] += 1
            return []
        raw, ts, _ = reading.value
        if out.birth and out.payload_ts is not None and (ts is None or ts < out.payload_ts):
            ts = out.payload_ts  # a birth certifies its values as current at its own time
        quality = Quality.BAD if raw is None else Quality.GOOD
        made = []
        for signal, rules in routes:
            if rules is None:
                self._stats.reject("unknown_signal", f"metric {reading.name!r} maps to {signal!r}, which the "
                                   "factory does not have", topic, payload)
                continue
            s = to_sample(rules, raw, quality, ts, out.payload_ts, receive_ts, self._deadband)
            if type(s) is Sample:
                made.append(s)
                self._stats.delivered.add(signal)
                self._fed.setdefault((out.topic.group, out.topic.node), {}).setdefault(reading.device, set()).add(signal)
            elif s is DEADBAND:
                self._stats.suppressed += 1
            else:
                self._stats.reject(s.reason, f"{reading.name}: {s.detail}", topic, payload)
                if s.sample is not None:  # a state code the value map lacks: the station is UNKNOWN, not unchanged
                    made.append(s.sample)
        return made

    def _route(self, group: str, node: str, device: str | None, name: str) -> tuple:
        key = (group, node, device, name)
        routes = self._routes.get(key)
        if routes is not None:
            return routes
        found = []
        for (p_node, p_device, p_metric), template, transform in self._entries:
            if (p_device is None) != (device is None):
                continue
            values = {"site": self.site}
            for pattern, text in ((p_node, node), (p_device, device), (p_metric, name)):
                got = pattern.match(text) if pattern is not None else {}
                if got is None:
                    break
                values.update(got)
            else:
                signal = render(template, values)
                found.append((signal, Rules(signal, transform) if signal in self.known else None))
        if len(self._routes) >= self.MAX_ROUTES:
            self._routes.clear()
        self._routes[key] = routes = tuple(found)
        return routes


def sparkplug_sources(mapping, factory: Factory, dead_letter_dir: str | Path | None = None) -> list[SparkplugClient]:
    """One SparkplugClient per ``sparkplug`` entry of ``mapping`` (a loaded Mapping)."""
    known = known_signals(factory)
    return [SparkplugClient(cfg, mapping.site, known, dead_letter_path(cfg, dead_letter_dir)) for cfg in mapping.sparkplug]
