"""unit: converts to the signal's unit; rollover: makes a wrapping counter continuous; eu_range."""

from __future__ import annotations

import textwrap

import pytest

from connectors.mapping import load_mapping
from connectors.transform import Rejected, Rules, SignalMemory, Transform, to_sample
from connectors.units import conversion_factor, signal_unit
from factory_models import ConfigError, Quality

from support.factories import small_factory

GOOD = Quality.GOOD


def value(rules, raw, memory=None, quality=GOOD):
    out = to_sample(rules, raw, quality, 1.0, None, 1.0, memory or SignalMemory())
    return out if isinstance(out, Rejected) else out.value


@pytest.mark.parametrize("unit, signal, raw, expected", [
    ("W", "line1/printer/power_kw", 5200, 5.2),            # 5200 W = 5.2 kW
    ("MW", "site/grid/power_kw", 1.5, 1500.0),             # 1.5 MW = 1500 kW
    ("Wh", "line1/printer/energy_kwh", 812_345, 812.345),  # 812,345 Wh = 812.345 kWh
    ("MJ", "site/grid/energy_kwh", 36, 10.0),              # 36 MJ / 3.6 MJ per kWh
    ("l", "site/gas/volume_nm3", 1, None),                 # litres are no normal cubic metres
    ("Nl", "site/gas/volume_nm3", 2500, 2.5),              # 2500 normal litres = 2.5 Nm3
    ("dozen", "line1/printer/good", 3, 36.0),              # 3 dozen parts
])
def test_units_convert_to_the_signals_own(unit, signal, raw, expected):
    out = value(Rules(signal, Transform(unit=unit)), raw)
    if expected is None:
        assert isinstance(out, Rejected) and out.reason == "bad_unit"
    else:
        assert out == pytest.approx(expected)


def test_the_unit_applies_after_scale_and_offset():
    # a meter sending tenths of a watt with a 100 W zero offset: (52000 x 0.1 + 100) W = 5.3 kW
    assert value(Rules("line1/printer/power_kw", Transform(scale=0.1, offset=100, unit="W")), 52000) == pytest.approx(5.3)


def test_a_meter_in_w_declared_w_is_no_longer_read_as_kw():
    # the report: unit: W was decorative, so 5200 W became 5200 kW
    assert value(Rules("line1/printer/power_kw", Transform(unit="W")), 5200) == pytest.approx(5.2)
    assert value(Rules("line1/printer/power_kw", Transform(unit="kW")), 5.2) == pytest.approx(5.2)


def test_vocabulary_units_and_conversion_errors():
    assert [signal_unit(s) for s in ("a/b/power_kw", "a/b/energy_kwh", "site/g/volume_nm3", "site/c/volume_m3",
                                     "a/b/produced", "a/b/state")] == ["kW", "kWh", "Nm3", "m3", "count", None]
    assert conversion_factor("m3", "site/air/volume_m3") == 1.0 and conversion_factor("l", "site/air/volume_m3") == pytest.approx(0.001)
    with pytest.raises(ValueError, match="'W' cannot be converted to 'kWh'"):
        conversion_factor("W", "line1/printer/energy_kwh")
    with pytest.raises(ValueError, match="unknown unit 'furlongs-ish'"):
        conversion_factor("furlongs-ish", "line1/printer/power_kw")


def test_a_16_bit_counter_that_rolls_over_counts_on_and_a_small_drop_is_a_reset():
    rules = Rules("line1/printer/good", Transform(rollover=65535))
    memory = SignalMemory()
    # 65530 -> 65535 -> 4: 5 + 5 parts (65535, 0, 1, 2, 3, 4 is 5 steps after 65535) -> 65540
    got = [value(rules, raw, memory) for raw in (65530, 65535, 4, 10)]
    assert got == [65530.0, 65535.0, 65540.0, 65546.0]
    assert memory.unwrap.wraps == {"line1/printer/good": 1}
    # 10 -> 3 drops by 7 < 65536 / 2: a reset, forwarded as the device's 3 (the twin reads a reset)
    assert value(rules, 3, memory) == 3.0
    assert memory.unwrap.resets == {"line1/printer/good": 1}
    out = value(rules, 70000, memory)
    assert isinstance(out, Rejected) and out.reason == "out_of_range"


def test_without_rollover_a_decrease_is_forwarded_as_it_is():
    rules = Rules("line1/printer/good", Transform())
    memory = SignalMemory()
    assert [value(rules, raw, memory) for raw in (65535, 4)] == [65535.0, 4.0]


def test_rollover_is_in_raw_counts_before_scale():
    # a counter of tens of parts that wraps at 9999: 9998 -> 2 is 4 more raw steps, 40 parts
    rules = Rules("line1/printer/good", Transform(rollover=9999, scale=10))
    memory = SignalMemory()
    assert [value(rules, raw, memory) for raw in (9998, 2)] == [99980.0, 100020.0]


def test_eu_range_rejects_raw_values_outside_it_but_a_bad_reading_stays_a_bad_sample():
    rules = Rules("line1/printer/power_kw", Transform(eu_range=(0, 50_000), unit="W"))
    assert value(rules, 50_000) == pytest.approx(50.0)
    out = value(rules, 50_001)
    assert isinstance(out, Rejected) and out.reason == "out_of_range" and "[0, 50000]" in out.detail
    # a reading the device itself marks Bad is news about the device, counted by the twin as Bad
    bad = to_sample(rules, 99_999, Quality.BAD, 1.0, None, 1.0, SignalMemory())
    assert bad.quality is Quality.BAD


def mapping(tmp_path, nodes: str, kpi_rollover: bool = False):
    p = tmp_path / "mapping.yaml"
    p.write_text("site: suzhou-smt\nopcua:\n  - name: plc\n    endpoint: opc.tcp://127.0.0.1:4840\n"
                 "    nodes:\n" + textwrap.indent(textwrap.dedent(nodes), "      "), encoding="utf-8")
    return p


def test_an_incompatible_unit_is_a_config_error_naming_the_entry(tmp_path):
    path = mapping(tmp_path, """\
        - node: "nsu=urn:x;s=E"
          signal: line1/printer/energy_kwh
          unit: W
        """)
    with pytest.raises(ConfigError) as err:
        load_mapping(path, small_factory())
    msg = str(err.value)
    assert str(path) in msg and "line 8: opcua[0].nodes[0].unit" in msg and "'W' cannot be converted to 'kWh'" in msg


def test_a_template_is_checked_against_every_signal_it_can_feed(tmp_path):
    # {signal} can be energy_kwh too, which W cannot become
    path = mapping(tmp_path, """\
        - browse: "Objects/{line}/{station}/{signal}"
          unit: W
        """)
    with pytest.raises(ConfigError, match=r"nodes\[0\]\.unit: .*energy_kwh is in kWh"):
        load_mapping(path, small_factory())


def test_rollover_on_no_counter_and_an_unknown_unit_are_config_errors(tmp_path):
    path = mapping(tmp_path, """\
        - node: "nsu=urn:x;s=P"
          signal: line1/printer/power_kw
          rollover: 65535
        - node: "nsu=urn:x;s=S"
          signal: line1/printer/state
          unit: kW
        """)
    with pytest.raises(ConfigError) as err:
        load_mapping(path, small_factory())
    msg = str(err.value)
    assert "nodes[0].rollover: rollover: applies to counters" in msg
    assert "nodes[1].unit: line1/printer/state is text and has no unit" in msg


def test_a_rollover_also_set_in_the_factory_is_a_config_error(tmp_path):
    # the source makes the counter continuous; the factory's modulus would then read a real reset
    # of the continuous count as a wrap
    from factory_models import Factory

    data = small_factory().model_dump()
    data["kpi"]["counter_rollover"] = {"good": 65536}
    factory = Factory.model_validate(data)
    path = mapping(tmp_path, """\
        - node: "nsu=urn:x;s=G"
          signal: line1/printer/good
          rollover: 65535
        """)
    with pytest.raises(ConfigError, match=r"nodes\[0\]\.rollover: the factory also sets kpi\.counter_rollover\.good"):
        load_mapping(path, factory)
    assert load_mapping(path, small_factory()).opcua[0].nodes[0].rollover == 65535


def test_a_servers_eu_range_applies_unless_the_mapping_gives_one():
    rules = Rules("line1/printer/power_kw", Transform(unit="W"))
    assert rules.set_eu_range(0, 1000) and value(rules, 900) == pytest.approx(0.9)
    assert value(rules, 1001).reason == "out_of_range"
    own = Rules("line1/printer/power_kw", Transform(eu_range=(0, 10)))
    assert not own.set_eu_range(0, 1000) and own.eu_range == (0, 10)
    assert not Rules("line1/printer/state", Transform()).set_eu_range(0, 1)
    with pytest.raises(ValueError, match="low < high"):
        Transform(eu_range=(5, 1))


@pytest.mark.parametrize("unit", ["", "2 W", "1e3 W", "W/100", "1/0", "__import__('os')"])
def test_a_unit_is_units_only_a_factor_belongs_in_scale(unit):
    with pytest.raises(ValueError, match="unknown unit"):
        conversion_factor(unit, "line1/printer/power_kw")


def test_factors_are_clean_decimals():
    # 1 l is 0.001 m3 exactly as written, not pint's 0.0010000000000000002
    assert conversion_factor("l", "site/air/volume_m3") == 0.001
    assert conversion_factor("ft3", "site/air/volume_m3") == 0.028316846592  # 0.3048**3


def test_an_unknown_unit_is_refused_even_without_a_factory(tmp_path):
    from connectors.mapping import Mapping
    from factory_models import load_model

    path = mapping(tmp_path, """\
        - node: "nsu=urn:x;s=P"
          signal: line1/printer/power_kw
          unit: Watts please
        """)
    with pytest.raises(ConfigError, match=r"line 8: opcua\[0\]\.nodes\[0\]\.unit: Value error, unknown unit 'Watts please'"):
        load_model(path, Mapping)
