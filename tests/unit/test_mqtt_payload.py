"""Payload reading per the default convention: bare values, JSON fields, timestamps, quality."""

import pytest

from connectors.mqtt.payload import parse_payload, parse_ts
from factory_models.signals import BadValue
from factory_models import Quality


def test_bare_values_stay_text_for_coerce():
    assert parse_payload(b" 12.5\n").value == "12.5"
    assert parse_payload(b"DOWN").value == "DOWN"
    assert parse_payload(b'"pcb-a"').value == "pcb-a"


def test_json_fields_ts_and_quality():
    r = parse_payload(b'{"value": 3.25, "ts": 1767571200125, "quality": "uncertain"}')
    assert (r.value, r.ts, r.quality) == (3.25, 1767571200.125, Quality.UNCERTAIN)
    r = parse_payload(b'{"data": {"power": {"kw": 7}}, "meta": {"t": "2026-01-05T08:00:00+08:00"}}',
                      field="data.power.kw", ts_field="meta.t")
    assert (r.value, r.ts, r.quality) == (7, 1767571200.0, Quality.GOOD)


def test_bad_reading_with_null_value_is_a_bad_sample_not_malformed():
    r = parse_payload(b'{"value": null, "quality": "bad"}')
    assert r.value is None and r.quality == Quality.BAD


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"\xff\xfe\x00", "not_utf8"),
        (b'{"value": 1,', "bad_json"),
        (b"", "missing_field"),
        (b'{"val": 1}', "missing_field"),
        (b"[1, 2]", "wrong_type"),
        (b'{"value": {"a": 1}}', "wrong_type"),
        (b'{"value": null}', "wrong_type"),
        (b'{"value": 1, "ts": 1767571200}', "bad_ts"),
        (b'{"value": 1, "ts": "yesterday"}', "bad_ts"),
        (b'{"value": 1, "ts": "2026-01-05T08:00:00"}', "naive_timestamp"),  # no offset, no timezone: not guessed
        (b'{"value": 1, "ts": true}', "bad_ts"),
        (b'{"value": 1, "quality": "meh"}', "bad_quality"),
        (b'{"value": 1, "seq": -1}', "bad_seq"),
        (b'{"value": 1, "seq": 2.5}', "bad_seq"),
        (b'{"value": 1, "seq": "7"}', "bad_seq"),
    ],
)
def test_malformed_payloads_name_their_reason(payload, reason):
    with pytest.raises(BadValue) as err:
        parse_payload(payload)
    assert err.value.reason == reason


def test_seconds_sent_as_milliseconds_get_a_hint():
    with pytest.raises(BadValue, match="looks like epoch seconds"):
        parse_ts(1767571200)
    assert parse_ts("2026-01-05T00:00:00Z") == 1767571200.0


def test_seq_is_read_by_the_full_and_the_fast_reader_alike():
    from connectors.mqtt.payload import PayloadReader, read_fast

    fields = ("value", "ts", "quality", "seq")
    for payload, seq in [(b'{"value":1.5,"ts":1767571200000,"quality":"good","seq":41}', 41),
                         (b'{"value":1.5,"ts":1767571200000}', None), (b'{"value":1.5,"seq":null}', None)]:
        assert parse_payload(payload).seq == seq
        assert read_fast(fields, payload) == PayloadReader().read(payload)
    assert read_fast(fields, b'{"value":1.5,"seq":-3}') is None  # the full reader names the reason
    assert parse_payload(b"12.5").seq is None


def test_a_rejected_message_still_tells_its_seq():
    with pytest.raises(BadValue) as err:
        parse_payload(b'{"value": 1, "ts": "yesterday", "seq": 9}')
    assert err.value.reason == "bad_ts" and err.value.seq == 9


def test_a_local_device_time_is_read_in_the_sources_timezone():
    from zoneinfo import ZoneInfo

    shanghai = ZoneInfo("Asia/Shanghai")  # UTC+8, no daylight saving
    # 2026-01-05 08:00 in Shanghai is 00:00 UTC: 1767571200 s after the epoch
    r = parse_payload(b'{"value": 1, "ts": "2026-01-05T08:00:00"}', tz=shanghai)
    assert r.ts == 1767571200.0
    # an explicit offset wins over the source's zone
    assert parse_payload(b'{"value": 1, "ts": "2026-01-05T08:00:00+00:00"}', tz=shanghai).ts == 1767571200.0 + 8 * 3600
    with pytest.raises(BadValue) as err:
        parse_ts("2026-01-05T08:00:00")
    assert err.value.reason == "naive_timestamp" and "timezone" in str(err.value)


def test_a_local_time_a_clock_change_repeats_or_skips_is_rejected_not_guessed():
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    # 2026-10-25: clocks go back from 03:00 CEST to 02:00 CET, so 02:30 happens twice
    with pytest.raises(BadValue) as err:
        parse_ts("2026-10-25T02:30:00", berlin)
    assert err.value.reason == "ambiguous_timestamp"
    # 2026-03-29: clocks jump from 02:00 to 03:00, so 02:30 never happens
    with pytest.raises(BadValue) as err:
        parse_ts("2026-03-29T02:30:00", berlin)
    assert err.value.reason == "ambiguous_timestamp"
    # 01:30 on the day clocks go back is still CEST (UTC+2): 2026-10-24T23:30Z
    assert parse_ts("2026-10-25T01:30:00", berlin) == parse_ts("2026-10-24T23:30:00Z")
