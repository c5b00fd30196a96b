"""The hourly emissions ledger: each meter's activity per clock hour of the site to records.

One record per (site, source, scope, method, hour, origin) (docs/carbon.md, the hourly ledger):

- fuel meters: Scope 1, method ``direct`` (``carbon/scope1.py``);
- grid import: Scope 2, method ``location``, kWh x the grid factor of that hour (an hourly series
  time-aligned, else the annual value); heat: Scope 2 ``location`` in GJ;
- on-site generation: with a ``grid_export`` meter, self-consumed = generated - exported in each
  hour, method ``onsite`` (source: the generation meter, 0 kg) and ``export`` (source: the export
  meter, 0 kg); an hour where more was exported than generated is clipped to 0 self-consumed and
  counted in a warning. Without an export meter all generation counts as self-consumed (disclosed).
  Only imports carry Scope 2.

No market-based records: contractual instruments are claimed when a report is made.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from factory_models import EmissionsRecord

from .accounting import FUEL_KINDS, _gas_split, grid_factor_per_interval
from .config import CarbonConfig
from .counters import HourlyActivity
from .meters import KINDS, MeterDataError
from .registry import Registry
from .scope1 import fuel_emissions
from .units import UnitError, convert, parse_unit

#: the kinds the ledger knows (a meter of another kind is a clear error, never skipped)
LEDGER_KINDS = KINDS
#: records come out Scope 1 first, then grid, heat, on-site generation, export
_ORDER = (*FUEL_KINDS, "grid_import", "heat", "pv", "grid_export", "compressed_air")
#: activity below this is float noise, not an estimate
_EPS = 1e-12


@dataclass
class Ledger:
    """The records of one run or period, each meter's counts, and warnings worth a line each."""

    records: list[EmissionsRecord]
    meters: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    clipped_hours: int = 0  # hours where export exceeded generation (self-consumed clipped to 0)


def _canonical(a: HourlyActivity) -> tuple[str, float]:
    if a.kind not in LEDGER_KINDS:
        raise MeterDataError(f"meter {a.meter!r}: unknown kind {a.kind!r}; known: {', '.join(LEDGER_KINDS)}")
    dim, unit = LEDGER_KINDS[a.kind]
    u = parse_unit(a.unit)
    if u.dimension != dim:
        raise UnitError(f"meter {a.meter!r} ({a.kind}) reports in {a.unit!r} ({u.dimension}); expected {dim}, e.g. {unit!r}")
    return unit, float(convert(1.0, a.unit, unit))


class _Hours:
    """Makes the records of one meter over the hours it has data in (and that are kept)."""

    def __init__(self, site: str, origin: str, gwp_set: str, keep: np.ndarray):
        self.site, self.origin, self.gwp_set, self.keep = site, origin, gwp_set, keep
        self.out: list[EmissionsRecord] = []

    def emit(self, a: HourlyActivity, scope: str, method: str, unit: str, activity, estimated, figures: dict,
             factor_id: str, factor_version: str, hours=None) -> None:
        hours = a.has_data if hours is None else hours
        for i in np.nonzero(hours & self.keep)[0]:
            est = float(min(estimated[i], activity[i]))
            self.out.append(EmissionsRecord(
                site=self.site, scope=scope, source=a.meter, method=method,
                start=float(a.edges[i]), end=float(a.edges[i + 1]),
                activity=float(activity[i]), activity_unit=unit,
                co2e_kg=float(figures["co2e_kg"][i]), co2_kg=float(figures["co2_kg"][i]),
                ch4_kg=float(figures["ch4_kg"][i]), n2o_kg=float(figures["n2o_kg"][i]),
                factor_id=factor_id, factor_version=factor_version, gwp_set=self.gwp_set,
                data_quality="estimated" if est > _EPS else "measured", origin=self.origin,
                estimated_activity=est if est > _EPS else 0.0,
                readings=int(a.readings[i]), resets=int(a.resets[i]),
                first_reading=None if np.isnan(a.first_reading[i]) else float(a.first_reading[i]),
                last_reading=None if np.isnan(a.last_reading[i]) else float(a.last_reading[i]),
            ))


def ledger_records(activities: list[HourlyActivity], config: CarbonConfig, registry: Registry, *, site: str,
           origin: str = "measured", keep: tuple[float, float] | None = None,
           ncv_mj_per_nm3: dict[str, float] | None = None) -> Ledger:
    """The ledger records of ``activities`` (one per meter, all on the same hour edges).

    ``keep`` (t0, t1): only hours whose start lies in [t0, t1) are recorded (a live run's closed
    hours). ``ncv_mj_per_nm3``: a gas meter's site-measured NCV, by meter name.
    """
    if origin not in ("measured", "simulated"):
        raise ValueError(f"origin must be measured or simulated, got {origin!r}")
    config.check(registry)
    names = [a.meter for a in activities]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ValueError(f"meter names must be unique; repeated: {dup}")
    if not activities:
        return Ledger([])
    edges = activities[0].edges
    for a in activities:
        if len(a.edges) != len(edges) or not np.array_equal(a.edges, edges):
            raise ValueError(f"meter {a.meter!r}: hour edges differ from meter {activities[0].meter!r}'s")
    starts = edges[:-1]
    keep_mask = np.ones(len(starts), dtype=bool) if keep is None else (starts >= keep[0]) & (starts < keep[1])
    gwp = registry.gwp(config.gwp_set)
    out = _Hours(site, origin, config.gwp_set, keep_mask)
    ncv = ncv_mj_per_nm3 or {}
    result = Ledger([], meters=[a.stats() for a in activities])
    gen = [a for a in activities if a.kind == "pv"]
    exp = [a for a in activities if a.kind == "grid_export"]
    for a in sorted(activities, key=lambda a: (_ORDER.index(a.kind) if a.kind in _ORDER else -1, a.meter)):
        unit, k = _canonical(a)
        act, est = a.activity * k, a.estimated * k
        if a.kind in FUEL_KINDS:
            r = fuel_emissions(act, unit, a.kind, config.scope1_method, registry, gwp, ncv.get(a.meter))
            figs = {"co2e_kg": r.co2e_kg, "co2_kg": r.co2_kg, "ch4_kg": r.ch4_kg, "n2o_kg": r.n2o_kg}
            out.emit(a, "1", "direct", unit, act, est, figs, r.factor_id + f"+gwp-{gwp.id}", r.factor_version)
        elif a.kind == "grid_import":
            grid = registry.get(config.grid_factor)
            hours = a.has_data & keep_mask
            ef = np.zeros(len(act))
            if hours.any():  # an hourly series need only cover the hours recorded
                ef[hours] = grid_factor_per_interval(grid, edges[:-1][hours], edges[1:][hours])
            out.emit(a, "2", "location", unit, act, est, _gas_split(grid, act * ef), grid.id, grid.version)
        elif a.kind == "heat":
            heat = registry.get(config.heat_factor)
            out.emit(a, "2", "location", unit, act, est, _gas_split(heat, act * heat.value_in(f"kg {heat.gas}/GJ")),
                     heat.id, heat.version)
        elif a.kind == "grid_export":
            z = np.zeros(len(act))
            out.emit(a, "2", "export", unit, act, est, _gas_split(registry.get(config.onsite_factor), z), "", "")
    if gen:
        _onsite(out, gen, exp, config, registry, result)
    result.records = out.out
    return result


def _onsite(out: _Hours, gen: list[HourlyActivity], exp: list[HourlyActivity], config, registry, result: Ledger) -> None:
    """Self-consumed generation per hour, shared over the generation meters in proportion to output."""
    k = [_canonical(a)[1] for a in gen]
    g = [a.activity * f for a, f in zip(gen, k)]
    g_est = [a.estimated * f for a, f in zip(gen, k)]
    total = np.sum(g, axis=0)
    exported = np.sum([a.activity * _canonical(a)[1] for a in exp], axis=0) if exp else np.zeros_like(total)
    exp_est = np.sum([a.estimated * _canonical(a)[1] for a in exp], axis=0) if exp else np.zeros_like(total)
    self_kwh = total - exported
    clipped = (self_kwh < -1e-9) & out.keep
    if clipped.any():
        result.clipped_hours = int(clipped.sum())
        result.warnings.append(
            f"{result.clipped_hours} hour(s) with more exported ({', '.join(a.meter for a in exp)}) than generated "
            f"({', '.join(a.meter for a in gen)}): self-consumption clipped to 0 in those hours")
    self_kwh = np.maximum(self_kwh, 0.0)
    no_export_data = np.zeros(len(total), dtype=bool)
    if exp:
        no_export_data = ~np.any([a.has_data for a in exp], axis=0)
        silent = no_export_data & np.any([a.has_data for a in gen], axis=0) & out.keep
        if silent.any():
            result.warnings.append(f"{int(silent.sum())} hour(s) with generation but no export reading: all of the "
                                   f"generation is taken as self-consumed there (estimated)")
    else:
        result.warnings.append("no grid_export meter: all on-site generation is taken as self-consumed")
    factor = registry.get(config.onsite_factor)
    per_kwh = factor.value_in(f"kg {factor.gas}/kWh")
    for a, gi, gi_est in zip(gen, g, g_est):
        share = np.divide(gi, total, out=np.zeros_like(gi), where=total > 0)
        mine = self_kwh * share
        est = np.where(no_export_data & bool(exp), mine, np.minimum(mine, gi_est + exp_est * share))
        out.emit(a, "2", "onsite", "kWh", mine, est, _gas_split(factor, mine * per_kwh), factor.id, factor.version)
