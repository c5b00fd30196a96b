"""MQTT source: subscribes to the topics of a mapping and puts Samples on the twin's queue.

paho-mqtt 2.x with callback API version 2, MQTT 3.1.1 (mosquitto, amqtt and most plant brokers
speak it). Reliability rules (docs/connectors.md):
- QoS 1, a fixed client id and ``clean_session=False``: the broker keeps our subscriptions and
  queues QoS 1 messages while we are away, so a restart of either side loses nothing, provided
  the broker's queue per client and its persistence allow it (README.md, "What your broker must
  keep"); what it dropped anyway shows as ``lost`` when the publisher sends ``seq``.
- Subscriptions are (re)made in ``on_connect`` (paho #375, telegraf #16038): a broker that lost
  its state still gets them after it comes back.
- Reconnects with exponential backoff between ``reconnect_min_s`` (1 s) and ``reconnect_max_s``
  (30 s).
- Every message is either a Sample or a counted rejection in the dead-letter log; none crashes the
  client. A message that never arrived is counted too when its publisher numbers them (the
  optional ``seq`` field: ``lost``, ``lost_by_topic``, ``seq_resets`` in ``stats()``; seq.py). Value, timestamp and deadband rules are connectors/transform.py's, shared with every
  source; this module only reads topics and payloads.

Threading: none of its own. paho runs inside the asyncio event loop (loop.py: ``PahoInLoop``);
only the blocking connect (TCP, TLS handshake) runs in a worker thread. Each message's Sample goes
straight onto the twin's queue before paho acknowledges it; a full queue stops the reading of the
socket (back-pressure, not loss). Reconnects use ``connectors.source.Backoff``
(``reconnect_min_s`` .. ``reconnect_max_s``, with jitter).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from factory_models import Factory, Sample
from factory_models.signals import BadValue, known_signals

from ..source import Backoff, DeadLetterLog, SourceStats, connection_sample, dead_letter_path
from ..transform import DEADBAND, DUPLICATE, Deadband, PathPattern, Rules, Transform, render, template_signals, to_sample
from .config import MqttSource
from .loop import PahoInLoop
from .payload import PayloadReader, read_fast
from .seq import SeqTracker

log = logging.getLogger(__name__)

#: paho's ReasonCode values (MQTT 5 numbering, also used for 3.1.1 CONNACK codes 4 and 5).
AUTH_REFUSED = {134: "bad user name or password", 135: "not authorized"}


class MqttAuthError(ConnectionRefusedError):
    """The broker refused our credentials on the first connection: a configuration error."""


class _Route:
    """A resolved topic: the signal it feeds, how to read its payloads, the rules for its values."""

    __slots__ = ("signal", "reader", "rules", "fast")

    def __init__(self, signal: str, transform: Transform, reader: PayloadReader, fields: tuple[str, ...] | None = None):
        self.signal = signal
        self.reader = reader
        self.rules = Rules(signal, transform)
        # (value, ts, quality, seq) keys when all four are top-level JSON fields of a numeric signal:
        # such payloads take the fast path of ``MqttClient.to_sample``
        self.fast = fields if fields and not self.rules.text and not any("." in f for f in fields) else None


class MqttClient:
    """One MQTT connection feeding the twin; implements ``connectors.source.Source``.

    ``known`` is the set of signals the twin accepts (``known_signals(factory)``); a topic that
    matches a pattern but names another signal is rejected as ``unknown_signal``.
    """

    #: resolved topics kept; a flood of distinct junk topics only costs a cache reset
    MAX_ROUTES = 100_000

    def __init__(self, config: MqttSource, site: str, known: set[str], dead_letter: str | Path | None = None):
        self.config = config
        self.name = config.name
        self.site = site
        self.known = frozenset(known)
        self.dead_letter = DeadLetterLog.for_source(config, dead_letter)
        self._stats = SourceStats(self.name, self.dead_letter)
        self._stats_extra = {"duplicates": 0, "subscribe_refused": 0, "unsent_at_stop": 0, "connect_failures": 0,
                             "last_error": None}
        self._patterns = [(PathPattern(t.pattern, {"site": site}), t) for t in config.topics]
        # one subscription per topic filter: several entries on one pattern (one payload, several
        # signals) must not make the broker send each retained message once per entry
        self._filters = list(dict.fromkeys(p.subscription() for p, _ in self._patterns))
        self._routes: dict[str, tuple[_Route, ...]] = {}
        self._deadband = Deadband()  # the source's signal memory: deadband, rollovers, unmapped values
        self._tz = ZoneInfo(config.timezone) if config.timezone else None  # for device times without an offset
        self._seq = SeqTracker(self.name)
        # last (ts, value) per signal, to tell a QoS 1 redelivery from a new reading; kept across
        # reconnects, which is when redeliveries come
        self._seen: dict[str, tuple] = {}
        self._ever_connected = False
        self._fatal: BaseException | None = None
        self._io: PahoInLoop | None = None  # while running: paho driven by the event loop
        self._attempt_failed = False  # this connection attempt's failure is already counted
        self._last_logged: str | None = None  # the connect failure last logged at WARNING
        self._down_since: float | None = None  # wall clock of the last drop, for the reconnect line
        self._backoff = Backoff(config.reconnect_min_s, config.reconnect_max_s)
        self._matched: set[int] = set()  # topic entries (by index) whose pattern some topic matched
        self._socket_error: str | None = None  # paho's last socket error while connecting
        self.client: paho.Client | None = None

    # --- Source interface -------------------------------------------------------------------------

    def signals(self) -> set[str]:
        """The signals its topic entries name outright, and those its patterns have delivered: a
        pattern such as ``factory/{site}/{line}/{station}/{signal}`` could feed every signal of the
        site, but a meter behind it feeds power and energy only, and a gap must not blank the
        states a PLC delivers (issue 12)."""
        return self.named_signals() | self._stats.delivered

    def patterns_never_matched(self) -> list[str]:
        """The topic patterns no message has matched yet (a meter that never spoke, a typo)."""
        return [p.pattern for i, (p, _) in enumerate(self._patterns) if i not in self._matched]

    def delivered_signals(self) -> set[str]:
        """The signals a Sample was put on the queue for (``signals() - this``: never received)."""
        return set(self._stats.delivered)

    def named_signals(self) -> set[str]:
        """The signals of topic entries without placeholders (known ones)."""
        out: set[str] = set()
        for _, topic in self._patterns:
            if "{" not in topic.signal:
                out |= template_signals(topic.signal, self.site, self.known)
        return out

    def possible_signals(self) -> set[str]:
        """Every known signal its topic entries' templates can produce."""
        out: set[str] = set()
        for _, topic in self._patterns:
            out |= template_signals(topic.signal, self.site, self.known)
        return out

    def highest_seq(self) -> dict[str, int]:
        """topic -> the highest ``seq`` received on it, for topics whose publisher sends one."""
        return self._seq.highest()

    def stats(self) -> dict:
        d = self._stats.as_dict()
        d.update(self._stats_extra)
        d.update(self._seq.as_dict())
        d["unmapped_by_signal"] = dict(self._deadband.unmapped)  # values: a value map did not hold
        d["counter_wraps"] = dict(self._deadband.unwrap.wraps)  # rollover: seen per counter
        return d

    async def run(self, out: asyncio.Queue) -> None:
        client = self.client = self._make_client()
        io = self._io = PahoInLoop(client, out)
        cfg = self.config
        backoff = self._backoff = Backoff(cfg.reconnect_min_s, cfg.reconnect_max_s)
        client.connect_async(cfg.host, cfg.port, cfg.keepalive_s)
        try:
            while True:
                io.gone.clear()
                self._attempt_failed = False
                self._socket_error = None
                # paho's log only while connecting: it names the socket error of a connection the
                # broker drops before CONNACK (a TLS 1.3 client-certificate refusal comes that way)
                client.on_log = self._on_log_connecting
                try:
                    # connecting blocks (TCP, TLS handshake): in a worker thread, while the loop runs on
                    await asyncio.to_thread(client.reconnect)
                except OSError as exc:  # ssl.SSLError included: a refused handshake is retried too
                    self._connect_failed(f"cannot connect: {self._explain(exc)}")
                    await backoff.sleep()
                    continue
                await io.gone.wait()
                if self._fatal is not None:
                    raise self._fatal
                await backoff.sleep()  # reset in _on_connect: after a working connection, reconnect_min_s
        finally:
            self._stats_extra["unsent_at_stop"] += io.stop()
            if self._stats_extra["unsent_at_stop"]:
                log.warning("%s: %d samples not handed over at stop", self.name, self._stats_extra["unsent_at_stop"])
            self._stats.connected = False
            self.dead_letter.close()

    def _connect_failed(self, message: str) -> None:
        """Count and log a failed connection attempt (once per attempt); the source retries."""
        if self._attempt_failed:
            return
        self._attempt_failed = True
        self._stats_extra["connect_failures"] += 1
        self._stats_extra["last_error"] = message
        # the drop was the one WARNING line; attempts while the broker is away are counted, and
        # logged once per new reason only before the first connection
        quiet = self._ever_connected or message == self._last_logged
        self._last_logged = message
        log.log(logging.DEBUG if quiet else logging.WARNING, "%s: %s:%s: %s; retrying with backoff",
                self.name, self.config.host, self.config.port, message)

    def _on_log_connecting(self, client, userdata, level, buf) -> None:
        if level == paho.MQTT_LOG_ERR:
            self._socket_error = buf

    def _explain(self, exc: OSError) -> str:
        """The connect error, with what to check for a TLS refusal (the file of the CA in use)."""
        tls = self.config.tls
        if isinstance(exc, ssl.SSLCertVerificationError):
            ca = f"ca_file {tls.ca_file}" if tls and tls.ca_file else "the system's trusted CAs (no ca_file)"
            return (f"TLS: the broker's certificate was not accepted ({exc.verify_message or exc.reason}; "
                    f"certificate verify failed against {ca}); check tls.ca_file and that the "
                    f"certificate names {self.config.host}")
        if isinstance(exc, ssl.SSLError):
            mine = f", client certificate {tls.cert_file}" if tls and tls.cert_file else ", no client certificate"
            return f"TLS handshake failed ({exc.reason or exc}{mine})"
        return str(exc)

    # --- paho setup and callbacks (in the event loop, or the connecting thread) --------------------------------------------------

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
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        client.on_log = None  # the per-packet debug log costs time; only connecting needs it
        if reason_code.is_failure:
            self._attempt_failed = True
            self._stats_extra["connect_failures"] += 1
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
        self._stats_extra["last_error"] = self._last_logged = None
        self._backoff.reset()
        self._deadband.forget()
        away = f" after {time.time() - self._down_since:.1f} s" if self._down_since is not None else ""
        log.info("%s: connected to %s:%s%s (session present: %s)", self.name, self.config.host,
                 self.config.port, away, flags.session_present)
        client.subscribe([(f, self.config.qos) for f in self._filters])
        self._io.emit(connection_sample(self.name, True))

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self._stats.connected
        self._stats.connected = False
        if self._io is not None and self._io.stopping:
            log.info("%s: disconnected on stop", self.name)
        elif was:
            self._stats_extra["last_error"] = f"disconnected: {reason_code}"
            log.warning("%s: lost the connection to %s:%s (%s); reconnecting every %g s at most", self.name,
                        self.config.host, self.config.port, reason_code, self.config.reconnect_max_s)
            down = connection_sample(self.name, False)
            self._down_since = down.ts
            self._io.emit(down)
        elif not self._attempt_failed:  # dropped before CONNACK: say why, never retry silently
            why = self._socket_error or str(reason_code)
            hint = ""
            if self.config.uses_tls and "certificate" in why.lower():
                tls = self.config.tls
                hint = (f"; the broker refused our client certificate {tls.cert_file}" if tls and tls.cert_file
                        else "; the broker wants a client certificate: set tls.cert_file and tls.key_file")
            self._connect_failed(f"the broker closed the connection before accepting it: {why}{hint}")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        for topic_filter, rc in zip(self._filters, reason_codes):
            if rc.is_failure:
                self._stats_extra["subscribe_refused"] += 1
                log.error("%s: broker refused subscription %r: %s", self.name, topic_filter, rc)

    def _on_message(self, client, userdata, msg) -> None:
        self._io.messages += 1
        try:
            samples = self.to_samples(msg.topic, msg.payload, time.time(), msg.dup)
        except Exception as exc:  # a bug here must cost one message, counted, never the connection
            log.exception("%s: unexpected error on topic %r", self.name, msg.topic)
            self._stats.reject("internal_error", repr(exc)[:200], msg.topic, msg.payload)
            return
        for sample in samples:
            self._io.emit(sample)

    # --- message -> Sample ------------------------------------------------------------------------

    def _route(self, topic: str) -> tuple[_Route, ...]:
        """Every topic entry whose pattern matches ``topic``, resolved (empty: none matches); each
        one reads its own field of the payload, so one message can feed several signals."""
        routes = self._routes.get(topic)
        if routes is not None:
            return routes
        found = []
        for i, (pattern, cfg) in enumerate(self._patterns):
            values = pattern.match(topic)
            if values is not None:
                self._matched.add(i)
                signal = render(cfg.signal, values)
                reader = PayloadReader(cfg.field, cfg.ts_field, cfg.quality_field, cfg.seq_field, self._tz)
                found.append(_Route(signal, cfg.transform(self.config.defaults), reader,
                                    (cfg.field, cfg.ts_field, cfg.quality_field, cfg.seq_field)))
        if len(self._routes) >= self.MAX_ROUTES:
            self._routes.clear()
        routes = self._routes[topic] = tuple(found)
        return routes

    def to_samples(self, topic: str, payload: bytes, receive_ts: float, dup: bool = False) -> list[Sample]:
        """The Samples a message makes, one per topic entry that matches it, less those rejected
        (counted) or held back by a deadband or as a redelivered duplicate. A state value a value
        map does not hold is counted as rejected and still sends the station's UNKNOWN state."""
        st = self._stats
        st.received += 1
        if len(payload) > self.config.max_payload_bytes:
            st.reject("oversized", f"{len(payload)} bytes > max_payload_bytes {self.config.max_payload_bytes}", topic, payload)
            return []
        routes = self._route(topic)
        if not routes:
            st.reject("unknown_topic", "matches no topic pattern of the mapping", topic, payload)
            return []
        samples: list[Sample] = []
        seq_seen = False  # a message's seq is counted once, however many entries read it
        for route in routes:
            signal = route.signal
            if signal not in self.known:
                st.reject("unknown_signal", f"topic maps to {signal!r}, which the factory does not have", topic, payload)
                continue
            try:
                read = read_fast(route.fast, payload) if route.fast is not None else None
                raw, source_ts, quality, seq = read if read is not None else route.reader.read(payload)
            except BadValue as exc:
                seq = getattr(exc, "seq", None)
                if seq is not None and not seq_seen:
                    seq_seen = True
                    self._seq.see(topic, seq, None, dup)
                st.reject(exc.reason, str(exc), topic, payload)
                continue
            if seq is not None and not seq_seen:
                seq_seen = True
                self._seq.see(topic, seq, source_ts, dup)
            out = to_sample(route.rules, raw, quality, source_ts, None, receive_ts, self._deadband, self._seen, dup)
            if type(out) is Sample:
                st.samples += 1
                st.delivered.add(signal)
                samples.append(out)
            elif out is DEADBAND:
                st.suppressed += 1
            elif out is DUPLICATE:
                self._stats_extra["duplicates"] += 1  # QoS 1 is at-least-once: same message again
            else:
                st.reject(out.reason, out.detail, topic, payload)
                if out.sample is not None:  # unmapped_value: the station is UNKNOWN from now on
                    st.samples += 1
                    samples.append(out.sample)
        return samples

    def _fail(self, exc: BaseException) -> None:
        self._fatal = exc
        if self.client is not None:
            self.client.disconnect()
        if self._io is not None:
            self._io.gone.set()


def mqtt_sources(mapping, factory: Factory, dead_letter_dir: str | Path | None = None) -> list[MqttClient]:
    """One MqttClient per ``mqtt`` entry of ``mapping`` (a loaded Mapping); dead letters as
    ``source.dead_letter_path`` says (an entry's own ``dead_letter`` first)."""
    known = known_signals(factory)
    return [MqttClient(cfg, mapping.site, known, dead_letter_path(cfg, dead_letter_dir)) for cfg in mapping.mqtt]
