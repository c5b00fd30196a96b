"""The ``emissions`` block of the ``simulate`` and ``replay`` JSON, and small helpers for the twin."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from factory_models import EmissionsRecord

from .registry import Factor


def _r(x: float) -> float:
    # milligram resolution: drops float noise (64392.00000000001) without touching reported digits
    return round(float(x), 6)


def emissions_summary(records: list[EmissionsRecord]) -> dict:
    """Totals by scope and method, and one ``by_source`` item per (source, scope, method, factor).

    ``scope2_*`` sums purchased energy only; on-site generation (method ``onsite``) appears in
    ``by_source`` with its activity and zero emissions, apart from both Scope 2 totals.
    """
    s1 = sum(r.co2e_kg for r in records if r.scope == "1")
    s2l = sum(r.co2e_kg for r in records if r.scope == "2" and r.method == "location")
    s2m = sum(r.co2e_kg for r in records if r.scope == "2" and r.method == "market")
    groups: dict[tuple, dict] = {}
    for r in records:
        key = (r.source, r.scope, r.method, r.factor_id, r.activity_unit)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"source": r.source, "scope": r.scope, "method": r.method, "activity": 0.0,
                               "activity_unit": r.activity_unit, "co2e_kg": 0.0, "co2_kg": 0.0,
                               "ch4_kg": 0.0, "n2o_kg": 0.0, "factor_id": r.factor_id}
        g["activity"] += r.activity
        for k in ("co2e_kg", "co2_kg", "ch4_kg", "n2o_kg"):
            g[k] += getattr(r, k)
    by_source = []
    for g in groups.values():
        by_source.append({k: (_r(v) if isinstance(v, float) else v) for k, v in g.items()})
    return {
        "scope1_co2e_kg": _r(s1),
        "scope2_location_co2e_kg": _r(s2l),
        "scope2_market_co2e_kg": _r(s2m),
        "by_source": by_source,
    }


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
