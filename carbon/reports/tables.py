"""The inventory as named tables (title, header, rows): one layout shared by the CSV, XLSX and PDF writers.

The first table (``Report``) carries the coverage and the disclosures, so a partly covered period
says so on the first page or sheet of every format.
"""

from __future__ import annotations


def _pct(x):
    return None if x is None else round(100.0 * x, 3)


def report_table(inv: dict) -> list[list]:
    cov = inv.get("coverage") or {}
    rows = [
        ["site", inv["site"]],
        ["origin", inv.get("origin")],
        ["period_start", inv["period"]["start"]],
        ["period_end", inv["period"]["end"]],
        ["period_local", f"{inv['period'].get('start_local')} to {inv['period'].get('end_local')}"],
        ["coverage", ("complete" if cov.get("complete") else "PARTIAL") if cov else None],
        ["hours_in_period", cov.get("hours_in_period")],
        ["hours_with_data", cov.get("hours_with_data")],
        ["estimated_hours", cov.get("estimated_hours")],
        ["first_reading", (cov.get("first_reading") or {}).get("utc")],
        ["last_reading", (cov.get("last_reading") or {}).get("utc")],
        ["hours_written_more_than_once", cov.get("hours_written_more_than_once")],
    ]
    rows += [["disclosure", d] for d in inv.get("disclosures", [])]
    rows += [["note", n] for n in inv.get("notes", [])]
    rows += [
        ["inputs_sha256", inv["inputs_sha256"]],
        ["registry_version", inv["registry_version"]],
        ["registry_sha256", inv["registry_sha256"]],
        ["gwp_set", inv["gwp_set"]["id"]],
        ["gap_filled_records", inv["gap_filled_records"]],
    ]
    return rows


def totals_table(inv: dict) -> list[list]:
    t = inv["totals"]
    rows = [
        ["Scope 1", t["scope1_co2e_kg"], t["scope1_co2e_kg"], "kg CO2e"],
        ["Scope 2", t["scope2_location_co2e_kg"], t["scope2_market_co2e_kg"], "kg CO2e"],
        ["Scope 1 + 2", t["total_location_co2e_kg"], t["total_market_co2e_kg"], "kg CO2e"],
        ["On-site renewable generation (self-consumed, 0 kg)", t["onsite_renewable_kwh"], t["onsite_renewable_kwh"], "kWh"],
    ]
    if "site_energy_kwh" in t:
        rows += [["Grid import", t["grid_import_kwh"], t["grid_import_kwh"], "kWh"],
                 ["Exported generation", t["exported_kwh"], t["exported_kwh"], "kWh"],
                 ["Site energy (grid import + self-consumed)", t["site_energy_kwh"], t["site_energy_kwh"], "kWh"],
                 ["Grid import covered by instruments", None, t["certificates_claimed_kwh"], "kWh"]]
    return rows


def tables(inv: dict, hours: bool = True) -> list[tuple[str, list[str], list[list]]]:
    out = [
        ("Report", ["key", "value"], report_table(inv)),
        ("Totals", ["figure", "location_based", "market_based", "unit"], totals_table(inv)),
    ]
    cov = inv.get("coverage")
    if cov:
        out.append(("Meters", ["source", "activity_unit", "hours", "estimated_hours", "readings", "resets",
                               "first_reading", "last_reading", "activity", "estimated_activity"],
                    [[m[k] for k in ("source", "activity_unit", "hours", "estimated_hours", "readings", "resets",
                                     "first_reading", "last_reading", "activity", "estimated_activity")]
                     for m in cov["meters"]]))
    out += [
        ("By source", ["source", "scope", "method", "activity", "activity_unit", "co2e_kg", "co2_kg", "ch4_kg", "n2o_kg", "factor_id"],
         [[s["source"], s["scope"], s["method"], s["activity"], s["activity_unit"], s["co2e_kg"], s["co2_kg"],
           s["ch4_kg"], s["n2o_kg"], s["factor_id"]] for s in inv["by_source"]]),
        ("By gas", ["scope", "gas", "mass_kg", "gwp", "co2e_kg"],
         [[g["scope"], g["gas"], g["mass_kg"], g["gwp"], g["co2e_kg"]] for g in inv["by_gas"]]),
        ("ISO 14064-1 categories", ["category", "name", "location_co2e_kg", "market_co2e_kg", "quantified"],
         [[c["category"], c["name"], c["location_co2e_kg"], c["market_co2e_kg"], c["quantified"]] for c in inv["iso14064_categories"]]),
        ("Data quality", ["source", "activity", "activity_unit", "measured_pct", "estimated_pct", "estimated_hours"],
         [[d["source"], d["activity"], d["activity_unit"], _pct(d["measured_share"]), _pct(d["estimated_share"]),
           d["gap_filled_records"]] for d in inv["data_quality"]]),
    ]
    if inv["instruments"]:
        out.append(("Instruments", ["id", "kind", "volume_kwh", "vintage", "market", "claimed_before_kwh", "claimed_kwh",
                                    "remaining_kwh"],
                    [[x["id"], x["kind"], x["volume_kwh"], x["vintage"], x["market"], x.get("claimed_before_kwh"),
                      x["claimed_kwh"], x.get("remaining_kwh", x.get("unclaimed_kwh"))] for x in inv["instruments"]]))
    if inv.get("instruments_refused"):
        out.append(("Instruments refused", ["id", "kind", "volume_kwh", "vintage", "market", "reason"],
                    [[x["id"], x["kind"], x["volume_kwh"], x["vintage"], x["market"], x["reason"]]
                     for x in inv["instruments_refused"]]))
    p = inv.get("products")
    if p:
        out.append(("Products", ["product", "good_units", "total_co2e_kg", "co2e_kg_per_unit", "direct_co2e_kg",
                                 "indirect_co2e_kg", "electricity_kwh", "flags"],
                    [[x["product"], x["good_units"], x["total_co2e_kg"], x["co2e_kg_per_unit"], x["direct_co2e_kg"],
                      x["indirect_co2e_kg"], x["electricity_kwh"], "; ".join(x["flags"])] for x in p["products"]]))
        out.append(("Allocation method", ["method"], [[p["method"]]]))
        if inv.get("cbam"):  # Annex I contents per good (carbon.cbam configured): carbon/reports/cbam.py
            from .cbam import TABLE_HEADER, table_rows

            out.append(("CBAM", TABLE_HEADER, table_rows(inv["cbam"])))
        elif p["cbam"]:
            out.append(("CBAM", ["product", "mass_t", "direct_see_t_co2e_per_t", "indirect_see_t_co2e_per_t", "electricity_mwh_per_t"],
                        [[c["product"], c["mass_t"], c["direct_see_t_per_t"], c["indirect_see_t_per_t"],
                          c["electricity_mwh_per_t"]] for c in p["cbam"]]))
    out.append(("Factor appendix", ["id", "value", "unit", "gas", "geography", "year", "document", "url", "published",
                                    "retrieved", "secondary", "version"],
                [[f[k] for k in ("id", "value", "unit", "gas", "geography", "year", "document", "url", "published",
                                 "retrieved", "secondary", "version")] for f in inv["factor_appendix"]]
                + [[s, None, None, None, None, None, "site-specific parameter, not in the registry", None, None, None, None, None]
                   for s in inv["site_specific_parameters"]]))
    g = inv["gwp_set"]
    out.append(("GWP set", ["set", "gas", "gwp100", "document"], [[g["id"], k, v, g["document"]] for k, v in g["values"].items()]))
    out.append(("Method statement", ["text"], [[inv["method_statement"]]]))
    if hours and inv.get("hours"):
        keys = list(inv["hours"][0])
        out.append(("Hours", keys, [[h[k] for k in keys] for h in inv["hours"]]))
    return out
