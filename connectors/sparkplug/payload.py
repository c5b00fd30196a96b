"""The Sparkplug B payload: its protobuf schema, built in code, and the values a metric carries.

The schema is the one of the Eclipse Sparkplug Specification 3.0.0, section 6.4 ("Payload"
message: timestamp 1, metrics 2, seq 3, uuid 4, body 5; "Metric" message: name 1, alias 2,
timestamp 3, datatype 4, is_historical 5, is_transient 6, is_null 7, metadata 8, properties 9,
then the ``value`` oneof: int_value 10, long_value 11, float_value 12, double_value 13,
boolean_value 14, string_value 15, bytes_value 16, dataset_value 17, template_value 18,
extension_value 19), written here as a ``FileDescriptorProto`` and turned into a message class by
the ``protobuf`` runtime. Building it in code needs no protoc at install time and no generated
``_pb2`` module tied to one protobuf release. The nested messages the twin never reads (metadata,
property sets, data sets, templates) are declared as ``bytes``: the same wire type
(length-delimited), kept opaque.
"""

from __future__ import annotations

import time
from typing import NamedTuple

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "org.eclipse.tahu.protobuf"

# Sparkplug 3.0.0, section 6.4.16 (DataType): the numbers a metric's ``datatype`` takes
INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64 = 1, 2, 3, 4, 5, 6, 7, 8
FLOAT, DOUBLE, BOOLEAN, STRING, DATETIME, TEXT, UUID = 9, 10, 11, 12, 13, 14, 15
DATATYPE_NAMES = {
    0: "Unknown", 1: "Int8", 2: "Int16", 3: "Int32", 4: "Int64", 5: "UInt8", 6: "UInt16", 7: "UInt32",
    8: "UInt64", 9: "Float", 10: "Double", 11: "Boolean", 12: "String", 13: "DateTime", 14: "Text",
    15: "UUID", 16: "DataSet", 17: "Bytes", 18: "File", 19: "Template", 20: "PropertySet",
    21: "PropertySetList",
}
#: datatype -> the oneof field that carries its value, for the scalar types the twin can use
VALUE_FIELD = {
    INT8: "int_value", INT16: "int_value", INT32: "int_value", UINT8: "int_value", UINT16: "int_value",
    UINT32: "int_value", INT64: "long_value", UINT64: "long_value", DATETIME: "long_value",
    FLOAT: "float_value", DOUBLE: "double_value", BOOLEAN: "boolean_value",
    STRING: "string_value", TEXT: "string_value", UUID: "string_value",
}
#: signed integer types: width in bits (carried as unsigned two's complement on the wire)
SIGNED_BITS = {INT8: 8, INT16: 16, INT32: 32, INT64: 64}

_F = descriptor_pb2.FieldDescriptorProto


def _field(msg, name: str, number: int, kind: int, *, repeated: bool = False, type_name: str | None = None,
           oneof: int | None = None) -> None:
    f = msg.field.add(name=name, number=number, type=kind,
                      label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if type_name:
        f.type_name = type_name
    if oneof is not None:
        f.oneof_index = oneof


def _file() -> descriptor_pb2.FileDescriptorProto:
    fd = descriptor_pb2.FileDescriptorProto(name="factory_twin_sparkplug_b.proto", package=PACKAGE, syntax="proto2")
    payload = fd.message_type.add(name="Payload")
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, kind in (
        ("name", 1, _F.TYPE_STRING), ("alias", 2, _F.TYPE_UINT64), ("timestamp", 3, _F.TYPE_UINT64),
        ("datatype", 4, _F.TYPE_UINT32), ("is_historical", 5, _F.TYPE_BOOL), ("is_transient", 6, _F.TYPE_BOOL),
        ("is_null", 7, _F.TYPE_BOOL), ("metadata", 8, _F.TYPE_BYTES), ("properties", 9, _F.TYPE_BYTES),
    ):
        _field(metric, name, number, kind)
    for name, number, kind in (
        ("int_value", 10, _F.TYPE_UINT32), ("long_value", 11, _F.TYPE_UINT64), ("float_value", 12, _F.TYPE_FLOAT),
        ("double_value", 13, _F.TYPE_DOUBLE), ("boolean_value", 14, _F.TYPE_BOOL),
        ("string_value", 15, _F.TYPE_STRING), ("bytes_value", 16, _F.TYPE_BYTES),
        ("dataset_value", 17, _F.TYPE_BYTES), ("template_value", 18, _F.TYPE_BYTES),
        ("extension_value", 19, _F.TYPE_BYTES),
    ):
        _field(metric, name, number, kind, oneof=0)
    _field(payload, "timestamp", 1, _F.TYPE_UINT64)
    _field(payload, "metrics", 2, _F.TYPE_MESSAGE, repeated=True, type_name=f".{PACKAGE}.Payload.Metric")
    _field(payload, "seq", 3, _F.TYPE_UINT64)
    _field(payload, "uuid", 4, _F.TYPE_STRING)
    _field(payload, "body", 5, _F.TYPE_BYTES)
    return fd


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file())
#: the Sparkplug B ``Payload`` message class
Payload = message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{PACKAGE}.Payload"))


class BadPayload(ValueError):
    """A payload or metric the twin cannot read; ``reason`` is the counted rejection reason."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


def decode(data: bytes):
    """The ``Payload`` message in ``data``; BadPayload(``bad_protobuf``) when it is not one."""
    msg = Payload()
    try:
        msg.ParseFromString(data)
    except Exception as exc:  # noqa: BLE001 - DecodeError, or whatever the C backend raises on junk: one reason
        raise BadPayload("bad_protobuf", f"not a Sparkplug B payload: {exc}"[:200]) from None
    return msg


class MetricValue(NamedTuple):
    """One metric's reading: ``raw`` is None for a null value (is_null); ``ts`` epoch seconds or None."""

    raw: object
    ts: float | None
    datatype: int


def metric_value(metric, datatype: int) -> MetricValue:
    """The value of ``metric`` read as ``datatype`` (the type its birth declared); BadPayload when
    the value is of another type (``wrong_datatype``), missing (``no_value``) or of a type the twin
    does not read (``unsupported_datatype``: data sets, templates, arrays, bytes)."""
    ts = metric.timestamp / 1000.0 if metric.HasField("timestamp") else None
    if metric.HasField("datatype") and metric.datatype != datatype:
        raise BadPayload("wrong_datatype", f"declared {_type(metric.datatype)} at birth as {_type(datatype)}")
    field = VALUE_FIELD.get(datatype)
    if field is None:
        raise BadPayload("unsupported_datatype", f"datatype {_type(datatype)} carries no single number or text")
    if metric.is_null:
        return MetricValue(None, ts, datatype)
    carried = metric.WhichOneof("value")
    if carried is None:
        raise BadPayload("no_value", "the metric carries no value and is not marked is_null")
    if carried != field:
        raise BadPayload("wrong_datatype", f"a {_type(datatype)} metric carries {carried}")
    raw = getattr(metric, field)
    bits = SIGNED_BITS.get(datatype)
    if bits is not None:  # two's complement in an unsigned field; masked first, as encoders differ in width
        raw &= (1 << bits) - 1
        if raw >= 1 << (bits - 1):
            raw -= 1 << bits
    return MetricValue(raw, ts, datatype)


def _type(datatype: int) -> str:
    return DATATYPE_NAMES.get(datatype, f"#{datatype}")


def rebirth_request(now: float | None = None) -> bytes:
    """An NCMD payload asking an Edge Node for a new birth: the Boolean metric 'Node Control/Rebirth'
    set to true (Sparkplug 3.0.0, section 5.x "Commands": a Rebirth Request), stamped now."""
    ms = int((time.time() if now is None else now) * 1000)
    msg = Payload(timestamp=ms)
    msg.metrics.add(name="Node Control/Rebirth", timestamp=ms, datatype=BOOLEAN, boolean_value=True)
    return msg.SerializeToString()
