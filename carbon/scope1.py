"""Scope 1: direct emissions from stationary combustion of metered fuels.

Per-gas masses first, then CO2e with the chosen GWP set (GHG Protocol Corporate Standard ch. 6;
ISO 14064-1:2018 category 1). Two methods:

- ``ipcc``: IPCC 2006 Guidelines Vol. 2 Ch. 2, Tier 1: E_gas = fuel x NCV x EF_gas (Table 2.3).
- ``ndrc``: China's NDRC industry guidelines: CO2 = fuel x NCV x carbon content x oxidation x 44/12;
  CO2 only, as those guidelines count it.

Gaseous fuel metered in Nm3 takes its NCV per Nm3 (China's default, 38.931 MJ/Nm3) under both
methods, since IPCC's NCVs are per mass; solid and liquid fuels in kg or t take IPCC's NCV per Gg.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .registry import Factor, GwpSet, Registry, UnknownFactorError
from .units import convert, parse_unit

CO2_PER_C = 44.0 / 12.0  # molar mass ratio CO2 / C
FUELS = ("natural_gas", "diesel", "lpg", "coal")


def fuel_energy_tj(quantity, quantity_unit: str, ncv_value: float, ncv_unit: str):
    """Energy content (TJ, net calorific value basis) of a fuel quantity; units checked by dimension."""
    ncv = parse_unit(ncv_unit)
    if ncv.dim != "energy" or ncv.per_dim is None:
        raise ValueError(f"an NCV needs a unit of energy per amount of fuel, e.g. 'MJ/Nm3'; got {ncv_unit!r}")
    per = ncv_unit.split("/")[1].strip()
    q = convert(np.asarray(quantity, dtype=np.float64), quantity_unit, per)
    return q * convert(ncv_value, ncv_unit, f"TJ/{per}")


def ipcc_gas_kg(energy_tj, ef_value: float, ef_unit: str):
    """Mass (kg) of one gas from fuel energy and an IPCC factor per TJ (IPCC 2006 Vol. 2 Eq. 2.1)."""
    return np.asarray(energy_tj, dtype=np.float64) * convert(ef_value, ef_unit, f"kg {parse_unit(ef_unit).substance}/TJ")


def ndrc_co2_kg(energy_tj, carbon_content_t_c_per_tj: float, oxidation: float):
    """CO2 (kg) by China's NDRC method: energy x carbon content x oxidation rate x 44/12."""
    return np.asarray(energy_tj, dtype=np.float64) * carbon_content_t_c_per_tj * 1000.0 * oxidation * CO2_PER_C


def co2e_kg(co2_kg, ch4_kg, n2o_kg, gwp: GwpSet):
    """CO2-equivalent (kg) of per-gas masses with a GWP100 set."""
    return np.asarray(co2_kg) * gwp.gwp("CO2") + np.asarray(ch4_kg) * gwp.gwp("CH4") + np.asarray(n2o_kg) * gwp.gwp("N2O")


@dataclass(frozen=True)
class FuelResult:
    co2_kg: np.ndarray
    ch4_kg: np.ndarray
    n2o_kg: np.ndarray
    co2e_kg: np.ndarray
    factors: tuple[Factor, ...]
    extra_ids: tuple[str, ...] = ()  # parameters not from the registry (a site-measured NCV)

    @property
    def factor_id(self) -> str:
        return "+".join([f.id for f in self.factors] + list(self.extra_ids))

    @property
    def factor_version(self) -> str:
        return "+".join(dict.fromkeys(f.version for f in self.factors))


def _need(registry: Registry, factor_id: str, method: str, fuel: str) -> Factor:
    try:
        return registry.get(factor_id)
    except UnknownFactorError as exc:
        raise UnknownFactorError(
            f"{exc} - needed by the {method} method for {fuel}; add it in a factor file or choose another scope1_method"
        ) from None


def fuel_emissions(
    quantity,
    unit: str,
    fuel: str,
    method: str,
    registry: Registry,
    gwp: GwpSet,
    ncv_mj_per_nm3: float | None = None,
) -> FuelResult:
    """Per-gas and CO2e masses of burning ``quantity`` (in ``unit``) of ``fuel``, by ``method``.

    ``ncv_mj_per_nm3`` is a site-measured NCV for a gaseous fuel; when it differs from the
    registry's default it is used and disclosed in the factor id.
    """
    if fuel not in FUELS:
        raise ValueError(f"unknown fuel {fuel!r}; known: {', '.join(FUELS)}")
    q = np.asarray(quantity, dtype=np.float64)
    u = parse_unit(unit)
    extra: tuple[str, ...] = ()
    if u.dim == "normal_volume":
        ncv = _need(registry, f"cn-ndrc-ncv-{fuel}", method, fuel)
        ncv_value, ncv_unit = ncv.value, ncv.unit
        if ncv_mj_per_nm3 is not None and abs(convert(ncv.value, ncv.unit, "MJ/Nm3") - ncv_mj_per_nm3) > 1e-9:
            ncv_value, ncv_unit = ncv_mj_per_nm3, "MJ/Nm3"
            extra = (f"site-ncv:{ncv_mj_per_nm3:g}MJ/Nm3",)
    elif u.dim == "mass":
        ncv = _need(registry, f"ipcc2006-ncv-{fuel}" if method == "ipcc" else f"cn-ndrc-ncv-{fuel}", method, fuel)
        ncv_value, ncv_unit = ncv.value, ncv.unit
    else:
        raise ValueError(f"{fuel}: activity unit {unit!r} is {u.dimension}; expected Nm3 (gas) or a mass (kg, t)")
    tj = fuel_energy_tj(q, unit, ncv_value, ncv_unit)
    used = [] if extra else [ncv]
    if method == "ipcc":
        efs = {g: _need(registry, f"ipcc2006-t2.3-{fuel}-{g.lower()}", method, fuel) for g in ("CO2", "CH4", "N2O")}
        co2, ch4, n2o = (ipcc_gas_kg(tj, efs[g].value, efs[g].unit) for g in ("CO2", "CH4", "N2O"))
        used += list(efs.values())
    elif method == "ndrc":
        cc = _need(registry, f"cn-ndrc-cc-{fuel}", method, fuel)
        of = _need(registry, f"cn-ndrc-of-{fuel}", method, fuel)
        co2 = ndrc_co2_kg(tj, cc.value_in("t C/TJ"), of.value_in("1"))
        ch4 = np.zeros_like(co2)
        n2o = np.zeros_like(co2)
        used += [cc, of]
    else:
        raise ValueError(f"unknown Scope 1 method {method!r}; expected ipcc or ndrc")
    return FuelResult(co2, ch4, n2o, co2e_kg(co2, ch4, n2o, gwp), tuple(used), extra)
