"""The host side of Sparkplug B sessions: what each Edge Node and Device declared at birth, whether
its messages arrive in order, and when to ask it for a new birth. No MQTT here: ``Sessions.handle``
takes a topic and a payload and says what they mean; the client (client.py) routes the readings to
signals, sends the rebirth requests and marks what a death leaves unknown.

Rules, from the Eclipse Sparkplug Specification 3.0.0:
- Topics are ``spBv1.0/<group_id>/<message_type>/<edge_node_id>[/<device_id>]`` (section 4.1).
- An NBIRTH opens an Edge Node's session: it declares every metric the node will report (name,
  datatype, optional alias), carries seq 0 and the ``bdSeq`` metric; DBIRTHs declare the devices'
  metrics. Aliases are unique across the Edge Node's whole metric set, devices included, and data
  messages may name a metric by alias alone (section 6.4.6, Metric).
- NBIRTH, DBIRTH, NDATA, DDATA and DDEATH carry ``seq``, one more than the node's previous message,
  255 followed by 0 (section 6.4.1, Payload). A message out of order starts the Reorder Timeout;
  if the missing messages have not arrived when it elapses, the host sends an NCMD
  'Node Control/Rebirth' = true (section 5, Host Application Message Ordering). Data from a node or
  device with no birth in this session is unreadable: rejected, and a rebirth asked for.
- An NDEATH (the node's MQTT will, or sent before a clean disconnect) carries only ``bdSeq``; it
  ends the session only when that matches the bdSeq of the NBIRTH in force, since a will from an
  earlier connection can arrive after the next NBIRTH (section 5, Edge Node Session Establishment).
  A DDEATH ends one device's session.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from .payload import BadPayload, MetricValue, decode, metric_value

NAMESPACE = "spBv1.0"
NODE_MESSAGES = frozenset({"NBIRTH", "NDEATH", "NDATA", "NCMD"})
DEVICE_MESSAGES = frozenset({"DBIRTH", "DDEATH", "DDATA", "DCMD"})
BD_SEQ = "bdSeq"


class Topic(NamedTuple):
    group: str
    kind: str  # NBIRTH | NDEATH | NDATA | NCMD | DBIRTH | DDEATH | DDATA | DCMD
    node: str
    device: str | None


def parse_topic(topic: str) -> Topic | None:
    """The parts of a Sparkplug B topic of an Edge Node or Device, or None when it is not one."""
    parts = topic.split("/")
    if len(parts) not in (4, 5) or parts[0] != NAMESPACE or not all(parts):
        return None
    kind = parts[2]
    if (kind in NODE_MESSAGES and len(parts) == 4) or (kind in DEVICE_MESSAGES and len(parts) == 5):
        return Topic(parts[1], kind, parts[3], parts[4] if len(parts) == 5 else None)
    return None


class MetricDef(NamedTuple):
    device: str | None  # None: the Edge Node's own metric
    name: str
    datatype: int


class Reading(NamedTuple):
    device: str | None
    name: str
    value: MetricValue


@dataclass
class EdgeNode:
    """What the host knows of one Edge Node (group, node) in its current session."""

    born: bool = False
    bd_seq: int | None = None
    next_seq: int | None = None
    missing: set[int] = field(default_factory=set)  # seq numbers skipped and not arrived yet
    gap_since: float | None = None  # when the oldest unresolved gap was seen
    defs: dict[tuple[str | None, str], MetricDef] = field(default_factory=dict)
    aliases: dict[int, MetricDef] = field(default_factory=dict)
    devices: set[str] = field(default_factory=set)  # devices with a birth in this session
    rebirth_at: float | None = None  # when a rebirth was last asked for, until the next NBIRTH

    def end(self) -> None:
        self.born = False
        self.next_seq = None
        self.missing.clear()
        self.gap_since = None
        self.defs.clear()
        self.aliases.clear()
        self.devices.clear()

    def drop_device(self, device: str) -> None:
        self.devices.discard(device)
        self.defs = {k: d for k, d in self.defs.items() if d.device != device}
        self.aliases = {a: d for a, d in self.aliases.items() if d.device != device}


@dataclass
class Outcome:
    """What one message means: readings to route, rejections to count, a rebirth to ask for, deaths."""

    topic: Topic
    payload_ts: float | None = None
    readings: list[Reading] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (reason, detail)
    rebirth: bool = False  # send 'Node Control/Rebirth' to this node now
    died: bool = False  # the node's session (device None) or the device's session ended

    @property
    def birth(self) -> bool:
        return self.topic.kind in ("NBIRTH", "DBIRTH")


class Sessions:
    """Every Edge Node's session, as seen by one host. ``reorder_timeout_s`` is how long missing
    messages may take to arrive before a rebirth is asked for (0: at once); ``rebirth_interval_s``
    the least time between two requests to one node while it has not been reborn."""

    def __init__(self, reorder_timeout_s: float = 0.0, rebirth_interval_s: float = 5.0):
        self.reorder_timeout_s = reorder_timeout_s
        self.rebirth_interval_s = rebirth_interval_s
        self.nodes: dict[tuple[str, str], EdgeNode] = {}
        self.counts = {"births": 0, "device_births": 0, "deaths": 0, "device_deaths": 0, "stale_deaths": 0,
                       "seq_gaps": 0, "seq_missed": 0, "late_messages": 0, "rebirth_requests": 0,
                       "rebirths_held": 0, "commands_ignored": 0}

    def node(self, group: str, node: str) -> EdgeNode:
        return self.nodes.setdefault((group, node), EdgeNode())

    def forget_all(self) -> None:
        """The host lost the broker: every session it knew may have ended meanwhile."""
        for node in self.nodes.values():
            node.end()
            node.rebirth_at = None

    def online(self) -> dict[str, int]:
        born = [n for n in self.nodes.values() if n.born]
        return {"nodes_online": len(born), "devices_online": sum(len(n.devices) for n in born)}

    def handle(self, topic: Topic, data: bytes, now: float) -> Outcome:
        out = Outcome(topic)
        if topic.kind in ("NCMD", "DCMD"):  # commands to the edge (another host's, or ours echoed)
            self.counts["commands_ignored"] += 1
            return out
        try:
            payload = decode(data)
        except BadPayload as exc:
            out.rejected.append((exc.reason, str(exc)))
            return out
        out.payload_ts = payload.timestamp / 1000.0 if payload.HasField("timestamp") else None
        node = self.node(topic.group, topic.node)
        if topic.kind == "NDEATH":
            self._node_death(node, payload, out)
            return out
        if topic.kind == "NBIRTH":
            self._node_birth(node, payload, out)
        elif not node.born:
            self._before_birth(node, out, now, "no NBIRTH from this Edge Node in this session")
            return out
        elif topic.kind != "DBIRTH" and topic.device is not None and topic.device not in node.devices:
            self._before_birth(node, out, now, f"no DBIRTH from device {topic.device!r} in this session")
            return out
        elif not self._in_order(node, payload, out, now):
            return out
        if topic.kind == "DBIRTH":
            self._device_birth(node, topic.device, payload, out)
        elif topic.kind == "DDEATH":
            if topic.device in node.devices:
                node.drop_device(topic.device)
                self.counts["device_deaths"] += 1
                out.died = True
        elif topic.kind in ("NDATA", "DDATA"):
            self._data(node, topic.device, payload, out)
        if any(reason in ("unknown_alias", "unknown_metric") for reason, _ in out.rejected):
            out.rebirth = out.rebirth or self.ask(node, now)  # our picture of the node is out of date
        return out

    def due(self, now: float) -> list[tuple[str, str]]:
        """Nodes whose Reorder Timeout has elapsed with messages still missing: ask them for a rebirth."""
        out = []
        for key, node in self.nodes.items():
            if node.born and node.missing and now - node.gap_since >= self.reorder_timeout_s and self.ask(node, now):
                out.append(key)
        return out

    # --- message kinds ----------------------------------------------------------------------------

    def _node_birth(self, node: EdgeNode, payload, out: Outcome) -> None:
        node.end()
        node.born = True
        node.rebirth_at = None
        node.bd_seq = None
        node.next_seq = (payload.seq + 1) % 256 if payload.HasField("seq") else None
        self.counts["births"] += 1
        for metric in payload.metrics:
            if metric.name == BD_SEQ:
                node.bd_seq = _bd_seq(metric)
        self._declare(node, None, payload, out)

    def _device_birth(self, node: EdgeNode, device: str, payload, out: Outcome) -> None:
        node.drop_device(device)
        node.devices.add(device)
        self.counts["device_births"] += 1
        self._declare(node, device, payload, out)

    def _declare(self, node: EdgeNode, device: str | None, payload, out: Outcome) -> None:
        """A birth's metric definitions, and their current values as readings."""
        for metric in payload.metrics:
            if not metric.name:
                out.rejected.append(("no_name", "a birth metric without a name"))
                continue
            if not metric.HasField("datatype"):
                out.rejected.append(("no_datatype", f"birth metric {metric.name!r} without a datatype"))
                continue
            d = MetricDef(device, metric.name, metric.datatype)
            if metric.HasField("alias"):
                taken = node.aliases.get(metric.alias)
                if taken is not None and (taken.device, taken.name) != (device, metric.name):
                    why = f"alias {metric.alias} of {metric.name!r} is already {taken.name!r}{_of(taken.device)}"
                    out.rejected.append(("alias_conflict", why))
                    continue
                node.aliases[metric.alias] = d
            node.defs[(device, metric.name)] = d
            self._read(d, metric, out)

    def _data(self, node: EdgeNode, device: str | None, payload, out: Outcome) -> None:
        for metric in payload.metrics:
            if metric.HasField("alias"):
                d = node.aliases.get(metric.alias)
                if d is None or d.device != device:
                    out.rejected.append(("unknown_alias", f"alias {metric.alias} was not declared at birth{_of(device)}"))
                    continue
            else:
                d = node.defs.get((device, metric.name))
                if d is None:
                    out.rejected.append(("unknown_metric", f"metric {metric.name!r} was not declared at birth{_of(device)}"))
                    continue
            self._read(d, metric, out)

    @staticmethod
    def _read(d: MetricDef, metric, out: Outcome) -> None:
        try:
            out.readings.append(Reading(d.device, d.name, metric_value(metric, d.datatype)))
        except BadPayload as exc:
            out.rejected.append((exc.reason, f"{d.name}{_of(d.device)}: {exc}"))

    def _node_death(self, node: EdgeNode, payload, out: Outcome) -> None:
        bd_seq = next((_bd_seq(m) for m in payload.metrics if m.name == BD_SEQ), None)
        if not node.born or (bd_seq is not None and node.bd_seq is not None and bd_seq != node.bd_seq):
            # the will of an earlier connection, delivered after the next NBIRTH: that session is over already
            self.counts["stale_deaths"] += 1
            return
        node.end()
        self.counts["deaths"] += 1
        out.died = True

    # --- order --------------------------------------------------------------------------------------

    def _in_order(self, node: EdgeNode, payload, out: Outcome, now: float) -> bool:
        """Check ``seq``; False (rejected) when the message has none. A gap or a message out of
        order is read all the same (its values are real) and starts the Reorder Timeout."""
        if not payload.HasField("seq") or payload.seq > 255:
            out.rejected.append(("bad_seq", "no seq in 0..255" if not payload.HasField("seq") else f"seq {payload.seq} > 255"))
            out.rebirth = self.ask(node, now)
            return False
        seq = payload.seq
        expected = node.next_seq
        if expected is None or seq == expected:
            node.next_seq = (seq + 1) % 256
        elif seq in node.missing:  # late, but within the window: the gap closes
            node.missing.discard(seq)
            self.counts["late_messages"] += 1
        else:
            skipped = (seq - expected) % 256
            node.missing.update((expected + i) % 256 for i in range(skipped))
            node.next_seq = (seq + 1) % 256
            self.counts["seq_gaps"] += 1
            self.counts["seq_missed"] += skipped
            if node.gap_since is None:
                node.gap_since = now
        if not node.missing:
            node.gap_since = None
        elif now - node.gap_since >= self.reorder_timeout_s:
            out.rebirth = self.ask(node, now)
        return True

    def _before_birth(self, node: EdgeNode, out: Outcome, now: float, why: str) -> None:
        out.rejected.append(("before_birth", why))
        out.rebirth = self.ask(node, now)

    def ask(self, node: EdgeNode, now: float) -> bool:
        """Whether to send a rebirth request now: one per ``rebirth_interval_s`` until the node is reborn."""
        if node.rebirth_at is not None and now - node.rebirth_at < self.rebirth_interval_s:
            self.counts["rebirths_held"] += 1
            return False
        node.rebirth_at = now
        self.counts["rebirth_requests"] += 1
        return True


def _bd_seq(metric) -> int | None:
    kind = metric.WhichOneof("value")
    return int(getattr(metric, kind)) if kind in ("long_value", "int_value") else None


def _of(device: str | None) -> str:
    return f" of device {device!r}" if device else " of the Edge Node"
