"""The Sparkplug source without a broker: metrics routed to signals through the shared rules, the
birth timestamp rule, deaths making the stations whose state they fed UNKNOWN, and every bad
message a counted, named rejection with its dead letter."""

from __future__ import annotations

import json
import textwrap

import pytest
from support.factories import small_factory
from support.sparkplug_edge import (
    BOOLEAN,
    DOUBLE,
    FLOAT,
    INT32,
    STRING,
    UINT32,
    UINT64,
    metric,
    payload,
)

from connectors.mapping import load_mapping
from connectors.sparkplug.client import SparkplugClient
from connectors.sparkplug.config import SparkplugSource
from factory_models import ConfigError, Quality, Sample, TsKind
from factory_models.signals import known_signals

T0 = 1767571200.0  # 2026-01-05T00:00:00Z
MS = int(T0 * 1000)
P = "spBv1.0/plant"


def client(tmp_path, **extra) -> SparkplugClient:
    cfg = SparkplugSource.model_validate({
        "name": "edge", "group_id": "plant",
        "metrics": [
            {"edge_node": "{line}", "device": "{station}", "metric": "State", "signal": "{line}/{station}/state",
             "values": {6: "PRODUCING", 4: "IDLE", 11: "DOWN"}},
            {"edge_node": "{line}", "device": "{station}", "metric": "Counters/{signal}",
             "signal": "{line}/{station}/{signal}"},
            {"edge_node": "{line}", "device": "{station}", "metric": "Power", "signal": "{line}/{station}/power_kw",
             "unit": "W"},
            # one metric, two signals: the good count is also the produced count on this line
            {"edge_node": "{line}", "device": "{station}", "metric": "Counters/good",
             "signal": "{line}/{station}/produced"},
            {"edge_node": "utilities", "metric": "Grid/Energy", "signal": "site/grid/energy_kwh", "unit": "MWh"},
        ],
        **extra,
    })
    return SparkplugClient(cfg, "suzhou-smt", known_signals(small_factory()), tmp_path / "dl.jsonl")


def births(c: SparkplugClient, device: str = "printer", state: int = 4, t: float = T0) -> list[Sample]:
    ms = int(t * 1000)
    out = c.handle(f"{P}/NBIRTH/line1", payload([metric("bdSeq", 7, UINT64), metric("Node Control/Rebirth", False, BOOLEAN)],
                                                 ms, seq=0), t)
    out += c.handle(f"{P}/DBIRTH/line1/{device}", payload([
        metric("State", state, INT32, alias=1, ts_ms=ms - 60_000),  # unchanged for a minute before the birth
        metric("Counters/good", 10, UINT32, alias=2, ts_ms=ms),
        metric("Power", 2500.0, FLOAT, alias=3, ts_ms=ms),
        metric("Firmware", "1.2", STRING, alias=4, ts_ms=ms),
    ], ms, seq=1), t)
    return out


def test_births_and_data_become_samples_through_the_shared_rules(tmp_path):
    c = client(tmp_path)
    got = births(c)
    # the birth certifies its values as of its own time: the state's older timestamp is lifted to it
    assert got == [
        Sample("line1/printer/state", "IDLE", T0, Quality.GOOD, TsKind.SOURCE),
        Sample("line1/printer/good", 10.0, T0, Quality.GOOD, TsKind.SOURCE),
        Sample("line1/printer/produced", 10.0, T0, Quality.GOOD, TsKind.SOURCE),
        Sample("line1/printer/power_kw", 2.5, T0, Quality.GOOD, TsKind.SOURCE),  # 2500 W = 2.5 kW
    ]
    t1 = T0 + 30
    got = c.handle(f"{P}/DDATA/line1/printer", payload([
        metric(None, 6, None, alias=1, ts_ms=int(t1 * 1000), value_datatype=INT32),
        metric(None, 12, None, alias=2, ts_ms=int(t1 * 1000) + 500, value_datatype=UINT32),
    ], int(t1 * 1000) + 900, seq=2), t1 + 1)
    assert got == [
        Sample("line1/printer/state", "PRODUCING", t1, Quality.GOOD, TsKind.SOURCE),  # 6 -> PRODUCING by the map
        Sample("line1/printer/good", 12.0, t1 + 0.5, Quality.GOOD, TsKind.SOURCE),    # the metric's own time
        Sample("line1/printer/produced", 12.0, t1 + 0.5, Quality.GOOD, TsKind.SOURCE),
    ]
    # a metric without a timestamp takes the payload's (server) time
    got = c.handle(f"{P}/DDATA/line1/printer", payload([metric(None, 3000.0, None, alias=3, value_datatype=FLOAT)],
                                                       int(t1 * 1000) + 2000, seq=3), t1 + 3)
    assert got == [Sample("line1/printer/power_kw", 3.0, t1 + 2, Quality.GOOD, TsKind.SERVER)]
    s = c.stats()
    assert s["samples"] == 8 and s["rejected"] == 0 and s["births"] == 1 and s["device_births"] == 1
    assert s["metrics_unmapped"] == 3  # bdSeq, Node Control/Rebirth, Firmware: declared, not wanted
    assert c.signals() == {"line1/printer/state", "line1/printer/good", "line1/printer/produced",
                           "line1/printer/power_kw", "site/grid/energy_kwh"}
    # what it fed: the templates' signals it delivered (site/grid/energy_kwh is named, not yet delivered)
    assert c.delivered_signals() == c.signals() - {"site/grid/energy_kwh"}


def test_a_node_metric_in_mwh_and_a_null_value(tmp_path):
    c = client(tmp_path)
    got = c.handle(f"{P}/NBIRTH/utilities", payload([metric("bdSeq", 0, UINT64),
                                                     metric("Grid/Energy", 1.25, DOUBLE, alias=1, ts_ms=MS)], MS, seq=0), T0)
    assert got == [Sample("site/grid/energy_kwh", 1250.0, T0, Quality.GOOD, TsKind.SOURCE)]  # 1.25 MWh
    got = c.handle(f"{P}/NDATA/utilities", payload([metric(None, None, None, alias=1, is_null=True, ts_ms=MS + 1000)],
                                                   MS + 1000, seq=1), T0 + 1)
    assert len(got) == 1 and got[0].quality is Quality.BAD and got[0].value != got[0].value  # NaN, counted by the twin


def test_a_node_death_makes_the_stations_whose_state_it_fed_unknown(tmp_path):
    c = client(tmp_path)
    births(c, "printer")
    c.handle(f"{P}/DBIRTH/line1/cnc-1", payload([metric("Counters/good", 1, UINT32, alias=20, ts_ms=MS)], MS, seq=2), T0)
    t = T0 + 100
    got = c.handle(f"{P}/NDEATH/line1", payload([metric("bdSeq", 7, UINT64)]), t)
    # the printer's state came from this node; cnc-1 only sent counts, so it has no state to blank
    assert got == [Sample("line1/printer/state", "UNKNOWN", t, Quality.GOOD, TsKind.RECEIVE)]
    assert c.stats()["deaths"] == 1 and c.stats()["unknown_marked"] == 1


def test_a_device_death_blanks_that_device_only_and_a_stale_node_death_nothing(tmp_path):
    c = client(tmp_path)
    births(c, "printer")
    c.handle(f"{P}/DBIRTH/line1/cnc-1", payload([metric("State", 6, INT32, alias=20, ts_ms=MS)], MS, seq=2), T0)
    got = c.handle(f"{P}/DDEATH/line1/cnc-1", payload([], MS + 5000, seq=3), T0 + 5)
    assert got == [Sample("line1/cnc-1/state", "UNKNOWN", T0 + 5, Quality.GOOD, TsKind.RECEIVE)]
    assert c.handle(f"{P}/NDEATH/line1", payload([metric("bdSeq", 6, UINT64)]), T0 + 6) == []  # an older will
    assert c.stats()["stale_deaths"] == 1


def test_an_unmapped_state_code_is_counted_and_leaves_the_station_unknown(tmp_path):
    c = client(tmp_path)
    births(c)
    got = c.handle(f"{P}/DDATA/line1/printer", payload([metric(None, 99, None, alias=1, ts_ms=MS + 1000,
                                                              value_datatype=INT32)], MS + 1000, seq=2), T0 + 1)
    assert got == [Sample("line1/printer/state", "UNKNOWN", T0 + 1, Quality.GOOD, TsKind.SOURCE)]
    assert c.stats()["rejected_by_reason"] == {"unmapped_value": 1}


def test_bad_messages_are_named_rejections_with_dead_letters(tmp_path):
    c = client(tmp_path, max_payload_bytes=200)
    births(c)
    cases = [
        (f"{P}/DDATA/line1/printer", b"\x0a\xff\xff", "bad_protobuf"),
        (f"{P}/DDATA/line1/printer", b"\x00" * 300, "oversized"),
        ("spBv1.0/plant/NDATA", payload([], seq=2), "bad_topic"),
        (f"{P}/DDATA/line1/printer", payload([metric(None, 1, None, alias=77, value_datatype=UINT32)], seq=2),
         "unknown_alias"),
        (f"{P}/DDATA/line1/printer", payload([metric(None, "x", None, alias=2, value_datatype=STRING)], seq=3),
         "wrong_datatype"),
        (f"{P}/DDATA/line1/oven", payload([metric("Counters/good", 1, UINT32)], seq=4), "before_birth"),
        # a station the factory does not have: the entry maps it to line1/oven/power_kw
        (f"{P}/DBIRTH/line1/oven", payload([metric("Power", 1.0, FLOAT, alias=30)], MS, seq=5), "unknown_signal"),
        (f"{P}/DBIRTH/line1/cnc-2", payload([metric("Power", True, BOOLEAN, alias=31)], MS, seq=6), "wrong_type"),
    ]
    for topic, data, _ in cases:
        assert c.handle(topic, data, T0 + 1) == []
    s = c.stats()
    assert s["rejected_by_reason"] == {reason: 1 for _, _, reason in cases}
    dead = [json.loads(line) for line in (tmp_path / "dl.jsonl").read_text().splitlines()]
    assert [d["reason"] for d in dead] == [reason for _, _, reason in cases]
    assert dead[3]["where"] == f"{P}/DDATA/line1/printer" and "alias 77" in dead[3]["detail"]
    assert s["rebirth_requests"] >= 1  # unknown alias and data before birth both ask (rate-limited per node)


def test_the_config_names_bad_patterns_with_file_and_line(tmp_path):
    bad = {
        "edge_node: \"{line}/x\"": "one topic level",
        "group_id: \"pl+ant\"": "one topic level",
        "metric: \"Counters/#\"": "'#' is not allowed",
        "metric: \"{line}\"": "used twice",
        "signal: \"{line}/{station}/{nope}\"": "does not define",
    }
    base = {"edge_node": "edge_node: \"{line}\"", "group_id": "group_id: plant", "metric": "metric: \"Counters/{signal}\"",
            "signal": "signal: \"{line}/{station}/{signal}\""}
    for line, message in bad.items():
        parts = dict(base, **{line.split(":")[0]: line})
        path = tmp_path / "m.yaml"
        path.write_text(textwrap.dedent(f"""\
            site: suzhou-smt
            sparkplug:
              - name: edge
                {parts["group_id"]}
                metrics:
                  - {parts["edge_node"]}
                    device: "{{station}}"
                    {parts["metric"]}
                    {parts["signal"]}
            """), encoding="utf-8")
        with pytest.raises(ConfigError, match=message) as exc:
            load_mapping(path, small_factory())
        assert str(path) in str(exc.value) and "line " in str(exc.value)


def test_the_demo_mapping_reads_a_line_gateway_with_packml_and_a_16_bit_counter(tmp_path):
    from pathlib import Path

    from factory_models import load_factory

    configs = Path(__file__).resolve().parents[2] / "configs"
    factory = load_factory(configs / "demo_smt.yaml")
    mapping = load_mapping(configs / "mapping_sparkplug.yaml", factory)
    c = SparkplugClient(mapping.sparkplug[0], factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
    assert {"site/grid/energy_kwh", "site/grid/power_kw", "site/boiler/volume_nm3"} <= c.signals()
    g = "spBv1.0/suzhou"
    c.handle(f"{g}/NBIRTH/smt1", payload([metric("bdSeq", 0, UINT64)], MS, seq=0), T0)
    got = c.handle(f"{g}/DBIRTH/smt1/reflow", payload([
        metric("Status/StateCurrent", 6, INT32, alias=1, ts_ms=MS),
        metric("Counters/good", 65530, UINT32, alias=2, ts_ms=MS),
        metric("Energy/ActivePower", 38200.0, FLOAT, alias=3, ts_ms=MS),
    ], MS, seq=1), T0)
    assert [(s.signal, s.value) for s in got] == [("smt1/reflow/state", "PRODUCING"),  # PackML 6 = Execute
                                                  ("smt1/reflow/good", 65530.0), ("smt1/reflow/power_kw", 38.2)]
    got = c.handle(f"{g}/DDATA/smt1/reflow", payload([metric(None, 5, None, alias=2, ts_ms=MS + 60_000,
                                                             value_datatype=UINT32)], MS + 60_000, seq=2), T0 + 60)
    # 65530 -> 65535 -> 0 -> 5: eleven more parts, the count continues past the rollover
    assert [(s.signal, s.value) for s in got] == [("smt1/reflow/good", 65541.0)]


def test_the_shared_rule_checks_name_a_sparkplug_entry(tmp_path):
    """unit: and values: are checked at load for metric entries as for nodes and topics."""
    entry = ('      - {{edge_node: "{{line}}", device: "{{station}}", metric: {metric}, signal: "{{line}}/{{station}}/{signal}", '
             '{rule}}}\n')
    cases = [
        (entry.format(metric="Energy", signal="energy_kwh", rule="unit: W"),
         r"line 5: sparkplug\[0\]\.metrics\[0\]\.unit: .*unit 'W' cannot be converted to 'kWh'"),
        (entry.format(metric="State", signal="state", rule="values: {6: PRODUCNG}"),
         r"line 5: sparkplug\[0\]\.metrics\[0\]\.values: .*'PRODUCNG', which is not a twin state"),
    ]
    for text, message in cases:
        path = tmp_path / "m.yaml"
        path.write_text("site: suzhou-smt\nsparkplug:\n  - name: edge\n    metrics:\n" + text, encoding="utf-8")
        with pytest.raises(ConfigError, match=message):
            load_mapping(path, small_factory())


def test_the_readme_example_loads(tmp_path):
    import re
    from pathlib import Path

    readme = Path(__file__).resolve().parents[2] / "connectors" / "sparkplug" / "README.md"
    block = re.search(r"```yaml\n(.*?)```", readme.read_text(encoding="utf-8"), re.DOTALL).group(1)
    path = tmp_path / "readme.yaml"
    path.write_text(block, encoding="utf-8")
    (source,) = load_mapping(path, small_factory()).sparkplug
    assert (source.group_id, source.host_id, len(source.metrics)) == ("line1", "factory-twin", 3)
