"""From meter activity to emissions records: Scope 1 from fuel meters, Scope 2 location and market
from grid and heat meters, on-site PV at zero, per window and per data quality.

Every record names the factor ids and registry versions it used; intervals that were gap-filled
come out as records of their own with ``data_quality="gap_filled"``, so gaps are counted wherever
records go (store, reports), never folded silently into measured figures.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from factory_models import EmissionsRecord

from .config import CarbonConfig
from .grid_series import StepSeries
from .meters import QUALITY_NAMES, Intervals, MeterSeries, bin_by_quality, intervals
from .registry import Factor, Registry
from .scope1 import fuel_emissions
from .scope2 import InstrumentLedger, location_co2_kg, market_co2_kg

FUEL_KINDS = ("natural_gas", "diesel", "lpg", "coal")
#: records come out Scope 1 first, then grid, heat, on-site generation
_ORDER = FUEL_KINDS + ("grid_import", "heat", "pv", "compressed_air")
_SERIES_CACHE: dict[tuple[str, float, str], StepSeries] = {}


def window_edges(t0: float, t1: float, windows=None) -> np.ndarray:
    """Window edges over ``[t0, t1)``: one window (None), fixed steps (seconds), or given edges."""
    if windows is None:
        return np.array([t0, t1], dtype=np.float64)
    if np.isscalar(windows):
        step = float(windows)
        if step <= 0:
            raise ValueError(f"window length must be > 0 s, got {step}")
        edges = np.arange(t0, t1, step, dtype=np.float64)
        return np.append(edges, t1)
    edges = np.asarray(windows, dtype=np.float64)
    if len(edges) < 2 or np.any(np.diff(edges) <= 0) or edges[0] < t0 or edges[-1] > t1:
        raise ValueError("window edges must be increasing, at least two, and inside [t0, t1]")
    return edges


def grid_factor_per_interval(factor: Factor, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """kg per kWh for each interval: the annual value, or the hourly series averaged over it."""
    if factor.kind == "grid_hourly":
        path = Path(factor.series_file)
        key = (str(path), path.stat().st_mtime, factor.unit)
        if key not in _SERIES_CACHE:
            _SERIES_CACHE[key] = StepSeries.from_csv(path, factor.id, factor.unit)
        return _SERIES_CACHE[key].mean_over(start, end)
    return np.full(len(start), factor.value_in(f"kg {factor.gas}/kWh"))


def _gas_split(factor: Factor, mass_kg: np.ndarray) -> dict[str, np.ndarray]:
    """A single-gas factor's mass as record fields: CO2 counts as CO2e (GWP 1)."""
    z = np.zeros_like(mass_kg)
    if factor.gas == "CO2":
        return {"co2e_kg": mass_kg, "co2_kg": mass_kg, "ch4_kg": z, "n2o_kg": z}
    return {"co2e_kg": mass_kg, "co2_kg": z, "ch4_kg": z, "n2o_kg": z}


class _Emitter:
    """Bins per-interval figures into windows and makes records, one per window and data quality."""

    def __init__(self, site: str, iv: Intervals, edges: np.ndarray, gwp_set: str):
        self.site, self.iv, self.edges, self.gwp_set = site, iv, edges, gwp_set
        self.out: list[EmissionsRecord] = []

    def emit(self, scope, method, activity, figures: dict[str, np.ndarray], factor_id, factor_version, only_nonzero=False):
        act, dur = bin_by_quality(self.iv, activity, self.edges)
        binned = {k: bin_by_quality(self.iv, v, self.edges)[0] for k, v in figures.items()}
        for w in range(len(self.edges) - 1):
            for q in range(3):
                if dur[w, q] <= 0 or (only_nonzero and act[w, q] <= 0):
                    continue
                self.out.append(EmissionsRecord(
                    site=self.site, scope=scope, source=self.iv.meter, method=method,
                    start=float(self.edges[w]), end=float(self.edges[w + 1]),
                    activity=float(act[w, q]), activity_unit=self.iv.unit,
                    co2e_kg=float(binned["co2e_kg"][w, q]), co2_kg=float(binned["co2_kg"][w, q]),
                    ch4_kg=float(binned["ch4_kg"][w, q]), n2o_kg=float(binned["n2o_kg"][w, q]),
                    factor_id=factor_id, factor_version=factor_version, gwp_set=self.gwp_set,
                    data_quality=QUALITY_NAMES[q],
                ))


def account(
    meter_series: list[MeterSeries],
    config: CarbonConfig,
    registry: Registry,
    t0: float,
    t1: float,
    windows=None,
    site: str = "site",
    ledger: InstrumentLedger | None = None,
) -> list[EmissionsRecord]:
    """Emissions records of ``site`` over ``[t0, t1)`` from per-meter activity.

    ``windows``: None (one window), a window length in seconds, or window edges. ``ledger`` carries
    the unclaimed instrument volumes across calls of one reporting period; without one, the
    instruments of ``config`` are claimed afresh over ``[t0, t1)``. Compressed-air meters are
    accepted and produce no records: their electricity is inside the grid import.
    """
    config.check(registry)
    edges = window_edges(t0, t1, windows)
    gwp = registry.gwp(config.gwp_set)
    if ledger is None:
        ledger = InstrumentLedger(config.instruments, t0, t1)
    names = [s.meter for s in meter_series]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"meter names must be unique; repeated: {dup}")
    records: list[EmissionsRecord] = []
    for series in sorted(meter_series, key=lambda s: (_ORDER.index(s.kind) if s.kind in _ORDER else -1, s.meter)):
        iv = intervals(series, t0, t1)
        em = _Emitter(site, iv, edges, config.gwp_set)
        kind = series.kind
        if kind in FUEL_KINDS:
            r = fuel_emissions(iv.activity, iv.unit, kind, config.scope1_method, registry, gwp, series.ncv_mj_per_nm3)
            figs = {"co2e_kg": r.co2e_kg, "co2_kg": r.co2_kg, "ch4_kg": r.ch4_kg, "n2o_kg": r.n2o_kg}
            em.emit("1", "direct", iv.activity, figs, r.factor_id + f"+gwp-{gwp.id}", r.factor_version)
        elif kind == "grid_import":
            grid = registry.get(config.grid_factor)
            ef = grid_factor_per_interval(grid, iv.start, iv.end)
            em.emit("2", "location", iv.activity, _gas_split(grid, location_co2_kg(iv.activity, ef)), grid.id, grid.version)
            covered = ledger.claim(iv.start, iv.activity)
            total_cov = np.sum(list(covered.values()), axis=0) if covered else np.zeros_like(iv.activity)
            residual = registry.get(config.residual_factor)
            res_kg = market_co2_kg(iv.activity - total_cov, 0.0, 0.0, residual.value_in(f"kg {residual.gas}/kWh"))
            em.emit("2", "market", iv.activity - total_cov, _gas_split(residual, res_kg), residual.id, residual.version)
            for x in config.instruments:
                f = registry.get(x.factor)
                kg = market_co2_kg(covered[x.id], covered[x.id], f.value_in(f"kg {f.gas}/kWh"), 0.0)
                em.emit("2", "market", covered[x.id], _gas_split(f, kg), f"{f.id}#{x.id}", f.version, only_nonzero=True)
        elif kind == "heat":
            heat = registry.get(config.heat_factor)
            kg = iv.activity * heat.value_in(f"kg {heat.gas}/GJ")
            for method in ("location", "market"):
                em.emit("2", method, iv.activity, _gas_split(heat, kg), heat.id, heat.version)
        elif kind == "pv":
            pv = registry.get(config.onsite_factor)
            em.emit("2", "onsite", iv.activity, _gas_split(pv, iv.activity * pv.value_in(f"kg {pv.gas}/kWh")), pv.id, pv.version)
        # compressed_air: no emissions of its own (see the docstring)
        records.extend(em.out)
    return records
