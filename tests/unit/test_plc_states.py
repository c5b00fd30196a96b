"""The simulated PLC's state codes and engineering units, without a server."""

from __future__ import annotations

import pytest

from connectors.opcua.engineering_units import CEFACT_URI, eu_information, symbol_of, unit_id
from connectors.opcua.plc_states import encoder, state_codes
from connectors.valuemaps import value_map
from factory_models import State
from factory_models.states import TIME_ELEMENT


def test_every_twin_state_is_written_as_a_packml_code_the_packml_map_reads_back_alike():
    codes, packml = state_codes("packml"), value_map("packml")
    read = {st: packml.lookup(codes.code(st)) for st in State}
    # exact wherever PackML has the state; the two pairs PackML cannot tell apart book alike
    assert read == {st: st.name for st in State} | {State.BLOCKED: "STARVED", State.NO_SHIFT: "PLANNED_STOP"}
    assert codes.code(State.PRODUCING) == 6 and codes.code("down") == 11 and codes.code("Idle") == 4
    for st in (State.BLOCKED, State.NO_SHIFT):
        back = State[read[st]]
        pbt = {"apt", "asut", "adet", "adot"}
        assert (TIME_ELEMENT[st] in pbt) == (TIME_ELEMENT[back] in pbt), st


def test_the_encoder_follows_the_reading_map_where_it_tells_states_apart():
    # a plant whose map reads Suspended (5) as BLOCKED and Suspending (13) as STARVED
    reading = {6: "PRODUCING", 5: "BLOCKED", 13: "STARVED", 11: "DOWN", 2: "PLANNED_STOP", 4: "IDLE"}
    out = encoder(reading)
    assert (out[State.BLOCKED], out[State.STARVED]) == (5, 13)
    # SETUP has no code of its own there: written as a code read as a loss against availability
    assert reading[out[State.SETUP]] in {"DOWN", "STARVED", "BLOCKED", "IDLE"}
    assert out[State.PRODUCING] == 6 and out[State.NO_SHIFT] == 2


def test_twin_codes_and_bad_names():
    twin = state_codes("twin")
    assert [twin.code(s) for s in State] == list(range(len(State))) and twin.names[0] == "PRODUCING"
    with pytest.raises(ValueError, match="not a twin state"):
        state_codes("packml").code("RUNNING")
    with pytest.raises(ValueError, match="'packml' or 'twin'"):
        state_codes("vendor")


def test_unece_unit_ids_are_the_common_code_packed_one_byte_a_character():
    # MTQ: 0x4D 'M', 0x54 'T', 0x51 'Q' -> 0x4D5451 = 5067857; NM3: 0x4E, 0x4D, 0x33 -> 5131571
    assert (unit_id("MTQ"), unit_id("NM3"), unit_id("KWT")) == (5_067_857, 5_131_571, 4_937_556)
    eu = eu_information("m3")
    assert (eu.NamespaceUri, eu.UnitId, eu.DisplayName.Text) == (CEFACT_URI, 5_067_857, "m3")
    assert symbol_of(eu_information("Nm3")) == "Nm3" and symbol_of(eu_information("W")) == "W"
    with pytest.raises(ValueError, match="no UNECE code known for unit 'furlong'"):
        eu_information("furlong")
    with pytest.raises(ValueError, match="1 to 3 ASCII"):
        unit_id("KWTH")
