"""``factory-twin check`` accepts a connection mapping too, as the mapping files' comments promise,
and checks it against the factory when both are given (an unknown signal: file, line, exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app

ROOT = Path(__file__).resolve().parents[2]
SMT = ROOT / "configs" / "demo_smt.yaml"
MACHINING = ROOT / "configs" / "demo_machining.yaml"
MQTT = ROOT / "configs" / "mapping_demo_mqtt.yaml"
OPCUA = ROOT / "configs" / "mapping_demo_opcua.yaml"
runner = CliRunner()


def check(*args) -> object:
    return runner.invoke(app, ["check", *map(str, args)], terminal_width=200)


@pytest.mark.parametrize("mapping", [MQTT, OPCUA])
def test_the_demo_mappings_say_to_run_check_and_it_accepts_them(mapping):
    assert "factory-twin check" in mapping.read_text()
    result = check(mapping)
    assert result.exit_code == 0, result.output
    assert f"valid mapping {mapping}: site suzhou-smt, 1 source(s)" in result.stdout
    assert "signals not checked against a factory" in result.stdout


def test_what_a_mapping_declares():
    doc = json.loads(check(OPCUA, "--json").stdout)
    (src,) = doc["sources"]
    assert (doc["site"], src["name"], src["protocol"], src["address"]) == (
        "suzhou-smt", "plc-smt1", "opcua", "opc.tcp://127.0.0.1:4840")
    assert src["browse_patterns"] == 1 and src["nodes"] == 0
    assert doc["checked_against"] is None and "signals" not in doc
    out = check(MQTT).stdout
    assert "meters (mqtt, mqtt://127.0.0.1:1883): 1 topics" in out
    assert "-> {line}/{station}/{signal}" in out


@pytest.mark.parametrize("args", [
    [SMT, "--mapping", MQTT], [SMT, "-m", OPCUA], [SMT, MQTT], [OPCUA, SMT],
])
def test_mapping_checked_against_the_factory(args):
    result = check(*args, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["checked_against"] == str(SMT)
    assert doc["signals"]["known"] > 50
    assert doc["signals"]["covered"] == doc["signals"]["known"] and doc["signals"]["not_covered"] == []
    text = check(*args).stdout
    assert f"checked against {SMT}: every signal named exists" in text


def test_unknown_signal_names_file_and_line(tmp_path):
    bad = tmp_path / "mapping.yaml"
    text = MQTT.read_text()
    bad.write_text(text.replace('        field: value\n',
                                '        field: value\n      - pattern: "oven/{x}"\n        signal: smt1/oven9/power_kw\n', 1))
    line = next(i for i, ln in enumerate(bad.read_text().splitlines(), 1) if "smt1/oven9" in ln)
    assert check(bad).exit_code == 0  # on its own the file is well formed
    result = check(SMT, "--mapping", bad)
    assert result.exit_code == 2
    err = result.stderr.strip()
    assert err.startswith(f"factory-twin: {bad}: line {line}: mqtt[0].topics[1].signal: unknown signal 'smt1/oven9/power_kw'")
    assert "'reflow'" in err  # names the stations it could have been
    assert "Traceback" not in result.output


def test_mapping_for_another_site(tmp_path):
    result = check(MACHINING, "--mapping", MQTT)
    assert result.exit_code == 2
    assert f"factory-twin: {MQTT}: line 4: site: mapping is for site 'suzhou-smt'" in result.stderr


def test_malformed_mapping_alone_names_file_and_field(tmp_path):
    bad = tmp_path / "mapping.yaml"
    bad.write_text(MQTT.read_text().replace("qos: 1", "qos: 7"))
    result = check(bad)
    assert result.exit_code == 2
    assert str(bad) in result.stderr and "mqtt[0].qos" in result.stderr


def test_two_factories_or_two_mappings_are_refused():
    assert check(SMT, MACHINING).exit_code == 2
    result = check(MQTT, OPCUA)
    assert result.exit_code == 2 and "at most one mapping" in result.stderr


def test_a_factory_alone_is_still_described():
    result = check(SMT)
    assert result.exit_code == 0 and f"valid {SMT}: site suzhou-smt" in result.stdout
