"""Energy-saving policies of a station or line: standby after idle time, and switch-off windows.

Kept beside the schema (which imports them) so ``schema.py`` stays one page of the shop floor.
The rules they set in the model are in docs/model-energy-policies.md.
"""

from __future__ import annotations

from datetime import time
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import NonNegative
from .base import Strict as _Strict

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
ALL_DAYS: list[Weekday] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


class Standby(_Strict):
    """After ``after_s`` of unbroken idle time (STARVED, BLOCKED or IDLE, on shift) the station drops to
    ``power_kw``; the next part first waits ``wake_s`` (booked as SETUP) before its setup or cycle.

    ``wake_kwh``: the energy of one wake-up, drawn evenly over ``wake_s``; when not given the station
    draws its ``setup`` power while it wakes.
    """

    after_s: NonNegative
    power_kw: NonNegative
    wake_s: NonNegative = 0.0
    wake_kwh: NonNegative | None = None

    @model_validator(mode="after")
    def _wake_energy_needs_time(self) -> "Standby":
        if self.wake_kwh is not None and self.wake_kwh > 0 and self.wake_s == 0:
            raise ValueError("wake_kwh > 0 needs wake_s > 0 (the wake-up energy is drawn over the wake-up time)")
        return self


class ShiftOff(_Strict):
    """A window of local time in which the station (or every station of the line) is switched off: it
    takes no work and shows NO_SHIFT at its ``no_shift`` power, shift or not. ``end`` earlier than
    ``start`` runs past midnight; ``start`` = ``end`` (the default 00:00-00:00) is the whole day.
    A window belongs to the day it starts on, as shifts do."""

    days: Annotated[list[Weekday], Field(min_length=1)] = ALL_DAYS
    start: time = time(0, 0)
    end: time = time(0, 0)
