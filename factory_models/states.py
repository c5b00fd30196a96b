"""Station states and the ISO 22400-2 time element each one books into.

A station is in exactly one state at any instant (docs/kpis.md). The integer codes are the
representation the event logs and the Numba KPI core use; keep them stable, they are stored.
"""

from __future__ import annotations

from enum import IntEnum


class State(IntEnum):
    PRODUCING = 0  # APT: actual production time
    SETUP = 1  # ASUT: actual setup time
    DOWN = 2  # ADET: actual unit delay time (failures, micro-stops)
    STARVED = 3  # ADOT: actual unit down time (available, no work)
    BLOCKED = 4  # ADOT (available, no space downstream)
    IDLE = 5  # ADOT (available, no order)
    PLANNED_STOP = 6  # planned downtime: inside POT, outside PBT
    NO_SHIFT = 7  # outside POT
    UNKNOWN = 8  # no data (before the first sample, connection gaps): never read as "unchanged"


N_STATES = len(State)

#: ISO 22400-2 time element of each state; UNKNOWN books into none of them.
TIME_ELEMENT: dict[State, str | None] = {
    State.PRODUCING: "apt",
    State.SETUP: "asut",
    State.DOWN: "adet",
    State.STARVED: "adot",
    State.BLOCKED: "adot",
    State.IDLE: "adot",
    State.PLANNED_STOP: "planned_downtime",
    State.NO_SHIFT: "outside_pot",
    State.UNKNOWN: None,
}


def parse_state(text: str) -> State:
    """A state from its name (case-insensitive) or its integer code; ValueError names the choices."""
    key = text.strip().upper()
    if key in State.__members__:
        return State[key]
    if key.isdigit() and int(key) < N_STATES:
        return State(int(key))
    raise ValueError(f"unknown state {text!r}; expected one of {', '.join(State.__members__)}")
