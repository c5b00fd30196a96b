"""The ``emissions`` block of the run summaries (sums of the ledger records), and the hour's effective
grid intensity that station and window CO2e use."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np

from factory_models import EmissionsRecord
from factory_models.records import iso_utc

from .registry import Factor


def _r(x: float) -> float:
    # 12 significant digits: drops float noise (64392.00000000001) and keeps any figure, however
    # small, to 1e-12 of itself (a fixed number of decimals would lose the small ones)
    return float(f"{float(x):.12g}")


def emissions_summary(records: list[EmissionsRecord]) -> dict:
    """Totals by scope and method, and one ``by_source`` item per (source, scope, method, factor).

    Sums of the ledger records exactly as given (the store holds the same rows, so a report over
    the same hours gives the same figures). ``scope2_location_co2e_kg`` sums purchased energy only;
    on-site generation (``onsite``) and export (``export``) appear in ``by_source`` and in
    ``onsite_kwh``/``export_kwh`` with zero emissions. ``scope2_market_co2e_kg`` appears only for
    records of the pre-ledger kind that carried it: market-based figures are made by ``report``.
    """
    s1 = math.fsum(r.co2e_kg for r in records if r.scope == "1")
    s2l = math.fsum(r.co2e_kg for r in records if r.scope == "2" and r.method == "location")
    groups: dict[tuple, dict] = {}
    for r in records:
        key = (r.source, r.scope, r.method, r.factor_id, r.activity_unit)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"source": r.source, "scope": r.scope, "method": r.method, "activity": 0.0,
                               "activity_unit": r.activity_unit, "co2e_kg": 0.0, "co2_kg": 0.0,
                               "ch4_kg": 0.0, "n2o_kg": 0.0, "factor_id": r.factor_id,
                               "estimated_activity": 0.0, "hours": 0, "estimated_hours": 0,
                               "readings": 0, "resets": 0}
        g["activity"] += r.activity
        g["estimated_activity"] += r.estimated_activity
        g["hours"] += 1
        g["estimated_hours"] += r.data_quality != "measured"
        g["readings"] += r.readings
        g["resets"] += r.resets
        for k in ("co2e_kg", "co2_kg", "ch4_kg", "n2o_kg"):
            g[k] += getattr(r, k)
    by_source = []
    for g in groups.values():
        by_source.append({k: (_r(v) if isinstance(v, float) else v) for k, v in g.items()})
    starts = sorted({r.start for r in records})
    out = {
        "scope1_co2e_kg": _r(s1),
        "scope2_location_co2e_kg": _r(s2l),
        "onsite_kwh": _r(math.fsum(r.activity for r in records if r.method == "onsite")),
        "export_kwh": _r(math.fsum(r.activity for r in records if r.method == "export")),
        "hours": len(starts),
        "first_hour": iso_utc(starts[0]) if starts else None,
        "last_hour": iso_utc(starts[-1]) if starts else None,
        "origin": sorted({r.origin for r in records}),
        "by_source": by_source,
    }
    if any(r.method == "market" for r in records):
        out["scope2_market_co2e_kg"] = _r(math.fsum(r.co2e_kg for r in records if r.scope == "2" and r.method == "market"))
    return out


def hourly_totals(records: list[EmissionsRecord], edges: np.ndarray) -> dict[str, np.ndarray]:
    """Per hour of ``edges`` (records placed by their start): grid kWh and its location kg, self-consumed
    kWh, and the site's kg (Scope 1 + Scope 2 location)."""
    n = len(edges) - 1
    out = {k: np.zeros(n) for k in ("grid_kwh", "grid_kg", "onsite_kwh", "site_kg")}
    for r in records:
        i = int(np.searchsorted(edges, r.start, side="right")) - 1
        if not 0 <= i < n:
            continue
        if r.scope == "2" and r.method == "location" and r.activity_unit == "kWh":
            out["grid_kwh"][i] += r.activity
            out["grid_kg"][i] += r.co2e_kg
        elif r.method == "onsite":
            out["onsite_kwh"][i] += r.activity
        if r.scope == "1" or r.method == "location":
            out["site_kg"][i] += r.co2e_kg
    return out


def effective_intensity(records: list[EmissionsRecord], edges: np.ndarray, fallback: np.ndarray | None = None) -> np.ndarray:
    """kg CO2e per kWh the site consumed in each hour: location kg of the grid import / (grid import +
    self-consumed on-site generation). Hours with no electricity in the ledger take ``fallback``
    (the configured grid factor of that hour), else NaN."""
    h = hourly_totals(records, edges)
    kwh = h["grid_kwh"] + h["onsite_kwh"]
    out = np.divide(h["grid_kg"], kwh, out=np.full(len(kwh), np.nan), where=kwh > 0)
    if fallback is not None:
        out = np.where(kwh > 0, out, fallback)
    return out


def overlap(edges: np.ndarray, start: float, end: float) -> np.ndarray:
    """Fraction of each hour of ``edges`` that lies in [start, end)."""
    a = np.clip(edges[:-1], start, end)
    b = np.clip(edges[1:], start, end)
    return np.maximum(b - a, 0.0) / np.diff(edges)


def grid_intensity_kg_per_kwh(records: list[EmissionsRecord], method: str = "location") -> float | None:
    """Effective grid factor of the records (Scope 2 grid electricity CO2e / kWh); None without energy.

    With an hourly series this is the consumption-weighted factor of the period the records cover,
    the factor to apply to station sub-meters of that same period.
    """
    kwh = sum(r.activity for r in records if r.scope == "2" and r.method == method and r.activity_unit == "kWh")
    kg = sum(r.co2e_kg for r in records if r.scope == "2" and r.method == method and r.activity_unit == "kWh")
    return kg / kwh if kwh > 0 else None


def station_co2e(energy_kwh, factor: float | Factor):
    """CO2e (kg) of a station's sub-metered electricity: energy (kWh, scalar or array) x factor.

    ``factor`` is kg CO2e per kWh (e.g. from ``grid_intensity_kg_per_kwh``) or a registry Factor,
    converted by its unit. Station figures are Scope 2 electricity only; site fuels are shared loads.
    """
    if isinstance(factor, Factor):
        factor = factor.value_in(f"kg {factor.gas}/kWh")
    if factor is None:
        return None
    e = np.asarray(energy_kwh, dtype=np.float64)
    out = e * float(factor)
    return float(out) if out.ndim == 0 else out


def totals_by(records: list[EmissionsRecord], *keys: str) -> dict[tuple, float]:
    """CO2e (kg) summed by record attributes, e.g. ``totals_by(recs, "scope", "method")``."""
    out: dict[tuple, float] = defaultdict(float)
    for r in records:
        out[tuple(getattr(r, k) for k in keys)] += r.co2e_kg
    return dict(out)
