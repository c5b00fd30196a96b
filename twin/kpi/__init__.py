"""The KPI core: Numba kernels over the columnar event log, and ISO 22400-2 KPIs built on them.

``compute_kpis`` is the entry point; ``kernels`` are the per-stream passes it runs, ``reference``
the same definitions in plain Python (for tests and the benchmark's baseline).
"""

from twin.kpi.compute import KpiReport, compute_kpis, counter_modulus_array

__all__ = ["KpiReport", "compute_kpis", "counter_modulus_array", "warm_up"]


def warm_up(background: bool = True, child: bool = False):
    """Compile (or load from the cache) the kernels in the background: see ``twin.kpi.warmup``.

    Imported on call, so that ``python -m twin.kpi.warmup`` runs a module the package has not loaded.
    """
    from twin.kpi import warmup

    return warmup.warm_up(background, child)
