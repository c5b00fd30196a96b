"""The inventory a report shows: totals, coverage, per source, per gas, ISO 14064-1 categories, data
quality, instruments (claimed, remaining, refused), disclosures, the hours, the factor appendix,
the method statement and the SHA-256 digest of the inputs.

All report writers render the one dict ``inventory_of`` returns, so CSV, XLSX, JSON, PDF, PACT
and CBAM cannot disagree on a figure. Keys are kept stable; new ones are added.
"""

from __future__ import annotations

import numpy as np

from factory_models.records import iso_utc

from .allocation import Allocation
from .claims import Claim, claim, earliest_eligible, instrument_rows
from .config import CarbonConfig
from .ledger_view import PeriodData, digest, from_records
from .periods import local_text
from .registry import Registry
from .statement import disclosures, method_statement

ISO14064_CATEGORIES = (
    ("1", "Direct GHG emissions and removals"),
    ("2", "Indirect GHG emissions from imported energy"),
    ("3", "Indirect GHG emissions from transportation"),
    ("4", "Indirect GHG emissions from products used by the organization"),
    ("5", "Indirect GHG emissions associated with the use of products from the organization"),
    ("6", "Indirect GHG emissions from other sources"),
)


def _r(x: float) -> float:
    # nine decimals drop float noise (64392.00000000001) and keep periods additive far below 1e-6
    return round(float(x), 9)


def inputs_digest_of(pd: PeriodData, registry: Registry, allocation: Allocation | None,
                     config: CarbonConfig | None) -> str:
    """SHA-256 over the ledger aggregates the report is made from, the registry version and content,
    the allocation and the config: recompute it from the same store to check a report later."""
    return digest({"ledger": pd.digest_payload(), "registry_version": registry.version,
                   "registry_sha256": registry.digest(),
                   "allocation": allocation.to_json() if allocation else None,
                   "config": config.model_dump(mode="json") if config else None})


def inputs_digest(records, registry: Registry, allocation: Allocation | None = None,
                  config: CarbonConfig | None = None, tz: str | None = "UTC") -> str:
    """The inventory's ``inputs_sha256`` for records in memory (any order gives the same digest)."""
    live = [r for r in records if r.method != "market"]
    if not live:
        return inputs_digest_of(from_records([], 0.0, 0.0, tz), registry, allocation, config)
    pd = from_records(live, min(r.start for r in live), max(r.end for r in live), tz)
    return inputs_digest_of(pd, registry, allocation, config)


def grid_series(records) -> tuple[np.ndarray, np.ndarray]:
    """(hour start, grid import kWh) of records in memory, increasing: the claim's input."""
    by: dict[float, float] = {}
    for r in records:
        if r.scope == "2" and r.method == "location" and r.activity_unit == "kWh":
            by[r.start] = by.get(r.start, 0.0) + r.activity
    keys = sorted(by)
    return np.array(keys, dtype=np.float64), np.array([by[k] for k in keys], dtype=np.float64)


def claim_for(config: CarbonConfig | None, tz: str | None, start, kwh) -> Claim:
    c = config or CarbonConfig()
    return claim(list(c.instruments), c.site_country, tz, start, kwh)


def market_hourly(pd: PeriodData, cl: Claim, registry: Registry, config: CarbonConfig | None):
    """Scope 2 market-based kg CO2e per hour of the period, and the by-source rows behind it."""
    c = config or CarbonConfig()
    grid_kwh, grid_kg = pd.hourly["grid_kwh"], pd.hourly["grid_co2e_kg"]
    idx = np.searchsorted(pd.hours, cl.start, side="right") - 1  # the clock hour each claimed interval starts in
    inside = (cl.start >= pd.t0) & (cl.start < pd.t1) & (idx >= 0)
    pos = idx[inside]
    market = pd.hourly["heat_co2e_kg"].copy()
    covered = np.zeros(len(pd.hours))
    grid_names = "+".join(sorted({g["source"] for g in pd.by_source
                                  if g["scope"] == "2" and g["method"] == "location" and g["activity_unit"] == "kWh"}))
    rows = []
    for x in cl.accepted:
        cov = np.zeros(len(pd.hours))
        np.add.at(cov, pos, cl.covered[x.id][inside])
        f = registry.get(x.factor)
        kg = cov * f.value_in(f"kg {f.gas}/kWh")
        market += kg
        covered += cov
        if cov.sum() > 0:
            rows.append(_row(grid_names, "market", cov.sum(), kg.sum(), f"{f.id}#{x.id}", f.gas))
    uncovered = np.clip(grid_kwh - covered, 0.0, None)
    if c.residual_factor:
        res = registry.get(c.residual_factor)
        res_kg = uncovered * res.value_in(f"kg {res.gas}/kWh")
        res_id, res_gas = res.id, res.gas
    else:  # no residual mix: the location-based factor of each hour stands in (disclosed)
        res_kg = np.divide(grid_kg * uncovered, grid_kwh, out=np.zeros_like(grid_kwh), where=grid_kwh > 0)
        res_id, res_gas = c.grid_factor, "CO2e"
    market += res_kg
    if uncovered.sum() > 0:
        rows.append(_row(grid_names, "market", uncovered.sum(), res_kg.sum(), res_id, res_gas))
    for g in pd.by_source:  # heat has no instruments here: market-based equals location-based
        if g["scope"] == "2" and g["method"] == "location" and g["activity_unit"] != "kWh":
            rows.append({**_source_row(g), "method": "market"})
    return market, covered, rows


def _row(source, method, activity, kg, factor_id, gas) -> dict:
    # a CO2-only factor (China's grid and residual factors) gives CO2 mass, counted as CO2e
    return {"source": source, "scope": "2", "method": method, "activity": _r(activity), "activity_unit": "kWh",
            "co2e_kg": _r(kg), "co2_kg": _r(kg) if gas == "CO2" else 0.0, "ch4_kg": 0.0, "n2o_kg": 0.0,
            "factor_id": factor_id}


def _source_row(g: dict) -> dict:
    return {"source": g["source"], "scope": g["scope"], "method": g["method"], "activity": _r(g["activity"]),
            "activity_unit": g["activity_unit"], "co2e_kg": _r(g["co2e_kg"]), "co2_kg": _r(g["co2_kg"]),
            "ch4_kg": _r(g["ch4_kg"]), "n2o_kg": _r(g["n2o_kg"]), "factor_id": g["factor_id"]}


def hour_rows(pd: PeriodData, market: np.ndarray, covered: np.ndarray) -> list[dict]:
    """One row per clock hour of the period (built column-wise: a year has 8,760)."""
    h = pd.hourly
    starts = [s + "Z" for s in np.datetime_as_string((pd.hours * 1000).astype("datetime64[ms]"), unit="ms")]
    cols = {
        "start": starts,
        "scope1_co2e_kg": np.round(h["scope1_co2e_kg"], 9).tolist(),
        "scope2_location_co2e_kg": np.round(h["grid_co2e_kg"] + h["heat_co2e_kg"], 9).tolist(),
        "scope2_market_co2e_kg": np.round(market, 9).tolist(),
        "grid_import_kwh": np.round(h["grid_kwh"], 9).tolist(),
        "certificates_kwh": np.round(covered, 9).tolist(),
        "self_consumed_kwh": np.round(h["onsite_kwh"], 9).tolist(),
        "exported_kwh": np.round(h["export_kwh"], 9).tolist(),
        "data": pd.has_data.tolist(),
        "estimated": pd.estimated.tolist(),
    }
    keys = list(cols)
    return [dict(zip(keys, row)) for row in zip(*cols.values())]


def _time(t, tz):
    return None if t is None else {"utc": iso_utc(t), "local": local_text(t, tz)}


def coverage(pd: PeriodData) -> dict:
    meters = pd.meters()
    firsts = [m["first_reading"] for m in meters if m["first_reading"] is not None]
    lasts = [m["last_reading"] for m in meters if m["last_reading"] is not None]
    n, have = len(pd.hours), int(pd.has_data.sum())
    return {
        "hours_in_period": n, "hours_with_data": have, "hours_without_data": n - have,
        "estimated_hours": int(pd.estimated.sum()), "complete": have == n,
        "first_reading": _time(min(firsts), pd.tz) if firsts else None,
        "last_reading": _time(max(lasts), pd.tz) if lasts else None,
        "hours_written_more_than_once": pd.rewrites,
        "meters": [{**m, "first_reading": m["first_reading"] and iso_utc(m["first_reading"]),
                    "last_reading": m["last_reading"] and iso_utc(m["last_reading"])} for m in meters],
    }


def inventory_of(pd: PeriodData, cl: Claim, registry: Registry, allocation: Allocation | None = None,
                 config: CarbonConfig | None = None, notes: list[str] | None = None) -> dict:
    """The inventory as one JSON-ready dict (the JSON report is exactly this)."""
    c = config or CarbonConfig()
    market, covered, market_rows = market_hourly(pd, cl, registry, config)
    h = pd.hourly
    s1, s2l, s2m = _r(h["scope1_co2e_kg"].sum()), _r(h["grid_co2e_kg"].sum() + h["heat_co2e_kg"].sum()), _r(market.sum())
    gwp = registry.gwp(c.gwp_set if config else (pd.gwp_sets[0] if pd.gwp_sets else "ar5"))
    gas = {k: sum(g[f"{k.lower()}_kg"] for g in pd.by_source if g["scope"] == "1") for k in ("CO2", "CH4", "N2O")}
    by_gas = [{"scope": "1", "gas": k, "mass_kg": _r(m), "gwp": gwp.gwp(k), "co2e_kg": _r(m * gwp.gwp(k))}
              for k, m in gas.items() if any(g["scope"] == "1" for g in pd.by_source)]
    s2_co2 = sum(g["co2_kg"] for g in pd.by_source if g["scope"] == "2" and g["method"] == "location")
    by_gas.append({"scope": "2 (location)", "gas": "CO2", "mass_kg": _r(s2_co2), "gwp": 1.0, "co2e_kg": _r(s2_co2)})
    cov = coverage(pd)
    data_quality = []
    for m in cov["meters"]:
        a = m["activity"] or 0.0
        est = min(m["estimated_activity"] or 0.0, a) if a else 0.0
        data_quality.append({"source": m["source"], "activity_unit": m["activity_unit"], "activity": m["activity"],
                             "measured_share": (a - est) / a if a else None, "estimated_share": est / a if a else None,
                             "gap_filled_share": est / a if a else None, "gap_filled_records": m["estimated_hours"],
                             "estimated_hours": m["estimated_hours"]})
    gaps = sum(d["gap_filled_records"] for d in data_quality)
    instruments = [{**x, "unclaimed_kwh": x["remaining_kwh"], "eligible_from": iso_utc(x["eligible_from"]),
                    "eligible_to": iso_utc(x["eligible_to"])} for x in instrument_rows(cl, pd.t0, pd.t1, pd.tz)]
    factor_ids = {g["factor_id"] for g in pd.by_source} | {r["factor_id"] for r in market_rows}
    appendix, site_specific = [], []
    for fid in sorted({p.split("#")[0] for f in factor_ids for p in f.split("+") if p}):
        if fid.startswith("gwp-"):
            continue
        (appendix.append(registry.get(fid).appendix_row()) if fid in registry else site_specific.append(fid))
    onsite, export, grid = pd.total("onsite_kwh"), pd.total("export_kwh"), pd.total("grid_kwh")
    categories = [{"category": n, "name": name,
                   "location_co2e_kg": {"1": s1, "2": s2l}.get(n), "market_co2e_kg": {"1": s1, "2": s2m}.get(n),
                   "quantified": n in ("1", "2")} for n, name in ISO14064_CATEGORIES]
    hours = hour_rows(pd, market, covered)
    inv = {
        "report": "factory-twin carbon inventory",
        "site": pd.site,
        "origin": pd.origin,
        "period": {"start": iso_utc(pd.t0), "end": iso_utc(pd.t1), "timezone": pd.tz,
                   "start_local": local_text(pd.t0, pd.tz), "end_local": local_text(pd.t1, pd.tz)},
        "disclosures": [],  # filled below; first in the file, as on the first page of every format
        "inputs_sha256": inputs_digest_of(pd, registry, allocation, config),
        "registry_version": registry.version,
        "registry_sha256": registry.digest(),
        "totals": {
            "scope1_co2e_kg": s1, "scope2_location_co2e_kg": s2l, "scope2_market_co2e_kg": s2m,
            "total_location_co2e_kg": _r(s1 + s2l), "total_market_co2e_kg": _r(s1 + s2m),
            "onsite_renewable_kwh": _r(onsite), "grid_import_kwh": _r(grid), "self_consumed_kwh": _r(onsite),
            "exported_kwh": _r(export), "site_energy_kwh": _r(grid + onsite),
            "certificates_claimed_kwh": _r(covered.sum()),
        },
        "coverage": cov,
        "by_source": [_source_row(g) for g in pd.by_source] + market_rows,
        "by_gas": by_gas,
        "iso14064_categories": categories,
        "data_quality": data_quality,
        "gap_filled_records": gaps,
        "instruments": instruments,
        "instruments_refused": cl.refused,
        "gwp_set": {"id": gwp.id, "values": gwp.values, "document": gwp.source.document, "url": gwp.source.url},
        "factor_appendix": appendix,
        "site_specific_parameters": site_specific,
        "products": allocation.to_json() if allocation else None,
        "hours": hours,
        "n_records": pd.n_records,
        "notes": list(pd.notes) + list(notes or []),
    }
    inv["disclosures"] = disclosures(inv, c, registry)
    inv["method_statement"] = method_statement(c, registry, gaps)
    return inv


def build_inventory(records, registry: Registry, period: tuple[float, float], site: str,
                    allocation: Allocation | None = None, config: CarbonConfig | None = None,
                    tz: str | None = "UTC") -> dict:
    """The inventory of records in memory over ``period`` (claims over every grid hour given)."""
    live = [r for r in records if r.method != "market"]
    pd = from_records(live, period[0], period[1], tz)
    pd.site = pd.site or site
    start = earliest_eligible(list((config or CarbonConfig()).instruments), tz)
    g_t, g_kwh = grid_series(r for r in live if r.start < period[1] and (start is None or r.start >= min(start, period[0])))
    return inventory_of(pd, claim_for(config, tz, g_t, g_kwh), registry, allocation, config)
