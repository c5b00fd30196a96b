"""How the simulated PLC writes a station's state: an integer code and the names of the codes.

A real line controller does not publish the twin's state names; it publishes a number from its
own state model. The simulated PLC does the same, with one of two code tables:

``packml`` (the default): the PackTags ``StateCurrent`` numbers of the PackML state model
(ANSI/ISA-TR88.00.02-2015, the state model's 17 states numbered 1..17, 0 undefined). A twin state
is written as the PackML state a packaging line would be in, the state the twin's ``packml`` value
map (connectors/valuemaps.py) reads back as that twin state:

=============  ===============  =====================================================
twin state     PackML state     why
=============  ===============  =====================================================
PRODUCING      6 Execute        making product
SETUP          3 Starting       the machine is being brought to run (changeover)
DOWN           11 Held          stopped by a condition inside the machine (a fault)
STARVED        5 Suspended      stopped by a condition outside it (no parts upstream)
BLOCKED        5 Suspended      stopped by a condition outside it (no space downstream)
IDLE           4 Idle           ready, nothing ordered
PLANNED_STOP   2 Stopped        stopped on purpose (break, planned maintenance)
NO_SHIFT       2 Stopped        stopped on purpose (outside the shift)
=============  ===============  =====================================================

PackML has one Suspended for both directions and one Stopped for both planned cases, so a twin
reading this PLC through the ``packml`` value map sees STARVED for BLOCKED and PLANNED_STOP for
NO_SHIFT (each pair books into the same ISO 22400-2 time element class, so availability,
performance and OEE are unchanged). ``encoder`` checks the table above against the reading side's
``packml`` map, so the round trip stays exact wherever PackML can tell the states apart, should
either table change.

``twin``: the twin's own ``State`` codes (0 PRODUCING .. 8 UNKNOWN), for a test or a mapping that
wants every state distinct.

Either way the state variable is a MultiStateDiscreteType (OPC 10000-8 section 5.3.3.3) whose
``EnumStrings`` property names every code from 0 upward, so a generic OPC UA client shows the name.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.valuemaps import BUILTIN, PACKTAGS_NUMBERS
from factory_models import State

#: twin state -> the PackML code the simulated PLC writes (the table in the module docstring).
PACKML_WRITE: dict[State, int] = {
    State.PRODUCING: 6,
    State.SETUP: 3,
    State.DOWN: 11,
    State.STARVED: 5,
    State.BLOCKED: 5,
    State.IDLE: 4,
    State.PLANNED_STOP: 2,
    State.NO_SHIFT: 2,
    State.UNKNOWN: 0,
}

#: A PLC that has just started holds this state until the model writes one (PackML: Stopped).
INITIAL_STATE = State.PLANNED_STOP


class StateCodes:
    """One code table: ``code(state)`` to write, ``names`` for EnumStrings."""

    def __init__(self, name: str, names: tuple[str, ...], write: Mapping[State, int]):
        self.name, self.names, self._write = name, names, dict(write)

    def code(self, state: State | str) -> int:
        """The code written for a twin state (a State or its name in any case); ValueError otherwise."""
        if not isinstance(state, State):
            try:
                state = State[str(state).upper()]
            except KeyError:
                raise ValueError(
                    f"{state!r} is not a twin state; states are {', '.join(s.name for s in State)}"
                ) from None
        return self._write[state]


#: States whose time the KPIs treat alike: production, losses against availability, outside PBT.
_KIN = (
    {State.PRODUCING},
    {State.SETUP, State.DOWN, State.STARVED, State.BLOCKED, State.IDLE},
    {State.PLANNED_STOP, State.NO_SHIFT},
)


def _kin(state: State) -> set[State]:
    return next((k for k in _KIN if state in k), {state})


def encoder(reading: Mapping[int, State | str] | None = None) -> dict[State, int]:
    """PACKML_WRITE checked against the reading side's table (raw code -> twin state): a state
    is written as the code that table reads back as that state (PACKML_WRITE's when it does),
    else as a code read back as a state the KPIs treat alike (DOWN for SETUP, say), so what the
    twin reads is what the model did wherever the table can tell, and books the same time always."""
    if not reading:
        return dict(PACKML_WRITE)
    back: dict[int, State] = {}
    for code, state in reading.items():
        back[int(code)] = state if isinstance(state, State) else State[str(state).upper()]
    out: dict[State, int] = {}
    for st, preferred in PACKML_WRITE.items():
        exact = sorted(c for c, s in back.items() if s == st)
        alike = sorted(c for c, s in back.items() if s in _kin(st))
        if back.get(preferred) == st or (not exact and back.get(preferred) in _kin(st)):
            out[st] = preferred
        elif exact or alike:
            out[st] = (exact or alike)[0]
        else:
            out[st] = preferred  # the table reads nothing alike: the twin rejects it, visibly
    return out


def state_codes(name: str, reading: Mapping[int, State | str] | None = None) -> StateCodes:
    """The code table called ``name`` (``packml`` or ``twin``); ValueError naming them otherwise.
    ``reading``: the value map the twin reads the codes with (default: the built-in ``packml``)."""
    if name == "packml":
        table = BUILTIN["packml"] if reading is None else reading
        numbered = {k: v for k, v in table.items() if isinstance(k, int)}
        return StateCodes("packml", PACKTAGS_NUMBERS, encoder(numbered))
    if name == "twin":
        return StateCodes("twin", tuple(s.name for s in State), {s: int(s) for s in State})
    raise ValueError(f"unknown state code table {name!r}; the simulated PLC writes 'packml' or 'twin'")
