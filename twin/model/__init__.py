"""The SimPy offline twin built from a ``Factory``: ``simulate`` for a batch run, ``FactorySim`` to step."""

from twin.model.calendar import ShiftCalendar
from twin.model.factory_sim import FactorySim, simulate

__all__ = ["FactorySim", "ShiftCalendar", "simulate"]
