"""``values:``: the state codes a machine publishes, turned into the twin's states.

PLCs publish their own numbering (PackML numbers, OPC UA state numbers, vendor codes), never the
twin's. A value map says what each raw value means: either the name of a built-in table below or
an inline map from raw value to twin state, e.g. ``{6: PRODUCING, 11: DOWN, 5: STARVED}``. A raw
value the map does not hold is rejected (``unmapped_value``) and the station becomes UNKNOWN until a
mapped value arrives (connectors/transform.py): an unknown code is never read as the previous
state, nor as the twin's own state of the same number.

Keys are matched by meaning, not by spelling: an integer, an integral float (``6.0``) and decimal
text (``"6"``) are the same key; text is matched without case, spaces, ``-`` or ``_`` (``"Un-holding"``
is ``unholding``); a boolean is ``true``/``false``. The built-in tables take the state names of
their standard as well as its numbers. YAML reads an unquoted ``on``, ``off``, ``yes`` or ``no``
key as a boolean: quote such words (``"off": PLANNED_STOP``) when the device sends them as text.

Built-in tables, and why each state books where it does (ISO 22400 time elements: docs/kpis.md):

``packml``: ISA-TR88.00.02 (PackML, 2015 and 2022 editions), the PackTags ``Status.StateCurrent``
numbers, 0 Undefined .. 17 Complete. OPC 30050 (OPC UA for PackML v1.01, section 6.3) gives its
StateTypes the same numbers (Idle 4, Suspended 5), so a PackML state machine's state number reads
with this table too.

``packml-opcua``: the ``StateEnumeration`` DataType of OPC 30060 (OPC UA for Tobacco Machinery,
v2.00 section 11.9, Table 203; v1.00 section 6.2.3.3, Table 10), 0 Stopped .. 16 Unholding: the
same seventeen PackML states, numbered differently (Execute 4, Held 15). Check which numbering a
PLC uses before choosing: code 6 is Execute in one and Complete in the other.

``machinery``: OPC 40001-1 (OPC UA for Machinery, Basic Building Blocks, section 12
MachineryItemState), the StateNumber of each state of MachineryItemState_StateMachineType: 0
NotAvailable, 1 OutOfService, 2 NotExecuting, 3 Executing (the numbers OPC 40082-5 section 11.2
lists for it). ``CurrentState`` is a LocalizedText in the server's language: map its ``Number``
(or ``Id``) property, not its text.

=============== ============= ============================================================
standard state   twin state    why
=============== ============= ============================================================
Execute          PRODUCING     the machine processes material: APT, the only value-adding time
Completing       PRODUCING     the order runs out; parts still leave the machine
Starting         SETUP         getting ready to run after a Start command (ASUT)
Resetting        SETUP         getting ready for the next run after Complete or Stopped (ASUT)
Idle             IDLE          ready, waiting for a Start: available, no order (ADOT)
Complete         IDLE          the order is done, waiting for a Reset (ADOT)
Holding, Held,   DOWN          a stop inside the machine (its own fault, or an operator holding
Unholding                      it to clear a jam): unit delay time, ADET
Aborting,        DOWN          an abort is an emergency or fault stop; Clearing removes the fault
Aborted,                       before the machine can run again (ADET)
Clearing
Suspending,      STARVED       waiting on a condition outside the machine (no material, no room
Suspended,                     downstream): ADOT. PackML does not say which of the two; STARVED
Unsuspending                   and BLOCKED book into the same time element, so the KPIs agree
Stopping,        PLANNED_STOP  a Stop command is a decision, not a failure (a fault stop goes
Stopped                        through Aborting); planned downtime
Undefined (0)    UNKNOWN       the PLC itself does not know: no time element
NotAvailable     PLANNED_STOP  switched off or in an energy-saving mode on purpose
OutOfService     DOWN          not functional (a fault, a blocked axis): ADET
NotExecuting     IDLE          functional, ready, doing nothing (ADOT)
Executing        PRODUCING     functional and performing its task (APT)
=============== ============= ============================================================

A plant whose Stopped means "broken", or whose Suspended means "blocked", writes an inline map.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from typing import Annotated

from pydantic import AfterValidator

from factory_models import State

#: the twin state of each PackML state (ISA-TR88.00.02), shared by both numberings
_PACKML_STATE = {
    "Undefined": State.UNKNOWN, "Clearing": State.DOWN, "Stopped": State.PLANNED_STOP,
    "Starting": State.SETUP, "Idle": State.IDLE, "Suspended": State.STARVED, "Execute": State.PRODUCING,
    "Stopping": State.PLANNED_STOP, "Aborting": State.DOWN, "Aborted": State.DOWN, "Holding": State.DOWN,
    "Held": State.DOWN, "Unholding": State.DOWN, "Suspending": State.STARVED, "Unsuspending": State.STARVED,
    "Resetting": State.SETUP, "Completing": State.PRODUCING, "Complete": State.IDLE,
}

#: PackTags StateCurrent numbering, ISA-TR88.00.02
PACKTAGS_NUMBERS = ("Undefined", "Clearing", "Stopped", "Starting", "Idle", "Suspended", "Execute", "Stopping",
                    "Aborting", "Aborted", "Holding", "Held", "Unholding", "Suspending", "Unsuspending",
                    "Resetting", "Completing", "Complete")
#: StateEnumeration numbering, OPC 30060 section 11.9 Table 203
OPCUA_STATE_ENUMERATION = ("Stopped", "Resetting", "Idle", "Starting", "Execute", "Completing", "Complete",
                           "Aborting", "Aborted", "Stopping", "Clearing", "Suspending", "Suspended",
                           "Unsuspending", "Holding", "Held", "Unholding")
#: MachineryItemState StateNumbers, OPC 40001-1 section 12
MACHINERY_NUMBERS = ("NotAvailable", "OutOfService", "NotExecuting", "Executing")
_MACHINERY_STATE = {"NotAvailable": State.PLANNED_STOP, "OutOfService": State.DOWN,
                    "NotExecuting": State.IDLE, "Executing": State.PRODUCING}

#: where each built-in table comes from (also shown by ``describe_table``)
TABLE_SOURCES = {
    "packml": "ISA-TR88.00.02 PackTags Status.StateCurrent (OPC 30050 StateType numbers agree)",
    "packml-opcua": "OPC 30060 v2.00 section 11.9 Table 203, StateEnumeration",
    "machinery": "OPC 40001-1 section 12, MachineryItemState StateNumber",
}


def _fold(text: str) -> str:
    return text.strip().casefold().replace(" ", "").replace("-", "").replace("_", "")


def raw_key(raw: object) -> int | str | None:
    """The key a raw value is looked up by: an int for integral numbers and decimal text, folded
    text otherwise, ``"true"``/``"false"`` for a boolean; None when nothing can match (1.5, a list)."""
    kind = type(raw)
    if kind is int:
        return raw
    if kind is bool:
        return "true" if raw else "false"
    if kind is str:
        text = raw.strip()
        digits = text[1:] if text[:1] in "+-" else text
        if digits.isdigit():
            return int(text)
        return _fold(text)
    if isinstance(raw, float):
        return int(raw) if raw.is_integer() else None
    try:
        return operator.index(raw)  # numpy integers, IntEnum members
    except TypeError:
        return None


def _table(numbers: tuple[str, ...], states: dict[str, State]) -> dict[int | str, str]:
    out: dict[int | str, str] = {}
    for code, name in enumerate(numbers):
        out[code] = out[_fold(name)] = states[name].name
    return out


BUILTIN: dict[str, dict[int | str, str]] = {
    "packml": _table(PACKTAGS_NUMBERS, _PACKML_STATE),
    "packml-opcua": _table(OPCUA_STATE_ENUMERATION, _PACKML_STATE),
    "machinery": _table(MACHINERY_NUMBERS, _MACHINERY_STATE),
}


def _twin_state(raw_key_: object, state: object) -> str:
    """The State name ``state`` names (any case); ValueError naming the raw value and the choices."""
    if isinstance(state, str) and state.strip().upper() in State.__members__:
        return state.strip().upper()
    raise ValueError(f"raw value {raw_key_!r} maps to {state!r}, which is not a twin state; "
                     f"the states are {', '.join(State.__members__)}")


class ValueMap:
    """Raw value -> State name. ``lookup`` returns None for a value the map does not hold."""

    __slots__ = ("name", "_table")

    def __init__(self, name: str, table: dict[int | str, str]):
        self.name = name
        self._table = table

    def lookup(self, raw: object) -> str | None:
        key = raw_key(raw)
        return None if key is None else self._table.get(key)

    def __len__(self) -> int:
        return len(self._table)

    def __repr__(self) -> str:
        return f"ValueMap({self.name!r}, {len(self._table)} keys)"


def value_map(spec: str | Mapping) -> ValueMap:
    """The ValueMap of a ``values:`` setting: a built-in table's name or an inline map. ValueError
    (one line, naming the table or the entry at fault) for an unknown table or twin state, or two
    keys that mean the same raw value."""
    if isinstance(spec, str):
        table = BUILTIN.get(spec.strip().lower())
        if table is None:
            raise ValueError(f"unknown value table {spec!r}; the built-in tables are {', '.join(BUILTIN)} "
                             "(or give an inline map such as {6: PRODUCING, 11: DOWN})")
        return ValueMap(spec.strip().lower(), table)
    if not isinstance(spec, Mapping) or not spec:
        raise ValueError("values: expected a built-in table name or a map from raw value to twin state")
    table: dict[int | str, str] = {}
    for raw, state in spec.items():
        key = raw_key(raw)
        if key is None:
            raise ValueError(f"raw value {raw!r} cannot be a key: use an integer, text or true/false")
        if key in table:
            raise ValueError(f"raw value {raw!r} is given twice (keys are matched as {key!r})")
        table[key] = _twin_state(raw, state)
    return ValueMap("inline", table)


def _checked(spec):
    value_map(spec)  # raises ValueError, which pydantic reports with the field's location
    return spec


#: The type of a ``values:`` field: checked when the mapping is loaded.
ValuesSpec = Annotated[str | dict[bool | int | str, str], AfterValidator(_checked)]


def describe_table(name: str) -> list[tuple[int, str, str]]:
    """(number, standard state, twin state) of a built-in table, in number order (docs, browse)."""
    numbers = {"packml": PACKTAGS_NUMBERS, "packml-opcua": OPCUA_STATE_ENUMERATION,
               "machinery": MACHINERY_NUMBERS}[name]
    return [(code, state, BUILTIN[name][code]) for code, state in enumerate(numbers)]
