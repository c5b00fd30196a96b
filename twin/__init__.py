"""The factory twin: SimPy model, live shadow, Numba KPI core, embedded store, runtime and CLI."""
