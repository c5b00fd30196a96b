"""The mapping file format: loading, errors that name file, field and line, patterns, transforms."""

from __future__ import annotations

import textwrap

import pytest

from connectors.mapping import load_mapping
from connectors.transform import Deadband, PathPattern, Transform, pick_timestamp, render
from factory_models.signals import BadValue, coerce, known_signals
from factory_models import ConfigError, TsKind

from support.factories import POWER, small_factory  # noqa: F401


def write(tmp_path, text: str):
    p = tmp_path / "mapping.yaml"
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


GOOD = """\
site: suzhou-smt
opcua:
  - name: plc-line1
    endpoint: opc.tcp://127.0.0.1:4840
    security: {policy: Basic256Sha256, mode: SignAndEncrypt, client_cert: c.der, client_key: k.pem, server_cert: s.der}
    username_env: OPCUA_USER
    password_env: OPCUA_PASSWORD
    subscription: {publishing_interval_ms: 500, sampling_interval_ms: 250, queue_size: 10, batch_size: 50}
    defaults: {timestamp: server}
    nodes:
      - node: "nsu=urn:factory-twin:simulated-plc;s=line1/printer/state"
        signal: line1/printer/state
      - node: "nsu=urn:factory-twin:simulated-plc;s=line1/printer/power"
        signal: line1/printer/power_kw
        scale: 0.001
        unit: kW
      - browse: "Objects/{site}/{line}/{station}/{signal}"
mqtt:
  - name: meters
    url: mqtt://127.0.0.1:1883
    client_id: factory-twin-meters
    topics:
      - pattern: "factory/{site}/{line}/{station}/{signal}"
        signal: "{line}/{station}/{signal}"
        field: value
      - pattern: "legacy/{station}/watts"
        signal: "line1/{station}/power_kw"
        field: data.power.w
        scale: 0.001
        deadband: 0.05
"""


def test_good_mapping_loads_with_inherited_defaults(tmp_path):
    m = load_mapping(write(tmp_path, GOOD), small_factory())
    src = m.opcua[0]
    assert src.subscription.batch_size == 50
    assert src.security.mode == "SignAndEncrypt"
    power = src.nodes[1].transform(src.defaults)
    assert (power.scale, power.unit, power.timestamp) == (0.001, "kW", "server")
    assert src.nodes[2].signal_template == "{line}/{station}/{signal}"
    topic = m.mqtt[0].topics[1]
    t = topic.transform(m.mqtt[0].defaults)
    assert (t.scale, t.deadband, t.timestamp) == (0.001, 0.05, "source")
    assert m.mqtt[0].session_id == "factory-twin-meters"
    assert (m.mqtt[0].host, m.mqtt[0].port, m.mqtt[0].uses_tls) == ("127.0.0.1", 1883, False)


def test_unknown_station_names_file_field_line_and_choices(tmp_path):
    text = GOOD.replace("signal: line1/printer/power_kw", "signal: line1/printr/power_kw")
    with pytest.raises(ConfigError) as err:
        load_mapping(write(tmp_path, text), small_factory())
    msg = str(err.value)
    assert str(tmp_path / "mapping.yaml") in msg
    assert "line 14: opcua[0].nodes[1].signal" in msg
    assert "no station 'printr'" in msg and "'cnc-1'" in msg


def test_unknown_signal_name_and_meter(tmp_path):
    text = GOOD.replace("signal: line1/printer/state", "signal: site/grid/volume_nm3")
    with pytest.raises(ConfigError) as err:
        load_mapping(write(tmp_path, text), small_factory())
    assert "opcua[0].nodes[0].signal" in str(err.value)
    assert "site/grid has no signal 'volume_nm3'" in str(err.value)


def test_template_that_matches_nothing_is_an_error(tmp_path):
    text = GOOD.replace('signal: "line1/{station}/power_kw"', 'signal: "line1/{station}/power_w"')
    with pytest.raises(ConfigError) as err:
        load_mapping(write(tmp_path, text), small_factory())
    assert "mqtt[0].topics[1].signal" in str(err.value) and "matches no signal" in str(err.value)


def test_template_placeholder_missing_from_pattern(tmp_path):
    text = GOOD.replace('signal: "line1/{station}/power_kw"', 'signal: "{line}/{station}/power_kw"')
    with pytest.raises(ConfigError) as err:
        load_mapping(write(tmp_path, text), small_factory())
    assert "mqtt[0].topics[1]" in str(err.value) and "['line']" in str(err.value)


@pytest.mark.parametrize(
    "old, new, expect",
    [
        ("site: suzhou-smt", "site: other-site", "site: mapping is for site 'other-site'"),
        ('node: "nsu=urn:factory-twin:simulated-plc;s=line1/printer/state"', 'node: "ns=2;s=x"', "nsu="),
        ("mode: SignAndEncrypt, ", "", "needs mode"),
        ("url: mqtt://127.0.0.1:1883", "url: mqtt://u:p@127.0.0.1:1883", "no credentials in the url"),
        ("url: mqtt://127.0.0.1:1883", "url: http://127.0.0.1", "mqtt[0].url"),
        ("password_env: OPCUA_PASSWORD", "password_file: pw.txt\n    password_env: X", "not both"),
        ("field: value", "field: value\n        fields: typo", "mqtt[0].topics[0].fields"),
        ('pattern: "legacy/{station}/watts"', 'pattern: "legacy/{station}/wa+tts"', "placeholder"),
    ],
)
def test_config_errors_name_the_field(tmp_path, old, new, expect):
    assert old in GOOD
    with pytest.raises(ConfigError) as err:
        load_mapping(write(tmp_path, GOOD.replace(old, new)), small_factory())
    assert expect in str(err.value)
    assert "mapping.yaml" in str(err.value)


def test_duplicate_source_names(tmp_path):
    text = GOOD.replace("name: meters", "name: plc-line1")
    with pytest.raises(ConfigError, match="unique"):
        load_mapping(write(tmp_path, text), small_factory())


def test_known_signals_cover_parallel_machines_and_meters():
    known = known_signals(small_factory())
    assert {"line1/cnc-1/state", "line1/cnc-2/energy_kwh", "site/grid/power_kw", "site/gas/volume_nm3"} <= known
    assert "line1/cnc/state" not in known and "site/gas/power_kw" not in known
    assert len(known) == 3 * 8 + 2 + 1


def test_path_pattern_matches_levels_and_fixes_site():
    p = PathPattern("factory/{site}/{line}/{station}/{signal}", {"site": "suzhou-smt"})
    assert p.subscription() == "factory/suzhou-smt/+/+/+"
    values = p.match("factory/suzhou-smt/line1/cnc-2/power_kw")
    assert render("{line}/{station}/{signal}", values) == "line1/cnc-2/power_kw"
    assert p.match("factory/other/line1/cnc-2/power_kw") is None
    assert p.match("factory/suzhou-smt/line1/cnc-2/power_kw/extra") is None
    assert p.match("factory/suzhou-smt/line1/bad name/power_kw") is None
    assert PathPattern("a/#").match("a/b/c") == {}


def test_timestamp_policy_falls_back_in_order():
    assert pick_timestamp("source", 1.0, 2.0, 3.0) == (1.0, TsKind.SOURCE)
    assert pick_timestamp("source", None, 2.0, 3.0) == (2.0, TsKind.SERVER)
    assert pick_timestamp("source", None, None, 3.0) == (3.0, TsKind.RECEIVE)
    assert pick_timestamp("server", 1.0, 2.0, 3.0) == (2.0, TsKind.SERVER)
    assert pick_timestamp("receive", 1.0, 2.0, 3.0) == (3.0, TsKind.RECEIVE)


def test_transform_and_deadband():
    assert Transform(scale=0.001, offset=-1).apply(2500) == 1.5
    db = Deadband()
    kept = [v for v in (1.0, 1.04, 1.1, 1.12, 0.9) if db.passes("s", v, 0.1)]
    assert kept == [1.0, 1.1, 0.9]
    assert [v for v in ("A", "A", "B") if db.passes("t", v, 1)] == ["A", "B"]
    assert all(db.passes("u", 1.0, 0) for _ in range(3))


def test_coerce_values():
    assert coerce("line1/printer/state", "down") == "DOWN"
    assert coerce("line1/printer/state", 0) == "PRODUCING"
    assert coerce("line1/printer/good", "12") == 12.0
    assert coerce("line1/printer/product", "pcb-a") == "pcb-a"
    for signal, raw, reason in [
        ("line1/printer/good", float("nan"), "not_finite"),
        ("line1/printer/good", "inf", "not_finite"),
        ("line1/printer/good", True, "wrong_type"),
        ("line1/printer/good", "twelve", "wrong_type"),
        ("line1/printer/good", [1], "wrong_type"),
        ("line1/printer/state", "EXPLODED", "bad_state"),
        ("line1/printer/product", 3, "wrong_type"),
    ]:
        with pytest.raises(BadValue) as err:
            coerce(signal, raw)
        assert err.value.reason == reason, (signal, raw)


def test_demo_mqtt_mapping_loads_against_demo_factory():
    from pathlib import Path

    from factory_models import load_factory

    root = Path(__file__).resolve().parents[2] / "configs"
    factory = load_factory(root / "demo_smt.yaml")
    mapping = load_mapping(root / "mapping_demo_mqtt.yaml", factory)
    assert mapping.site == factory.site.name and mapping.mqtt[0].qos == 1
