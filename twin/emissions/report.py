"""``factory-twin report``: one period of the store's emissions ledger, through carbon's report writers.

The period is a whole number of clock hours of the site's time zone; the report sums exactly the
ledger hours inside it, of one origin (measured or simulated, never both), claims the contractual
instruments at report time (``carbon.claims``) and allocates to products: station sub-meters split
by machine time per product (ISO 14067's preferred route), what no station meter sees (fuels,
heat, the rest of the site's electricity) split by machine time too. Electricity is priced at the
effective intensity of what the site consumed (grid import plus self-consumed generation).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

import carbon
from carbon.claims import earliest_eligible
from carbon.inventory import claim_for, inventory_of
from carbon.ledger_view import PeriodData
from carbon.periods import local_text, on_clock_hour, parse_site_time
from carbon.reports import check_format, write_inventory
from factory_models import Factory

from twin.rollup import pick_windows
from twin.store import Store

from . import ledger_sql

ORIGINS = ("measured", "simulated")


def site_zone(factory: Factory | None) -> str:
    if factory is None:
        return "UTC"
    return getattr(factory.site, "timezone", None) or factory.calendar.timezone or "UTC"


def period_zone(store_path: Path, factory: Factory | None, site: str | None = None,
                config: Path | None = None) -> str | None:
    """The zone ``--from``/``--to`` are read in: the factory's (``--config``), else the one the store
    recorded for the site; None for a store written before it recorded zones (schema version 6).
    ValueError when the config's zone and the store's disagree, or the store's sites are in several
    zones and no ``--site`` says which."""
    with Store(store_path) as store:
        zones = store.site_zones()
    name = site or (factory.site.name if factory is not None else None)
    if name is None:
        found = sorted(set(zones.values()))
        if len(found) > 1:
            raise ValueError(f"{store_path}: sites in several time zones "
                             f"({', '.join(f'{s} {z}' for s, z in zones.items())}); choose one with --site")
        recorded = found[0] if found else None
    else:
        recorded = zones.get(name)
    if factory is None:
        return recorded
    tz = site_zone(factory)
    if recorded is not None and recorded != tz:
        raise ValueError(f"{config or '--config'}: site.timezone {tz} of site {name!r} disagrees with the time zone "
                         f"{recorded} that {store_path} recorded for it")
    return tz


def parse_period(date_from: str, date_to: str, tz: str) -> tuple[float, float]:
    """[t0, t1) of ``--from``/``--to`` read in the site's zone; both on the zone's clock hours."""
    t0, t1 = parse_site_time(date_from, tz), parse_site_time(date_to, tz)
    if t1 <= t0:
        raise ValueError(f"--to {date_to} must be after --from {date_from}")
    for name, text, t in (("--from", date_from, t0), ("--to", date_to, t1)):
        if not on_clock_hour(t, tz):
            raise ValueError(f"{name} {text}: not on a clock hour of {tz} ({local_text(t, tz)}); "
                             f"the ledger is hourly, give a date or a whole hour")
    return t0, t1


def effective_intensity(pd: PeriodData, a: float | None = None, b: float | None = None) -> float | None:
    """kg CO2e per kWh the site consumed over the hours in [a, b): grid CO2e over grid import plus
    self-consumed generation (the PV share dilutes it); None without electricity."""
    sel = np.ones(len(pd.hours), dtype=bool)
    if a is not None and b is not None:
        sel = (pd.hours + 3600.0 > a) & (pd.hours < b)
    kwh = pd.hourly["grid_kwh"][sel].sum() + pd.hourly["onsite_kwh"][sel].sum()
    return float(pd.hourly["grid_co2e_kg"][sel].sum() / kwh) if kwh > 0 else None


def build_allocation(store: Store, pd: PeriodData, factory: Factory | None):
    """(allocation of the period or None, notes): the product footprints, or why there are none."""
    notes: list[str] = []
    uses = store.product_use(pd.t0, pd.t1, site=pd.site)
    if not uses:
        return None, ["no machine time per product in the store for this period: no product footprints"]
    intensity = effective_intensity(pd) or 0.0
    energy: dict[str, float] = defaultdict(float)
    kg: dict[str, float] = defaultdict(float)
    inside: dict[str, list] = defaultdict(list)
    for w in store.kpis(pd.t0, pd.t1 + 1e-3, site=pd.site, level="station"):  # windows ending inside or at t1
        if w.energy_kwh is None or w.start is None or w.start < pd.t0 - 1e-6 or w.end > pd.t1 + 1e-6:
            continue
        inside[f"{w.line}/{w.station}"].append(w)
    for key, found in inside.items():
        # a live run's minute windows and its whole-run window hold the same energy: each second once
        for w in pick_windows(found)[0]:
            energy[key] += w.energy_kwh
            kg[key] += w.energy_kwh * (effective_intensity(pd, w.start, w.end) or intensity)
    if not energy:
        notes.append("no station sub-meter energy stored within the period (KPI windows of the whole run; "
                     "--window 1h stores them per hour): all electricity is allocated by machine time")
    time_s: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    units: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    good: dict[str, float] = defaultdict(float)
    for u in uses:
        key = f"{u['line']}/{u['station']}"
        time_s[key][u["product"]] += u["machine_time_s"]
        units[key][u["product"]] += u["produced"]
        if u["is_output"]:
            good[u["product"]] += u["good"]
    # a product with no good unit in the period bears nothing (emissions are borne by good units):
    # its machine time on work left unfinished goes to the products that were made, and a note says so
    made = {p for p, g in good.items() if g > 0}
    if made:
        for p in sorted({p for t in time_s.values() for p in t} - made):
            secs = sum(time_s[k].pop(p, 0.0) for k in time_s)
            for per_product in units.values():
                per_product.pop(p, None)
            notes.append(f"product {p}: no good unit in the period, zero allocation; its {secs:,.0f} s of machine "
                         f"time on unfinished work is borne by the products made")
    masses = {p.name: p.mass_kg for p in factory.products} if factory else {}
    # every product of the model: one that made nothing in the period gets zero, not an error
    names = list(factory.product_names()) if factory else []
    names += sorted({u["product"] for u in uses} - set(names))
    outputs = [carbon.ProductOutput(p, good.get(p, 0.0), masses.get(p)) for p in names]
    stations = [carbon.StationUse(k, energy.get(k, 0.0), dict(time_s[k]), dict(units[k]),
                                  co2e_kg=kg.get(k, 0.0)) for k in sorted(time_s)]
    shared = []
    fuel_kg = pd.total("scope1_co2e_kg")
    if fuel_kg:
        shared.append(carbon.SharedLoad("fuels (Scope 1)", "fuel", fuel_kg, 0.0, "machine_time"))
    heat_kg = pd.total("heat_co2e_kg")
    if heat_kg:
        shared.append(carbon.SharedLoad("purchased heat (Scope 2)", "heat", heat_kg, 0.0, "machine_time"))
    site_kwh = pd.total("grid_kwh") + pd.total("onsite_kwh")
    rest_kwh = site_kwh - sum(energy[k] for k in time_s)
    rest_kg = pd.total("grid_co2e_kg") - sum(kg[k] for k in time_s)
    if rest_kwh > 1e-9:
        shared.append(carbon.SharedLoad("electricity not sub-metered (base load, compressors)", "electricity",
                                        max(rest_kg, 0.0), rest_kwh, "machine_time"))
    if rest_kwh < -1e-6 or rest_kg < -1e-6:
        notes.append(f"station sub-meters read more than the site consumed (grid import plus self-consumed: "
                     f"{-rest_kwh:.3f} kWh, {-rest_kg:.3f} kg CO2e over): the products bear the sub-meters' figures")
    try:
        alloc = carbon.allocate(stations, outputs, shared, intensity, "location")
    except carbon.AllocationError as exc:
        return None, [*notes, f"no product footprints: {exc}"]
    noted = {n.split(":")[0] for n in notes}
    notes += [f"product {p.product}: {f}" for p in alloc.products for f in p.flags
              if f.startswith("not produced") and f"product {p.product}" not in noted]
    return alloc, notes


def write_period_report(store_path: Path, t0: float, t1: float, fmt: str, out: Path, *,
                        factory: Factory | None, carbon_cfg, registry, site: str | None = None,
                        origin: str = "measured", tz: str | None = None) -> dict:
    """Write the report of [t0, t1) from the store; returns the inventory (with ``inputs_sha256``)."""
    check_format(fmt)
    if origin not in ORIGINS:
        raise ValueError(f"--origin {origin!r}: expected measured or simulated")
    notes = [] if factory is not None or tz else [
        "no --config and no time zone recorded in the store (written before it kept one): the period is read in UTC"]
    tz = tz or site_zone(factory)
    cfg = carbon_cfg or carbon.CarbonConfig()
    with Store(store_path) as store:
        db = ledger_sql.connect(store_path)
        try:
            pd, (g_t, g_kwh) = ledger_sql.period_data(db, site, origin, t0, t1, tz,
                                                      earliest_eligible(list(cfg.instruments), tz))
        except LookupError:
            held = ledger_sql.origins(db, t0, t1)
            other = [o for o in held if o != origin]
            hint = (f"; the store holds {', '.join(f'{held[o]} {o}' for o in other)} records then: "
                    f"use --origin {other[0]}") if other else "; run simulate, replay or demo with --store first"
            raise ValueError(f"{store_path}: no {origin} emissions records from {local_text(t0, tz)} to "
                             f"{local_text(t1, tz)}{' for site ' + site if site else ''}{hint}") from None
        except ValueError as exc:
            raise ValueError(f"{store_path}: {exc}") from None
        finally:
            db.close()
        allocation, why = build_allocation(store, pd, factory)
    inv = inventory_of(pd, claim_for(cfg, tz, g_t, g_kwh), registry, allocation, cfg, notes + why)
    if fmt == "pact" and inv.get("products"):  # published into the store: the PACT API serves the same documents
        from twin.pact_api.repository import publish_and_write

        return publish_and_write(store_path, inv, out, cfg, factory.site.country if factory else None)
    return write_inventory(inv, fmt, out, factory.site.country if factory else None, cfg)
