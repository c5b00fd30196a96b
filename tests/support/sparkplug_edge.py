"""A Sparkplug B Edge Node for the tests, with a protobuf wire encoder of its own.

The payloads are written byte by byte from the field numbers of the Eclipse Sparkplug 3.0.0
schema (section 6.4: Payload timestamp 1, metrics 2, seq 3; Metric name 1, alias 2, timestamp 3,
datatype 4, is_null 7, int_value 10, long_value 11, float_value 12, double_value 13,
boolean_value 14, string_value 15), not with the twin's own schema (connectors/sparkplug/payload.py):
a wrong field number there would otherwise encode and decode consistently, and pass unnoticed.

``EdgeNode`` is a node with devices on a real broker: NBIRTH (seq 0, bdSeq, 'Node Control/Rebirth'
= false) and DBIRTHs with aliases, DDATA by alias, a skipped seq on demand, NDEATH as its will and
before a clean disconnect, an answer to the host's rebirth request (a new birth, same bdSeq), and a
new birth with the next bdSeq after its own reconnect.
"""

from __future__ import annotations

import struct
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

# datatypes (Sparkplug 3.0.0, 6.4.16) and the field their value goes in
INT32, INT64, UINT32, UINT64, FLOAT, DOUBLE, BOOLEAN, STRING = 3, 4, 7, 8, 9, 10, 11, 12
_FIELD = {INT32: (10, "varint32"), UINT32: (10, "varint"), INT64: (11, "varint64"), UINT64: (11, "varint"),
          FLOAT: (12, "float"), DOUBLE: (13, "double"), BOOLEAN: (14, "varint"), STRING: (15, "text")}


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def _bytes(number: int, data: bytes) -> bytes:
    return _key(number, 2) + varint(len(data)) + data


def _uint(number: int, n: int) -> bytes:
    return _key(number, 0) + varint(n)


def metric(name: str | None = None, value=None, datatype: int | None = None, *, alias: int | None = None,
           ts_ms: int | None = None, is_null: bool = False, value_datatype: int | None = None) -> bytes:
    """One encoded Metric. ``value_datatype`` puts the value in another type's field (bad input)."""
    out = b""
    if name is not None:
        out += _bytes(1, name.encode())
    if alias is not None:
        out += _uint(2, alias)
    if ts_ms is not None:
        out += _uint(3, ts_ms)
    if datatype is not None:
        out += _uint(4, datatype)
    if is_null:
        out += _uint(7, 1)
    elif value is not None:
        number, kind = _FIELD[value_datatype or datatype]
        if kind == "varint32":
            out += _uint(number, value & 0xFFFFFFFF)  # signed: two's complement in the uint32 field
        elif kind == "varint64":
            out += _uint(number, value & 0xFFFFFFFFFFFFFFFF)
        elif kind == "varint":
            out += _uint(number, int(value))
        elif kind == "float":
            out += _key(number, 5) + struct.pack("<f", value)
        elif kind == "double":
            out += _key(number, 1) + struct.pack("<d", value)
        else:
            out += _bytes(number, str(value).encode())
    return out


def payload(metrics: list[bytes], ts_ms: int | None = None, seq: int | None = None) -> bytes:
    out = b"" if ts_ms is None else _uint(1, ts_ms)
    out += b"".join(_bytes(2, m) for m in metrics)
    if seq is not None:
        out += _uint(3, seq)
    return out


def _fields(data: bytes) -> list[tuple[int, object]]:
    """(field number, value) of one message level: varints as ints, length-delimited as bytes."""
    out, i = [], 0
    while i < len(data):
        key, i = _read_varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _read_varint(data, i)
        elif wire == 2:
            size, i = _read_varint(data, i)
            value, i = data[i:i + size], i + size
        elif wire == 1:
            value, i = data[i:i + 8], i + 8
        elif wire == 5:
            value, i = data[i:i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, value))
    return out


def _read_varint(data: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        byte = data[i]
        i += 1
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return n, i


def is_rebirth_request(data: bytes) -> bool:
    """Whether an NCMD payload holds the Boolean metric 'Node Control/Rebirth' = true."""
    for number, value in _fields(data):
        if number == 2:
            m = dict(_fields(value))
            if m.get(1) == b"Node Control/Rebirth" and m.get(4) == BOOLEAN and m.get(14) == 1:
                return True
    return False


class EdgeNode:
    """An Edge Node ``group/node`` with ``devices``: {device: {metric name: (alias, datatype, value)}}.

    Aliases are unique across the node, as the specification asks. ``wait_host`` makes it wait for
    that host's STATE ``online: true`` before its births, as a node with a Primary Host does.
    """

    def __init__(self, host: str, port: int, group: str, node: str, devices: dict[str, dict[str, tuple]],
                 *, bd_seq: int = 0, wait_host: str | None = None):
        self.group, self.node, self.devices = group, node, devices
        self.bd_seq = bd_seq
        self.seq = 0
        self.wait_host = wait_host
        self.host_online = threading.Event()
        self.rebirth_requests = 0
        self.births = 0
        self.sent: list[tuple[str, int]] = []  # (topic, seq) of every message published
        self._lock = threading.Lock()
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                                  client_id=f"edge-{group}-{node}", clean_session=True)
        self.client.will_set(self.topic("NDEATH"), self.death_payload(), qos=1, retain=False)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.2, 1)
        self.reconnects = 0
        self._sessions = 0  # MQTT sessions begun (start() publishes the first birth itself)
        self._stopping = False
        self._host, self._port = host, port

    def topic(self, kind: str, device: str | None = None) -> str:
        return f"spBv1.0/{self.group}/{kind}/{self.node}" + (f"/{device}" if device else "")

    def death_payload(self) -> bytes:
        return payload([metric("bdSeq", self.bd_seq, UINT64)], ts_ms=_now_ms())

    def start(self, timeout_s: float = 20.0) -> None:
        """Connect; publish the births (after the host is online, with ``wait_host``)."""
        self.client.connect(self._host, self._port, keepalive=30)
        self.client.loop_start()
        if self.wait_host:
            assert self.host_online.wait(timeout_s), f"host {self.wait_host} never online"
        self.birth()

    def _on_connect(self, client, userdata, flags, rc, props) -> None:
        subs = [(self.topic("NCMD"), 0)]
        if self.wait_host:
            subs.append((f"spBv1.0/STATE/{self.wait_host}", 1))
        client.subscribe(subs)
        if self._sessions:  # a new MQTT session after a loss: a new birth, as every Edge Node publishes
            self.reconnects += 1
            threading.Thread(target=self.birth, daemon=True).start()
        self._sessions += 1

    def _on_disconnect(self, client, userdata, flags, rc, props) -> None:
        if not self._stopping:  # paho reconnects by itself: the next CONNECT's will has the next bdSeq
            self.bd_seq = (self.bd_seq + 1) % 256
            client.will_set(self.topic("NDEATH"), self.death_payload(), qos=1, retain=False)

    def _on_message(self, client, userdata, msg) -> None:
        if msg.topic.startswith("spBv1.0/STATE/"):
            import json

            if json.loads(msg.payload).get("online") is True:
                self.host_online.set()
        elif msg.topic == self.topic("NCMD") and is_rebirth_request(msg.payload):
            self.rebirth_requests += 1
            # not on paho's own thread: birth() waits for its messages to be sent, which that thread does
            threading.Thread(target=self.birth, daemon=True).start()

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq = (self.seq + 1) % 256
        return seq

    def _publish(self, topic: str, data: bytes, seq: int | None) -> None:
        self.client.publish(topic, data, qos=0).wait_for_publish(10)
        self.sent.append((topic, seq))

    def birth(self) -> None:
        """NBIRTH (seq 0, the same bdSeq) and every DBIRTH, with current values."""
        with self._lock:
            self.births += 1  # counted first: a host may act on the birth before this thread returns
            now = _now_ms()
            self.seq = 0
            node_metrics = [metric("bdSeq", self.bd_seq, UINT64, ts_ms=now),
                            metric("Node Control/Rebirth", False, BOOLEAN, ts_ms=now)]
            self._publish(self.topic("NBIRTH"), payload(node_metrics, now, self._next_seq()), 0)
            for device, metrics in self.devices.items():
                body = [metric(name, value, dt, alias=alias, ts_ms=now) for name, (alias, dt, value) in metrics.items()]
                seq = self._next_seq()
                self._publish(self.topic("DBIRTH", device), payload(body, now, seq), seq)

    def ddata(self, device: str, values: dict[str, object], ts: float | None = None, *, send: bool = True) -> int:
        """DDATA by alias with ``values``; ``send=False`` spends the seq without publishing (a lost message)."""
        with self._lock:
            ms = int((time.time() if ts is None else ts) * 1000)
            body = []
            for name, value in values.items():
                alias, dt, _ = self.devices[device][name]
                self.devices[device][name] = (alias, dt, value)
                body.append(metric(None, value, None, alias=alias, ts_ms=ms, value_datatype=dt))
            seq = self._next_seq()
            if send:
                self._publish(self.topic("DDATA", device), payload(body, ms, seq), seq)
            return seq

    def death(self) -> None:
        """An intentional disconnect: NDEATH (its bdSeq), then DISCONNECT, as the specification asks."""
        self._stopping = True
        self.client.publish(self.topic("NDEATH"), self.death_payload(), qos=1).wait_for_publish(10)
        self.client.disconnect()
        self.client.loop_stop()

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()


def _now_ms() -> int:
    return int(time.time() * 1000)
