"""What ``browse`` drafts from a variable's EngineeringUnits, and the names a browse entry gives
(issue 12, item 5). UNECE unitIds are worked out by hand: each code's ASCII bytes, first one highest
(OPC 10000-8 section 5.6.3.4)."""

from __future__ import annotations

import pytest
from asyncua import ua

from connectors.opcua.browse import connection_settings, draft_node
from connectors.opcua.config import OpcUaNode
from connectors.opcua.describe import Described, unit_of
from connectors.opcua.engineering_units import CEFACT_URI
from connectors.units import conversion_factor


def eu(unit_id: int, shown: str, uri: str = CEFACT_URI) -> ua.EUInformation:
    return ua.EUInformation(NamespaceUri=uri, UnitId=unit_id, DisplayName=ua.LocalizedText(shown))


def test_unece_codes_become_pint_spellings():
    # 'W' 0x57, 'T' 0x54: WTT = 0x575454 = 5723220
    assert unit_of(eu(5723220, "W")) == ("W", "W (UNECE WTT)")
    # 'C' 0x43, 'E' 0x45, 'L' 0x4C: CEL = 0x43454C = 4408652, shown as the server writes it
    symbol, text = unit_of(eu(4408652, "°C"))
    assert symbol == "degC" and text == "°C (UNECE CEL)"
    # 'K' 0x4B, 'W' 0x57, 'H' 0x48: KWH = 0x4B5748 = 4937544
    assert unit_of(eu(4937544, "kWh"))[0] == "kWh"
    # another namespace: the display name as written, no code
    assert unit_of(eu(42, "kW", uri="urn:vendor:units")) == ("kW", "kW")
    assert unit_of(None) == (None, None)


def test_a_drafted_unit_converts_to_the_signal_or_is_left_in_the_comment():
    watts = Described(data_type="Double", type_definition="AnalogItemType", unit="W", unit_text="W (UNECE WTT)",
                      eu_range=(0.0, 20000.0))
    text = draft_node({"node": "nsu=urn:a;s=P", "signal": "line1/press/power_kw"}, "Objects/PLC/Press/Power", watts)
    assert 'unit: "W"  # x 0.001 to the signal\'s unit' in text
    assert conversion_factor("W", "line1/press/power_kw") == pytest.approx(0.001)
    assert "eu_range: [0.0, 20000.0]" in text
    # W cannot become the kWh of an energy counter: no unit key, the comment says why
    text = draft_node({"node": "nsu=urn:a;s=E", "signal": "line1/press/energy_kwh"}, "Objects/PLC/Press/Energy", watts)
    assert "unit:" not in text.split("#")[0] and "unit not set" in text


def test_rename_first_then_case():
    entry = OpcUaNode.model_validate({"browse": "Objects/PLC/{station}/{signal}", "signal": "line1/{station}/{signal}",
                                      "rename": {"Press 01": "printer", "Power": "power_kw"}, "case": "lower"})
    assert [entry.twin_name(n) for n in ("Press 01", "Power", "State", "GoodCount")] == [
        "printer", "power_kw", "state", "goodcount"]
    plain = OpcUaNode.model_validate({"browse": "Objects/{site}/{line}/{station}/{signal}"})
    assert plain.twin_name("State") == "State"


def test_browse_options_are_checked_like_a_mapping_source():
    with pytest.raises(ValueError, match="needs mode"):
        connection_settings(policy="Basic256Sha256")
    with pytest.raises(ValueError, match="password needs username_env"):
        connection_settings(password_env="PW")
    security, creds = connection_settings(username_env="U", password_env="P")
    assert security.policy == "None" and (creds.username_env, creds.password_env) == ("U", "P")
