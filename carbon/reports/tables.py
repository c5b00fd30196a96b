"""The inventory as named tables (title, header, rows): one layout shared by the CSV, XLSX and PDF writers."""

from __future__ import annotations


def _pct(x):
    return None if x is None else round(100.0 * x, 3)


def tables(inv: dict) -> list[tuple[str, list[str], list[list]]]:
    t = inv["totals"]
    out = [
        ("Report", ["key", "value"], [
            ["site", inv["site"]],
            ["period_start", inv["period"]["start"]],
            ["period_end", inv["period"]["end"]],
            ["inputs_sha256", inv["inputs_sha256"]],
            ["registry_version", inv["registry_version"]],
            ["registry_sha256", inv["registry_sha256"]],
            ["gwp_set", inv["gwp_set"]["id"]],
            ["gap_filled_records", inv["gap_filled_records"]],
        ]),
        ("Totals", ["figure", "location_based", "market_based", "unit"], [
            ["Scope 1", t["scope1_co2e_kg"], t["scope1_co2e_kg"], "kg CO2e"],
            ["Scope 2", t["scope2_location_co2e_kg"], t["scope2_market_co2e_kg"], "kg CO2e"],
            ["Scope 1 + 2", t["total_location_co2e_kg"], t["total_market_co2e_kg"], "kg CO2e"],
            ["On-site renewable generation (self-consumed, 0 kg)", t["onsite_renewable_kwh"], t["onsite_renewable_kwh"], "kWh"],
        ]),
        ("By source", ["source", "scope", "method", "activity", "activity_unit", "co2e_kg", "co2_kg", "ch4_kg", "n2o_kg", "factor_id"],
         [[s["source"], s["scope"], s["method"], s["activity"], s["activity_unit"], s["co2e_kg"], s["co2_kg"],
           s["ch4_kg"], s["n2o_kg"], s["factor_id"]] for s in inv["by_source"]]),
        ("By gas", ["scope", "gas", "mass_kg", "gwp", "co2e_kg"],
         [[g["scope"], g["gas"], g["mass_kg"], g["gwp"], g["co2e_kg"]] for g in inv["by_gas"]]),
        ("ISO 14064-1 categories", ["category", "name", "location_co2e_kg", "market_co2e_kg", "quantified"],
         [[c["category"], c["name"], c["location_co2e_kg"], c["market_co2e_kg"], c["quantified"]] for c in inv["iso14064_categories"]]),
        ("Data quality", ["source", "activity", "activity_unit", "measured_pct", "estimated_pct", "gap_filled_pct", "gap_filled_records"],
         [[d["source"], d["activity"], d["activity_unit"], _pct(d["measured_share"]), _pct(d["estimated_share"]),
           _pct(d["gap_filled_share"]), d["gap_filled_records"]] for d in inv["data_quality"]]),
    ]
    if inv["instruments"]:
        out.append(("Instruments", ["id", "kind", "volume_kwh", "vintage", "market", "retired", "claimed_kwh", "unclaimed_kwh"],
                    [[x["id"], x["kind"], x["volume_kwh"], x["vintage"], x["market"], x["retired"], x["claimed_kwh"],
                      x["unclaimed_kwh"]] for x in inv["instruments"]]))
    p = inv.get("products")
    if p:
        out.append(("Products", ["product", "good_units", "total_co2e_kg", "co2e_kg_per_unit", "direct_co2e_kg",
                                 "indirect_co2e_kg", "electricity_kwh", "flags"],
                    [[x["product"], x["good_units"], x["total_co2e_kg"], x["co2e_kg_per_unit"], x["direct_co2e_kg"],
                      x["indirect_co2e_kg"], x["electricity_kwh"], "; ".join(x["flags"])] for x in p["products"]]))
        out.append(("Allocation method", ["method"], [[p["method"]]]))
        if p["cbam"]:
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
    return out
