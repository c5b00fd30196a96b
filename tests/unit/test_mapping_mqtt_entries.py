"""One MQTT payload, many signals: every topic entry that matches applies, with its own field,
unit, value map and the source's time zone (MqttClient.to_samples, no broker needed)."""

from __future__ import annotations

import json
import textwrap

import pytest

from connectors.mapping import load_mapping
from connectors.mqtt.client import MqttClient
from factory_models import Sample
from factory_models.signals import known_signals

from support.factories import small_factory

MAPPING = """\
site: suzhou-smt
mqtt:
  - name: meters
    timezone: Asia/Shanghai
    topics:
      - {pattern: "plant/{station}/reading", signal: "line1/{station}/power_kw", field: data.w, ts_field: time, unit: W}
      - {pattern: "plant/{station}/reading", signal: "line1/{station}/energy_kwh", field: wh, ts_field: time, unit: Wh,
         rollover: 65535}
      - {pattern: "plant/{station}/status", signal: "line1/{station}/state", values: packml}
"""


@pytest.fixture
def client(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(MAPPING), encoding="utf-8")
    mapping = load_mapping(path, small_factory())
    return MqttClient(mapping.mqtt[0], "suzhou-smt", known_signals(small_factory()), tmp_path / "dead.jsonl")


def payload(**doc) -> bytes:
    return json.dumps(doc).encode()


def test_one_json_feeds_power_and_energy_in_their_units_at_the_local_time(client):
    # 08:00 in Shanghai (UTC+8) on 2026-01-05 is 1767571200 s after the epoch
    out = client.to_samples("plant/cnc-1/reading", payload(data={"w": 5200}, wh=812, time="2026-01-05T08:00:00", seq=7),
                            receive_ts=1767571201.0)
    assert out == [Sample("line1/cnc-1/power_kw", 5.2, 1767571200.0), Sample("line1/cnc-1/energy_kwh", 0.812, 1767571200.0)]
    st = client.stats()
    assert (st["received"], st["samples"], st["rejected"]) == (1, 2, 0)
    assert client.highest_seq() == {"plant/cnc-1/reading": 7}  # the message's seq counted once


def test_a_missing_field_rejects_that_entry_only(client):
    out = client.to_samples("plant/cnc-1/reading", payload(data={"w": 1000}, time="2026-01-05T08:00:00"), 1.0)
    assert [s.signal for s in out] == ["line1/cnc-1/power_kw"]
    assert client.stats()["rejected_by_reason"] == {"missing_field": 1}


def test_a_wrong_type_is_rejected_by_name(client):
    out = client.to_samples("plant/cnc-1/reading", payload(data={"w": "lots"}, wh=True, time="2026-01-05T08:00:00"), 1.0)
    assert out == [] and client.stats()["rejected_by_reason"] == {"wrong_type": 2}


def test_a_pattern_match_with_an_unmapped_state_sends_unknown_and_counts_it_per_signal(client):
    first = client.to_samples("plant/printer/status", payload(value=6, ts=1767571200000), 1.0)
    assert [s.value for s in first] == ["PRODUCING"]
    second = client.to_samples("plant/printer/status", payload(value=99, ts=1767571260000), 1.0)
    assert second == [Sample("line1/printer/state", "UNKNOWN", 1767571260.0)]
    st = client.stats()
    assert st["rejected_by_reason"] == {"unmapped_value": 1}
    assert st["unmapped_by_signal"] == {"line1/printer/state": 1}


def test_without_a_timezone_a_local_time_is_rejected_not_guessed(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(MAPPING).replace("    timezone: Asia/Shanghai\n", ""), encoding="utf-8")
    cfg = load_mapping(path, small_factory()).mqtt[0]
    client = MqttClient(cfg, "suzhou-smt", known_signals(small_factory()), tmp_path / "dead.jsonl")
    out = client.to_samples("plant/cnc-1/reading", payload(data={"w": 1}, wh=1, time="2026-01-05T08:00:00"), 1.0)
    assert out == [] and client.stats()["rejected_by_reason"] == {"naive_timestamp": 2}


def test_an_unknown_timezone_is_a_config_error(tmp_path):
    from factory_models import ConfigError

    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(MAPPING).replace("Asia/Shanghai", "Asia/Shangai"), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"line 4: mqtt\[0\]\.timezone: .*unknown time zone 'Asia/Shangai'"):
        load_mapping(path, small_factory())
