"""values: state codes of PLCs turned into twin states; unmapped codes leave the station UNKNOWN."""

from __future__ import annotations

import textwrap

import pytest

from connectors.mapping import load_mapping
from connectors.transform import Rejected, Rules, SignalMemory, Transform, to_sample
from connectors.valuemaps import BUILTIN, describe_table, raw_key, value_map
from factory_models import ConfigError, Quality, Sample, State

from support.factories import small_factory

STATE = "line1/printer/state"


def test_packtags_and_opcua_numberings_read_the_same_code_differently():
    packml, opcua = value_map("packml"), value_map("packml-opcua")
    # ISA-TR88.00.02 PackTags: 6 Execute, 11 Held, 5 Suspended, 4 Idle, 2 Stopped, 0 Undefined
    assert [packml.lookup(c) for c in (6, 11, 5, 4, 2, 0)] == [
        "PRODUCING", "DOWN", "STARVED", "IDLE", "PLANNED_STOP", "UNKNOWN"]
    # OPC 30060 StateEnumeration: 4 Execute, 15 Held, 12 Suspended, 2 Idle, 0 Stopped; 6 is Complete
    assert [opcua.lookup(c) for c in (4, 15, 12, 2, 0, 6)] == [
        "PRODUCING", "DOWN", "STARVED", "IDLE", "PLANNED_STOP", "IDLE"]
    assert packml.lookup(18) is None and opcua.lookup(17) is None  # beyond each standard's numbers


def test_every_packml_state_books_the_same_in_both_numberings():
    by_name = {state: twin for _, state, twin in describe_table("packml") if state != "Undefined"}
    assert len(by_name) == 17
    assert {state: twin for _, state, twin in describe_table("packml-opcua")} == by_name
    # held is a stop inside the machine, suspended one outside it (docs/kpis.md: ADET vs ADOT)
    assert by_name["Held"] == "DOWN" and by_name["Suspended"] == "STARVED"


def test_machinery_item_state_numbers():
    m = value_map("machinery")
    assert [m.lookup(n) for n in range(4)] == ["PLANNED_STOP", "DOWN", "IDLE", "PRODUCING"]
    assert m.lookup(4) is None


def test_keys_match_by_meaning_not_spelling():
    assert [raw_key(v) for v in (6, 6.0, "6", " 6 ", True, "Un-holding", "NOT_EXECUTING")] == [
        6, 6, 6, 6, "true", "unholding", "notexecuting"]
    assert raw_key(6.5) is None and raw_key([6]) is None
    packml = value_map("packml")
    assert packml.lookup("Execute") == packml.lookup("EXECUTE") == packml.lookup(6.0) == "PRODUCING"
    assert packml.lookup("Un-suspending") == "STARVED"
    inline = value_map({True: "PRODUCING", False: "IDLE", "Running": "producing"})
    assert (inline.lookup(True), inline.lookup(False), inline.lookup("RUNNING")) == ("PRODUCING", "IDLE", "PRODUCING")


def test_bad_maps_are_refused_with_the_value_at_fault():
    with pytest.raises(ValueError, match="unknown value table 'packml2'.*packml, packml-opcua, machinery"):
        value_map("packml2")
    with pytest.raises(ValueError, match="raw value 11 maps to 'HELD', which is not a twin state"):
        value_map({6: "PRODUCING", 11: "HELD"})
    with pytest.raises(ValueError, match="given twice"):
        value_map({6: "PRODUCING", "6": "DOWN"})


def test_builtin_tables_name_only_twin_states():
    assert all(state in State.__members__ for table in BUILTIN.values() for state in table.values())


def test_an_unmapped_code_is_counted_and_makes_the_station_unknown_never_the_previous_state():
    rules = Rules(STATE, Transform(values="packml"))
    memory = SignalMemory()
    first = to_sample(rules, 6, Quality.GOOD, 100.0, None, 100.5, memory)
    assert first == Sample(STATE, "PRODUCING", 100.0)
    out = to_sample(rules, 42, Quality.GOOD, 110.0, None, 110.5, memory)
    assert isinstance(out, Rejected) and out.reason == "unmapped_value" and "42" in out.detail
    assert out.sample == Sample(STATE, "UNKNOWN", 110.0)
    assert memory.unmapped == {STATE: 1}
    # before value maps, 6 was read as the twin's own code 6 (PLANNED_STOP) and 42 kept the old state
    assert to_sample(rules, 11, Quality.GOOD, 120.0, None, 120.5, memory) == Sample(STATE, "DOWN", 120.0)


def test_the_same_state_after_an_unmapped_one_passes_a_text_deadband():
    rules = Rules(STATE, Transform(values={1: "PRODUCING"}, deadband=1))
    memory = SignalMemory()
    assert to_sample(rules, 1, Quality.GOOD, 1.0, None, 1.0, memory).value == "PRODUCING"
    assert to_sample(rules, 7, Quality.GOOD, 2.0, None, 2.0, memory).sample.value == "UNKNOWN"
    # PRODUCING again is news after UNKNOWN, though it equals the last mapped value
    assert to_sample(rules, 1, Quality.GOOD, 3.0, None, 3.0, memory) == Sample(STATE, "PRODUCING", 3.0)


def test_the_twin_records_unknown_from_the_unmapped_value_until_a_mapped_one(tmp_path):
    from twin.shadow.live_twin import LiveTwin

    factory = small_factory()
    t = [1_767_571_200.0]
    twin = LiveTwin(factory, clock=lambda: t[0], retain_s=None)
    rules = Rules(STATE, Transform(values="packml"))
    memory = SignalMemory()
    for ts, code in ((t[0] - 30, 6), (t[0] - 20, 99), (t[0] - 5, 6)):
        out = to_sample(rules, code, Quality.GOOD, ts, None, ts, memory)
        twin.add(out.sample if isinstance(out, Rejected) else out)
    report = twin.report(t[0] - 30, t[0])
    printer = next(s for s in report.stations if s.station == "printer")
    # 10 s PRODUCING, 15 s UNKNOWN (from the unmapped 99 until the next 6), then 5 s PRODUCING
    assert printer.apt_s == pytest.approx(15.0)
    assert printer.unknown_s == pytest.approx(15.0)


def write(tmp_path, nodes: str):
    p = tmp_path / "mapping.yaml"
    p.write_text("site: suzhou-smt\nopcua:\n  - name: plc\n    endpoint: opc.tcp://127.0.0.1:4840\n"
                 "    nodes:\n" + textwrap.indent(textwrap.dedent(nodes), "      "), encoding="utf-8")
    return p


def test_an_unknown_twin_state_in_a_mapping_names_file_line_and_entry(tmp_path):
    path = write(tmp_path, """\
        - node: "nsu=urn:x;s=State"
          signal: line1/printer/state
          values: {6: PRODUCING, 11: BROKEN}
        """)
    with pytest.raises(ConfigError) as err:
        load_mapping(path, small_factory())
    msg = str(err.value)
    assert str(path) in msg and "line 8: opcua[0].nodes[0].values" in msg and "'BROKEN'" in msg


def test_values_on_a_signal_that_is_no_state_is_a_config_error(tmp_path):
    path = write(tmp_path, """\
        - node: "nsu=urn:x;s=Power"
          signal: line1/printer/power_kw
          values: packml
        """)
    with pytest.raises(ConfigError, match=r"opcua\[0\]\.nodes\[0\]\.values: values: maps state codes"):
        load_mapping(path, small_factory())
