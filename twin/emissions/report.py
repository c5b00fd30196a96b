"""``factory-twin report``: the emissions ledger of the embedded store, through carbon's report writers.

The store holds what runs recorded (emissions records with their factor ids, station KPI rows with
energy, machine time and output per product); this module reads one period back and builds the
allocation to products: station sub-meters split by machine time per product (ISO 14067's
preferred route), fuels and electricity that no station meter sees split by machine time too.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import carbon
from factory_models import Factory

from twin.store import Store


def _in_period(rows, t0: float, t1: float):
    return [r for r in rows if r.start is not None and r.start >= t0 - 1e-6 and r.end <= t1 + 1e-6]


def build_allocation(store: Store, t0: float, t1: float, site: str, records, factory: Factory | None,
                     method: str = "location"):
    """The product allocation of [t0, t1], or (None, reason) when the store has no product data."""
    uses = store.product_use(t0, t1, site=site)
    if not uses:
        return None, "no machine time per product in the store for this period"
    energy = defaultdict(float)
    for w in _in_period(store.kpis(t0, None, site=site, level="station"), t0, t1):
        if w.energy_kwh is not None:
            energy[f"{w.line}/{w.station}"] += w.energy_kwh
    time_s: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    units: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    good: dict[str, float] = defaultdict(float)
    for u in uses:
        key = f"{u['line']}/{u['station']}"
        time_s[key][u["product"]] += u["machine_time_s"]
        units[key][u["product"]] += u["produced"]
        if u["is_output"]:
            good[u["product"]] += u["good"]
    masses = {p.name: p.mass_kg for p in factory.products} if factory else {}
    products = sorted(good) or sorted({u["product"] for u in uses})
    outputs = [carbon.ProductOutput(p, good.get(p, 0.0), masses.get(p)) for p in products]
    stations = [carbon.StationUse(k, energy.get(k, 0.0), dict(time_s[k]), dict(units[k])) for k in sorted(time_s)]
    intensity = carbon.grid_intensity_kg_per_kwh(records, method) or 0.0
    shared = []
    fuel_kg = sum(r.co2e_kg for r in records if r.scope == "1")
    if fuel_kg:
        shared.append(carbon.SharedLoad("fuels (Scope 1)", "fuel", fuel_kg, 0.0, "machine_time"))
    grid_kwh = sum(r.activity for r in records if r.scope == "2" and r.method == method and r.activity_unit == "kWh")
    unmetered_kwh = grid_kwh - sum(energy.values())
    if unmetered_kwh > 1e-9:
        shared.append(carbon.SharedLoad("electricity not sub-metered (base load, compressors)", "electricity",
                                        unmetered_kwh * intensity, unmetered_kwh, "machine_time"))
    return carbon.allocate(stations, outputs, shared, intensity, method), None


def write_period_report(store_path: Path, t0: float, t1: float, fmt: str, out: Path, *,
                        factory: Factory | None, carbon_cfg, registry, site: str | None = None) -> dict:
    """Write the report of [t0, t1] from the store; returns the inventory (with ``inputs_sha256``)."""
    with Store(store_path) as store:
        records = [r for r in store.emissions(t0, None, site=site) if r.start >= t0 - 1e-6 and r.end <= t1 + 1e-6]
        if not records:
            raise ValueError(f"{store_path}: no emissions records between the two times"
                             f"{' for site ' + site if site else ''}; run simulate, replay or demo with --store first")
        sites = sorted({r.site for r in records})
        if len(sites) > 1:
            raise ValueError(f"{store_path}: records of several sites {sites}; choose one with --site")
        site = sites[0]
        allocation, why_not = build_allocation(store, t0, t1, site, records, factory)
    inv = carbon.write_report(records, allocation, registry, fmt, out, (t0, t1), site, carbon_cfg,
                              country=factory.site.country if factory else None)
    if why_not:
        inv.setdefault("notes", []).append(why_not)
    return inv
