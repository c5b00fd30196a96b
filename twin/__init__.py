"""The factory twin: SimPy model, live shadow, Numba KPI core, emissions, embedded store, runtime and CLI.

Floors (imports point down only): ``kpi`` (event log, windows, ISO 22400 computation) <- ``model``
(SimPy) and ``shadow`` (live twin, router, replay) <- ``emissions`` and ``store`` <- ``dashboard`` <-
``runtime`` and ``cli`` (the composition root).
"""
