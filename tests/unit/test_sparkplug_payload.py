"""Sparkplug B payloads: the schema built in code reads what an independent encoder wrote from the
specification's field numbers; a metric's value is read as the datatype its birth declared."""

from __future__ import annotations

import pytest
from support.sparkplug_edge import (
    BOOLEAN,
    DOUBLE,
    FLOAT,
    INT32,
    INT64,
    STRING,
    UINT32,
    UINT64,
    is_rebirth_request,
    metric,
    payload,
)

from connectors.sparkplug import payload as spb
from connectors.sparkplug.payload import (
    BadPayload,
    decode,
    metric_value,
    rebirth_request,
)


def test_a_hand_encoded_payload_decodes_field_by_field():
    data = payload([metric("Counters/good", 42, UINT32, alias=7, ts_ms=1767571200123)], ts_ms=1767571200456, seq=9)
    msg = decode(data)
    assert (msg.timestamp, msg.seq, len(msg.metrics)) == (1767571200456, 9, 1)
    m = msg.metrics[0]
    assert (m.name, m.alias, m.timestamp, m.datatype) == ("Counters/good", 7, 1767571200123, UINT32)
    assert metric_value(m, UINT32) == (42, 1767571200.123, UINT32)


@pytest.mark.parametrize(("datatype", "value", "expected"), [
    (INT32, -5, -5),                    # 0xFFFFFFFB in the uint32 field, read back signed
    (INT32, 2_000_000_000, 2_000_000_000),
    (INT64, -7, -7),                    # 2^64 - 7 in the uint64 field
    (UINT64, 2**63 + 1, 2**63 + 1),     # above the signed range: stays unsigned
    (FLOAT, 1.5, 1.5),                  # exact in binary32
    (DOUBLE, 1234.5678, 1234.5678),
    (BOOLEAN, True, True),
    (STRING, "PRODUCING", "PRODUCING"),
])
def test_each_scalar_datatype_reads_back(datatype, value, expected):
    m = decode(payload([metric("m", value, datatype)])).metrics[0]
    got = metric_value(m, datatype)
    assert got.raw == expected and type(got.raw) is type(expected) and got.ts is None


def test_an_int8_sent_as_a_full_32_bit_twos_complement_or_as_one_byte_reads_minus_one():
    for wire in (0xFFFFFFFF, 0xFF):
        # a data message's metric: no datatype of its own, the birth's (Int8) applies
        m = decode(payload([metric(None, wire, None, alias=3, value_datatype=UINT32)])).metrics[0]
        assert m.int_value == wire
        assert metric_value(m, spb.INT8).raw == -1
    m = decode(payload([metric(None, 0x7F, None, alias=3, value_datatype=UINT32)])).metrics[0]
    assert metric_value(m, spb.INT8).raw == 127


def test_a_value_in_another_types_field_or_a_changed_datatype_is_wrong_datatype():
    in_double = decode(payload([metric(None, 2.0, None, alias=1, value_datatype=DOUBLE)])).metrics[0]
    with pytest.raises(BadPayload) as exc:
        metric_value(in_double, INT64)
    assert exc.value.reason == "wrong_datatype" and "double_value" in str(exc.value)
    restated = decode(payload([metric("m", 2.0, DOUBLE)])).metrics[0]
    with pytest.raises(BadPayload, match="declared Double at birth as Int64") as exc:
        metric_value(restated, INT64)
    assert exc.value.reason == "wrong_datatype"


def test_no_value_null_and_unsupported_types():
    empty = decode(payload([metric("m", None, INT64)])).metrics[0]
    with pytest.raises(BadPayload) as exc:
        metric_value(empty, INT64)
    assert exc.value.reason == "no_value"
    null = decode(payload([metric("m", None, INT64, is_null=True, ts_ms=5000)])).metrics[0]
    assert metric_value(null, INT64) == (None, 5.0, INT64)
    with pytest.raises(BadPayload) as exc:
        metric_value(decode(payload([metric("m", None, 16)])).metrics[0], 16)  # DataSet
    assert exc.value.reason == "unsupported_datatype" and "DataSet" in str(exc.value)


def test_junk_is_bad_protobuf_not_a_traceback():
    for junk in (b"\xff\xff\xff", b"\x0a\xff\x01", b"{\"value\": 1}"):
        with pytest.raises(BadPayload) as exc:
            decode(junk)
        assert exc.value.reason == "bad_protobuf"


def test_the_rebirth_request_is_what_the_specification_names():
    data = rebirth_request(now=1767571200.5)
    assert is_rebirth_request(data)  # read by the test's own wire reader
    msg = decode(data)
    assert msg.timestamp == 1767571200500 and not msg.HasField("seq")  # an NCMD carries no seq
    assert [(m.name, m.datatype, m.boolean_value) for m in msg.metrics] == [("Node Control/Rebirth", BOOLEAN, True)]
