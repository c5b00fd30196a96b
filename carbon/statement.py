"""The words a report must carry beside its figures: the method statement and the disclosures
(partial coverage, estimated hours, origin, rewritten hours, the residual mix or its fallback,
refused and remaining instruments). Every format prints the disclosures on its first page."""

from __future__ import annotations

from .config import CarbonConfig
from .registry import Registry


def method_statement(c: CarbonConfig, registry: Registry, estimated_hours: int) -> str:
    grid = registry.get(c.grid_factor) if c.grid_factor in registry else None
    hourly = grid is not None and grid.kind == "grid_hourly"
    s1 = (
        "IPCC 2006 Guidelines Vol. 2 Ch. 2 Tier 1 (fuel x NCV x per-gas factor, NCV basis)"
        if c.scope1_method == "ipcc"
        else "China NDRC industry guidelines (fuel x NCV x carbon content x oxidation x 44/12, CO2 only)"
    )
    residual = (f"the residual factor {c.residual_factor}" if c.residual_factor else
                f"the location-based grid factor {c.grid_factor} as fallback (no residual mix configured)")
    parts = [
        "Organisational inventory per the GHG Protocol Corporate Standard and ISO 14064-1:2018 "
        "(categories 1 and 2 quantified; 3 to 6 not covered by site meters), from the hourly emissions "
        "ledger: one record per source and clock hour of the site's time zone, summed over the hours "
        "of the period.",
        f"Scope 1: stationary combustion from fuel meters by {s1}; per-gas masses first, then CO2e with "
        f"{c.gwp_set.upper()} GWP100 values.",
        "Scope 2, dual reported per the GHG Protocol Scope 2 Guidance: location-based with "
        + (f"the hourly grid intensity series {c.grid_factor}, time-aligned with the hours"
           if hourly else f"the annual grid factor {c.grid_factor}")
        + "; market-based with contractual instruments (GEC, I-REC, REC, green PPA) claimed when the "
          "report is made, hour by hour in time order from the first hour each may cover (its vintage "
          "year in the site's time zone), retired and of the site's market only, never beyond their "
          f"quantity or the grid import; the remainder at {residual}. "
          "China's grid factors are CO2 only, so their CO2e equals CO2.",
        "Only grid imports carry Scope 2; self-consumed on-site generation (generated minus exported) "
        "is reported apart at zero emissions, and site energy is grid import plus self-consumed. "
        "Compressed air is made with electricity already in the grid import and is not counted again.",
        f"Meter counters are read as they are (resets and replaced meters counted, gaps spread linearly "
        f"over their hours and marked estimated); {estimated_hours} source-hour(s) in this period hold "
        f"estimated activity.",
    ]
    return " ".join(parts)


def disclosures(inv: dict, c: CarbonConfig, registry: Registry) -> list[str]:
    cov = inv["coverage"]
    out = []
    if not cov["complete"]:
        first, last = cov["first_reading"], cov["last_reading"]
        out.append(
            f"PARTIAL COVERAGE: {cov['hours_with_data']} of the {cov['hours_in_period']} hours of the period "
            f"have data ({cov['hours_without_data']} without"
            + (f"; readings from {first['local']} to {last['local']}" if first and last else "")
            + "). The figures cover those hours only; this is not a complete inventory of the period.")
    if cov["estimated_hours"]:
        out.append(f"{cov['estimated_hours']} hour(s) hold estimated activity (a gap between meter readings "
                   f"spread over its hours).")
    out.append(f"Origin: {inv['origin']} records only ("
               + ("from replay or run, metered" if inv["origin"] == "measured" else "from simulate or demo, not metered")
               + "); measured and simulated records are never mixed.")
    if cov["hours_written_more_than_once"]:
        out.append(f"{cov['hours_written_more_than_once']} hour(s) of the period were written more than once "
                   f"(a re-run over the same hours); each counts once, as last written.")
    if not c.residual_factor:
        out.append(f"No residual mix factor is configured: consumption not covered by instruments uses the "
                   f"location-based grid factor {c.grid_factor} as the fallback.")
    for x in inv["instruments_refused"]:
        out.append(f"Instrument {x['id']} ({x['kind']}, {x['volume_kwh']:g} kWh) refused: {x['reason']}.")
    for x in inv["instruments"]:
        if x["remaining_kwh"] > 0:
            out.append(f"Instrument {x['id']}: {x['remaining_kwh']:g} kWh remain unclaimed at the end of the period.")
    return out
