"""The inventory a report shows: totals, per source, per gas, ISO 14064-1 categories, data quality,
instruments, the factor appendix, the method statement and the SHA-256 digest of the inputs.

All report writers render the one dict ``build_inventory`` returns, so CSV, XLSX, JSON, PDF and
PACT cannot disagree on a figure.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict

from factory_models import EmissionsRecord
from factory_models.records import iso_utc

from .allocation import Allocation
from .config import CarbonConfig
from .registry import Registry
from .summary import emissions_summary

ISO14064_CATEGORIES = (
    ("1", "Direct GHG emissions and removals"),
    ("2", "Indirect GHG emissions from imported energy"),
    ("3", "Indirect GHG emissions from transportation"),
    ("4", "Indirect GHG emissions from products used by the organization"),
    ("5", "Indirect GHG emissions associated with the use of products from the organization"),
    ("6", "Indirect GHG emissions from other sources"),
)


def _canonical_record(r: EmissionsRecord) -> dict:
    return r.to_json()


def inputs_digest(
    records: list[EmissionsRecord],
    registry: Registry,
    allocation: Allocation | None = None,
    config: CarbonConfig | None = None,
) -> str:
    """SHA-256 over the records (order-independent), the registry version and content, the
    allocation and the config: recompute it from the same inputs to check a report later."""
    recs = sorted((_canonical_record(r) for r in records),
                  key=lambda d: (d["start"], d["end"], d["scope"], d["source"], d["method"], d["factor_id"], d["data_quality"]))
    payload = {
        "records": recs,
        "registry_version": registry.version,
        "registry_sha256": registry.digest(),
        "allocation": allocation.to_json() if allocation else None,
        "config": config.model_dump() if config else None,
    }
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def factor_ids_used(records: list[EmissionsRecord]) -> list[str]:
    """Registry ids behind the records' ``factor_id`` strings ('+' joins, '#' names an instrument)."""
    seen: dict[str, None] = {}
    for r in records:
        for part in r.factor_id.split("+"):
            if part:
                seen[part.split("#")[0]] = None
    return list(seen)


def method_statement(config: CarbonConfig | None, registry: Registry, gaps: int) -> str:
    c = config or CarbonConfig()
    grid = registry.get(c.grid_factor) if c.grid_factor in registry else None
    hourly = grid is not None and grid.kind == "grid_hourly"
    s1 = (
        "IPCC 2006 Guidelines Vol. 2 Ch. 2 Tier 1 (fuel x NCV x per-gas factor, NCV basis)"
        if c.scope1_method == "ipcc"
        else "China NDRC industry guidelines (fuel x NCV x carbon content x oxidation x 44/12, CO2 only)"
    )
    parts = [
        "Organisational inventory per the GHG Protocol Corporate Standard and ISO 14064-1:2018 "
        "(categories 1 and 2 quantified; 3 to 6 not covered by site meters).",
        f"Scope 1: stationary combustion from fuel meters by {s1}; per-gas masses first, then CO2e with "
        f"{c.gwp_set.upper()} GWP100 values.",
        "Scope 2, dual reported per the GHG Protocol Scope 2 Guidance: location-based with "
        + (f"the hourly grid intensity series {c.grid_factor}, time-aligned with the meter windows"
           if hourly else f"the annual grid factor {c.grid_factor}")
        + f"; market-based with retired contractual instruments of the same market and vintage "
          f"(claimed in time order), the remainder at the residual factor {c.residual_factor}. "
          f"China's grid factors are CO2 only, so their CO2e equals CO2.",
        "Self-consumed on-site PV is reported apart at zero emissions. Compressed air is made with "
        "electricity already in the grid import and is not counted again.",
        f"Missing meter readings are gap-filled from the mean rate of the neighbouring readings and "
        f"flagged; {gaps} gap-filled record(s) in this period.",
    ]
    return " ".join(parts)


def build_inventory(
    records: list[EmissionsRecord],
    registry: Registry,
    period: tuple[float, float],
    site: str,
    allocation: Allocation | None = None,
    config: CarbonConfig | None = None,
) -> dict:
    """The inventory as one JSON-ready dict (the JSON report is exactly this)."""
    summary = emissions_summary(records)
    gas_kg = defaultdict(float)
    for r in records:
        if r.scope == "1":
            gas_kg["CO2"] += r.co2_kg
            gas_kg["CH4"] += r.ch4_kg
            gas_kg["N2O"] += r.n2o_kg
    gwp_id = config.gwp_set if config else (records[0].gwp_set if records else "ar5") or "ar5"
    gwp = registry.gwp(gwp_id)
    by_gas = [{"scope": "1", "gas": g, "mass_kg": round(m, 6), "gwp": gwp.gwp(g), "co2e_kg": round(m * gwp.gwp(g), 6)}
              for g, m in gas_kg.items()]
    s2_co2 = sum(r.co2_kg for r in records if r.scope == "2" and r.method == "location")
    by_gas.append({"scope": "2 (location)", "gas": "CO2", "mass_kg": round(s2_co2, 6), "gwp": 1.0, "co2e_kg": round(s2_co2, 6)})

    # data quality per source: share of activity measured / estimated / gap-filled, one method per source
    dq: dict[str, dict] = {}
    for r in records:
        if r.method == "market":
            continue  # the same activity as the location-based record
        d = dq.setdefault(r.source, {"source": r.source, "activity_unit": r.activity_unit, "measured": 0.0,
                                     "estimated": 0.0, "gap_filled": 0.0, "gap_filled_records": 0})
        d[r.data_quality] += r.activity
        d["gap_filled_records"] += r.data_quality == "gap_filled"
    data_quality = []
    for d in dq.values():
        tot = d["measured"] + d["estimated"] + d["gap_filled"]
        data_quality.append({
            "source": d["source"], "activity_unit": d["activity_unit"], "activity": round(tot, 6),
            "measured_share": d["measured"] / tot if tot else None,
            "estimated_share": d["estimated"] / tot if tot else None,
            "gap_filled_share": d["gap_filled"] / tot if tot else None,
            "gap_filled_records": d["gap_filled_records"],
        })
    gaps = sum(d["gap_filled_records"] for d in data_quality)

    instruments = []
    if config:
        for x in config.instruments:
            claimed = sum(r.activity for r in records if r.method == "market" and r.factor_id.endswith(f"#{x.id}"))
            instruments.append({"id": x.id, "kind": x.kind, "volume_kwh": x.volume_kwh, "vintage": x.vintage,
                                "market": x.market, "retired": x.retired, "factor": x.factor,
                                "claimed_kwh": round(claimed, 6), "unclaimed_kwh": round(x.volume_kwh - claimed, 6)})

    appendix, site_specific = [], []
    for fid in factor_ids_used(records):
        if fid.startswith("gwp-"):
            continue
        if fid in registry:
            appendix.append(registry.get(fid).appendix_row())
        else:
            site_specific.append(fid)
    onsite_kwh = sum(r.activity for r in records if r.method == "onsite")
    s1, s2l, s2m = summary["scope1_co2e_kg"], summary["scope2_location_co2e_kg"], summary["scope2_market_co2e_kg"]
    categories = [{"category": n, "name": name,
                   "location_co2e_kg": {"1": s1, "2": s2l}.get(n), "market_co2e_kg": {"1": s1, "2": s2m}.get(n),
                   "quantified": n in ("1", "2")} for n, name in ISO14064_CATEGORIES]
    return {
        "report": "factory-twin carbon inventory",
        "site": site,
        "period": {"start": iso_utc(period[0]), "end": iso_utc(period[1])},
        "inputs_sha256": inputs_digest(records, registry, allocation, config),
        "registry_version": registry.version,
        "registry_sha256": registry.digest(),
        "totals": {
            "scope1_co2e_kg": s1,
            "scope2_location_co2e_kg": s2l,
            "scope2_market_co2e_kg": s2m,
            "total_location_co2e_kg": round(s1 + s2l, 6),
            "total_market_co2e_kg": round(s1 + s2m, 6),
            "onsite_renewable_kwh": round(onsite_kwh, 6),
        },
        "by_source": summary["by_source"],
        "by_gas": by_gas,
        "iso14064_categories": categories,
        "data_quality": data_quality,
        "gap_filled_records": gaps,
        "instruments": instruments,
        "gwp_set": {"id": gwp.id, "values": gwp.values, "document": gwp.source.document, "url": gwp.source.url},
        "factor_appendix": appendix,
        "site_specific_parameters": site_specific,
        "method_statement": method_statement(config, registry, gaps),
        "products": allocation.to_json() if allocation else None,
        "n_records": len(records),
    }
