"""The contents of the quarterly CBAM report per good, from the inventory (``report --format cbam``).

Commission Implementing Regulation (EU) 2023/1773, Annex I (Table 1, "CBAM goods' emissions", and
Table 2) asks per good and installation: the CN code, the installation (name, identifier, country,
address, UN/LOCODE, coordinates), the production route, the quantity produced (t), the specific
direct and specific indirect embedded emissions (t CO2e per t of good) and how each was determined
(actual data or default values), the electricity consumed (MWh per t) with the emission factor of
that electricity and its source. Regulation (EU) 2023/956, Annex IV: specific embedded emissions
are the attributed emissions divided by the quantity of good.

How factory-twin fills them:

- quantity: good units x the product's mass per unit (factory model ``products[].mass_kg``);
- direct: the product's allocated fuel and heat emissions / quantity (``actual``), or the
  configured default value with its source (``default``); ``simulated`` when the ledger's data is
  a model run, not the plant (such a report is not for filing);
- electricity: the product's allocated electricity / quantity. Self-consumed on-site generation
  is part of the consumption; only the grid import carries the grid factor, so the factor of the
  electricity consumed is grid CO2e / (grid import + self-consumed), and the indirect figure is
  MWh per t x that factor. Both parts and their sources are listed;
- products without a ``carbon.cbam.goods`` entry, mass or good units are listed as not reported,
  with the reason.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from ..exchange_config import CbamSettings
from .pact import primary_shares

REGULATION = ("Commission Implementing Regulation (EU) 2023/1773, Annex I (quarterly CBAM report of the "
              "transitional period); specific embedded emissions per Regulation (EU) 2023/956, Annex IV")


def _r(x: float, places: int = 6) -> float:
    return round(float(x), places)


def _factor_source(inv: dict, factor_ids: set[str]) -> list[dict]:
    rows = {f["id"]: f for f in inv.get("factor_appendix") or []}
    out = []
    for fid in sorted(factor_ids):
        f = rows.get(fid)
        out.append({"factor_id": fid, "document": f.get("document") if f else None, "url": f.get("url") if f else None,
                    "year": f.get("year") if f else None})
    return out


def _parts(fid: str) -> set[str]:
    return {p.split("#")[0] for p in fid.split("+") if p}


def site_electricity(inv: dict) -> dict:
    """Grid import, self-consumed generation and exports of the period (MWh), and the factors (t CO2e/MWh)."""
    rows = [s for s in inv.get("by_source") or [] if s["activity_unit"] == "kWh"]
    grid = [s for s in rows if s["scope"] == "2" and s["method"] == "location"]
    onsite = [s for s in rows if s["method"] == "onsite"]
    grid_kwh = sum(s["activity"] for s in grid)
    grid_kg = sum(s["co2e_kg"] for s in grid)
    t = inv.get("totals") or {}
    self_kwh = t.get("self_consumed_kwh", sum(s["activity"] for s in onsite))
    exported = t.get("exported_kwh", 0.0)
    consumed = grid_kwh + self_kwh
    return {
        "grid_import_mwh": _r(grid_kwh / 1000), "self_generated_consumed_mwh": _r(self_kwh / 1000),
        "exported_mwh": _r(exported / 1000), "consumed_mwh": _r(consumed / 1000),
        "grid_emission_factor_t_co2e_per_mwh": _r(grid_kg / grid_kwh) if grid_kwh > 0 else None,
        "grid_emission_factor_source": _factor_source(inv, set().union(*[_parts(s["factor_id"]) for s in grid])),
        "self_generated_emission_factor_t_co2e_per_mwh": 0.0,
        "self_generated_emission_factor_source": _factor_source(inv, set().union(*[_parts(s["factor_id"]) for s in onsite])),
        "emission_factor_t_co2e_per_mwh": _r(grid_kg / consumed) if consumed > 0 else None,
        "self_generated_share_pct": _r(100.0 * self_kwh / consumed, 3) if consumed > 0 else None,
        "_grid_kg": grid_kg, "_consumed_kwh": consumed,
    }


def reporting_quarter(inv: dict) -> str | None:
    """'2026-Q1' when the period is exactly one calendar quarter of the site's time zone, else None."""
    p = inv["period"]
    tz = ZoneInfo(p.get("timezone") or "UTC")
    a = datetime.fromisoformat(p["start"]).astimezone(tz)
    b = datetime.fromisoformat(p["end"]).astimezone(tz)
    if (a.month - 1) % 3 or a.day != 1 or a.time() != datetime.min.time():
        return None
    m = a.month + 3
    nxt = a.replace(year=a.year + (m > 12), month=(m - 1) % 12 + 1)
    return f"{a.year}-Q{(a.month - 1) // 3 + 1}" if b == nxt else None


def cbam_document(inv: dict, cbam: CbamSettings) -> dict:
    """The CBAM report contents of an inventory with product footprints (see the module docstring)."""
    products = inv.get("products")
    if not products:
        raise ValueError("the cbam format needs product footprints: the store has no product data for the period")
    origin = inv.get("origin", "measured")
    elec = site_electricity(inv)
    direct_primary, elec_primary = primary_shares(inv)
    ef = elec["emission_factor_t_co2e_per_mwh"]
    ef_exact = elec["_grid_kg"] / elec["_consumed_kwh"] if elec["_consumed_kwh"] > 0 else None  # kg/kWh = t/MWh
    goods, skipped, notes = [], [], []
    names = {p["product"] for p in products["products"]}
    for name in sorted(set(cbam.goods) - names):
        notes.append(f"cbam.goods names {name!r}, which is not a product of this report")
    alloc_kwh = 0.0
    for p in products["products"]:
        name, good = p["product"], cbam.goods.get(p["product"])
        alloc_kwh += p.get("electricity_kwh") or 0.0
        reason = ("no carbon.cbam.goods entry (not declared a CBAM good)" if good is None
                  else "no mass per unit (products[].mass_kg)" if not p.get("mass_kg_per_unit")
                  else "no good unit made in the period" if not p.get("good_units") else None)
        if reason:
            skipped.append({"product": name, "reason": reason})
            continue
        mass_t = p["good_units"] * p["mass_kg_per_unit"] / 1000.0
        e_mwh_t = (p.get("electricity_kwh") or 0.0) / 1000.0 / mass_t
        how = "actual" if origin == "measured" else "simulated"
        direct = {"specific_embedded_emissions_t_co2e_per_t": _r(p["direct_co2e_kg"] / 1000.0 / mass_t),
                  "determination": how,
                  "source": "allocated fuel and heat emissions of the installation's meters (ISO 14067 6.4.6)",
                  "estimated_share_pct": None if how == "simulated" else _r(100.0 * (1.0 - direct_primary), 3)}
        if good.direct_default_t_per_t is not None:
            direct = {"specific_embedded_emissions_t_co2e_per_t": _r(good.direct_default_t_per_t),
                      "determination": "default", "source": good.direct_default_source, "estimated_share_pct": None}
        indirect_see = e_mwh_t * ef_exact if ef_exact is not None else 0.0
        indirect = {"specific_embedded_emissions_t_co2e_per_t": _r(indirect_see),
                    "determination": how,
                    "electricity_consumed_mwh_per_t": _r(e_mwh_t),
                    "emission_factor_t_co2e_per_mwh": ef,
                    "emission_factor_source": ("grid import at the grid factor, self-consumed on-site generation at 0 "
                                               "(see electricity)"),
                    "estimated_share_pct": None if how == "simulated" else _r(100.0 * (1.0 - elec_primary), 3)}
        total = direct["specific_embedded_emissions_t_co2e_per_t"] + indirect["specific_embedded_emissions_t_co2e_per_t"]
        goods.append({
            "product": name, "cn_code": good.cn_code, "installation_id": cbam.installation.id,
            "production_route": good.production_route, "country_of_production": cbam.installation.country,
            "good_units": p["good_units"], "mass_kg_per_unit": p["mass_kg_per_unit"], "quantity_t": _r(mass_t),
            "direct": direct, "indirect": indirect,
            "total_specific_embedded_emissions_t_co2e_per_t": _r(total),
            "embedded_emissions_t_co2e": _r(total * mass_t),
        })
    consumed = elec.pop("_consumed_kwh")
    elec.pop("_grid_kg")
    if consumed > 0 and abs(alloc_kwh - consumed) > 0.005 * consumed:
        notes.append(f"the products' electricity ({alloc_kwh / 1000:.3f} MWh) differs from the site's consumption "
                     f"({consumed / 1000:.3f} MWh, grid import + self-consumed) by more than 0.5 %")
    quarter = reporting_quarter(inv)
    if quarter is None:
        notes.append("the period is not one calendar quarter of the site's time zone; a CBAM report is quarterly")
    cov = inv.get("coverage")
    if cov and not cov.get("complete", True):
        notes.append(f"partly covered period: {cov['hours_with_data']} of {cov['hours_in_period']} hours have data")
    if origin != "measured":
        notes.append("simulated data: a model run, not the plant; not for filing")
    if not goods:
        raise ValueError("no CBAM good to report: " + "; ".join(f"{s['product']}: {s['reason']}" for s in skipped))
    return {
        "report": "CBAM report contents per good", "regulation": REGULATION,
        "site": inv["site"], "origin": origin, "period": inv["period"], "reporting_period": quarter,
        "installation": cbam.installation.model_dump(mode="json"),
        "electricity": elec, "goods": goods, "not_reported": skipped, "notes": notes,
        "inputs_sha256": inv["inputs_sha256"],
    }


#: the flat table of the goods, one row per good (CSV, XLSX and PDF render it under "CBAM")
TABLE_HEADER = ["product", "cn_code", "installation_id", "production_route", "quantity_t",
                "direct_see_t_co2e_per_t", "direct_determination", "indirect_see_t_co2e_per_t",
                "indirect_determination", "electricity_mwh_per_t", "electricity_factor_t_co2e_per_mwh",
                "self_generated_share_pct"]


def table_rows(doc: dict) -> list[list]:
    share = doc["electricity"]["self_generated_share_pct"]
    return [[g["product"], g["cn_code"], g["installation_id"], g["production_route"], g["quantity_t"],
             g["direct"]["specific_embedded_emissions_t_co2e_per_t"], g["direct"]["determination"],
             g["indirect"]["specific_embedded_emissions_t_co2e_per_t"], g["indirect"]["determination"],
             g["indirect"]["electricity_consumed_mwh_per_t"], g["indirect"]["emission_factor_t_co2e_per_mwh"], share]
            for g in doc["goods"]]


def attach_cbam(inv: dict, cbam: CbamSettings, strict: bool = True) -> dict | None:
    """Put the CBAM contents in ``inv["cbam"]`` (the other formats show them) and their notes in
    ``inv["notes"]``; without a good to report: raise when ``strict``, else a note."""
    try:
        doc = cbam_document(inv, cbam)
    except ValueError as exc:
        if strict:
            raise
        inv.setdefault("notes", []).append(f"cbam: {exc}")
        return None
    inv["cbam"] = doc
    inv.setdefault("notes", []).extend(f"cbam: {n}" for n in doc["notes"])
    return doc


def write_cbam(inv: dict, out_path: Path, cbam: CbamSettings | None) -> dict:
    if cbam is None:
        from factory_models import ConfigError

        raise ConfigError("carbon config", [("carbon.cbam: the cbam format needs the installation and the CN code "
                                             "of each good (see docs/carbon.md, EU CBAM)")])
    doc = inv.get("cbam") or attach_cbam(inv, cbam)
    out_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc
