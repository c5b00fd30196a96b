"""Product carbon footprints: the site's emissions per product and per good unit.

ISO 14067:2018 6.4.6 orders the routes: avoid allocation by sub-dividing the process (here: each
station's own electricity sub-meter), then allocate by a physical relationship (machine time or
units) for what stays shared (boiler gas, compressed air, lighting), economic value last (not
offered). The method is disclosed in every output. Emissions are borne by good units: scrap and
rework are part of making them.

For EU CBAM tables (Regulation 2023/956 Annex IV) fuels and purchased heat are direct (attributed)
emissions and electricity is indirect.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .summary import station_co2e


class AllocationError(ValueError):
    """Emissions that could not be assigned to any product; the text says which and why."""


@dataclass(frozen=True)
class StationUse:
    """One station over the period: its sub-metered electricity and what it worked on.

    ``machine_time_s`` (producing time per product) is the preferred split; ``units`` (units
    processed per product) is used where machine time is not given.
    """

    station: str
    energy_kwh: float
    machine_time_s: dict[str, float] = field(default_factory=dict)
    units: dict[str, float] = field(default_factory=dict)
    #: the station's electricity CO2e when priced hour by hour; None: energy x the period's factor
    co2e_kg: float | None = None


@dataclass(frozen=True)
class SharedLoad:
    """A load no station meter sees. ``kind`` fuel is Scope 1; electricity and heat are Scope 2."""

    name: str
    kind: Literal["fuel", "electricity", "heat"]
    co2e_kg: float
    energy_kwh: float = 0.0  # electricity in the load, for the electricity-per-tonne figure
    basis: Literal["machine_time", "units"] = "machine_time"


@dataclass(frozen=True)
class ProductOutput:
    product: str
    good_units: float
    mass_kg: float | None = None  # per unit; enables the CBAM table


@dataclass
class ProductFootprint:
    product: str
    good_units: float
    mass_kg: float | None
    electricity_kwh: float = 0.0
    direct_co2e_kg: float = 0.0  # fuels and heat (CBAM direct)
    indirect_co2e_kg: float = 0.0  # electricity (CBAM indirect)
    submetered_co2e_kg: float = 0.0
    shared_co2e_kg: float = 0.0
    flags: list[str] = field(default_factory=list)

    @property
    def total_co2e_kg(self) -> float:
        return self.direct_co2e_kg + self.indirect_co2e_kg

    @property
    def co2e_kg_per_unit(self) -> float | None:
        return self.total_co2e_kg / self.good_units if self.good_units > 0 else None

    @property
    def mass_t(self) -> float | None:
        return self.good_units * self.mass_kg / 1000.0 if self.mass_kg else None

    def cbam(self) -> dict | None:
        """Specific embedded emissions (t CO2e per t of good) and electricity per tonne, CBAM style."""
        m = self.mass_t
        if not m:
            return None
        return {
            "product": self.product,
            "mass_t": m,
            "direct_see_t_per_t": self.direct_co2e_kg / 1000.0 / m,
            "indirect_see_t_per_t": self.indirect_co2e_kg / 1000.0 / m,
            "electricity_mwh_per_t": self.electricity_kwh / 1000.0 / m,
        }

    def to_json(self) -> dict:
        return {
            "product": self.product,
            "good_units": self.good_units,
            "mass_kg_per_unit": self.mass_kg,
            "electricity_kwh": self.electricity_kwh,
            "direct_co2e_kg": self.direct_co2e_kg,
            "indirect_co2e_kg": self.indirect_co2e_kg,
            "submetered_co2e_kg": self.submetered_co2e_kg,
            "shared_co2e_kg": self.shared_co2e_kg,
            "total_co2e_kg": self.total_co2e_kg,
            "co2e_kg_per_unit": self.co2e_kg_per_unit,
            "flags": list(self.flags),
        }


@dataclass
class Allocation:
    products: list[ProductFootprint]
    method: str
    electricity_kg_per_kwh: float
    scope2_method: str

    def to_json(self) -> dict:
        return {
            "method": self.method,
            "electricity_kg_co2e_per_kwh": self.electricity_kg_per_kwh,
            "scope2_method": self.scope2_method,
            "products": [p.to_json() for p in self.products],
            "cbam": [c for c in (p.cbam() for p in self.products) if c],
        }


def _shares(weights: dict[str, float], products: list[str]) -> dict[str, float] | None:
    w = {p: float(weights.get(p, 0.0)) for p in products}
    bad = [p for p, v in weights.items() if p not in products]
    if bad:
        raise AllocationError(f"weights name unknown products {bad}; products are {products}")
    total = sum(w.values())
    return {p: v / total for p, v in w.items()} if total > 0 else None


def allocate(
    stations: list[StationUse],
    outputs: list[ProductOutput],
    shared: list[SharedLoad],
    electricity_kg_per_kwh: float,
    scope2_method: str = "location",
) -> Allocation:
    """Footprint per product and per good unit (see the module docstring for the method).

    Every kg CO2e in, on stations or shared loads, ends up on some product, or AllocationError
    says which station or load has no basis to split it by.
    """
    names = [o.product for o in outputs]
    if not names:
        raise AllocationError("no products to allocate to")
    fp = {o.product: ProductFootprint(o.product, float(o.good_units), o.mass_kg) for o in outputs}
    split_by_units = []
    for st in stations:
        if st.energy_kwh < 0:
            raise AllocationError(f"station {st.station!r}: negative energy {st.energy_kwh} kWh")
        share = _shares(st.machine_time_s, names)
        if share is None:
            share = _shares(st.units, names)
            if share is not None:
                split_by_units.append(st.station)
        if share is None:
            if len(names) == 1:
                share = {names[0]: 1.0}
            elif st.energy_kwh > 0:
                raise AllocationError(
                    f"station {st.station!r} used {st.energy_kwh:.3f} kWh but has no machine time or units "
                    f"per product to split it by"
                )
            else:
                continue
        kg = st.co2e_kg if st.co2e_kg is not None else station_co2e(st.energy_kwh, electricity_kg_per_kwh)
        for p, s in share.items():
            fp[p].electricity_kwh += st.energy_kwh * s
            fp[p].indirect_co2e_kg += kg * s
            fp[p].submetered_co2e_kg += kg * s
    total_time: dict[str, float] = {p: 0.0 for p in names}
    for st in stations:
        for p, t in st.machine_time_s.items():
            total_time[p] += t
    good = {o.product: o.good_units for o in outputs}
    bases = set()
    for load in shared:
        share = _shares(total_time if load.basis == "machine_time" else good, names)
        if share is None:
            raise AllocationError(f"shared load {load.name!r}: no {load.basis.replace('_', ' ')} recorded for any product")
        bases.add(load.basis)
        for p, s in share.items():
            if load.kind == "electricity":
                fp[p].indirect_co2e_kg += load.co2e_kg * s
                fp[p].electricity_kwh += load.energy_kwh * s
            else:
                fp[p].direct_co2e_kg += load.co2e_kg * s
            fp[p].shared_co2e_kg += load.co2e_kg * s
    made = {p for st in stations for p in names if st.machine_time_s.get(p, 0) > 0 or st.units.get(p, 0) > 0}
    for f in fp.values():
        if f.good_units <= 0 and f.total_co2e_kg == 0 and f.product not in made:
            f.flags.append("not produced in the period: zero allocation")
        elif f.good_units <= 0 and f.total_co2e_kg > 0:
            f.flags.append("no good units in the period: footprint per unit undefined, total still reported")
    parts = [
        f"ISO 14067:2018 6.4.6 allocation. Station electricity from {len(stations)} station sub-meters "
        f"(allocation avoided by sub-division), split among products at each station by machine time"
        + (f" (by units at {', '.join(split_by_units)}, where machine time was not recorded)" if split_by_units else "")
        + f"; electricity at {electricity_kg_per_kwh:.4f} kg CO2e/kWh ({scope2_method}-based)."
    ]
    if shared:
        parts.append(
            f"Shared loads ({', '.join(s.name for s in shared)}) allocated by "
            f"{' and '.join(sorted(b.replace('_', ' ') for b in bases))}."
        )
    parts.append("Emissions are borne by good units; scrap and rework are part of making them.")
    return Allocation(list(fp.values()), " ".join(parts), electricity_kg_per_kwh, scope2_method)
