"""One replication of an experiment: a factory model as a dict, a seed, a warm-up and a run length in,
a small dict of plain numbers out (the unit of work a Dask task runs; see ``cluster``).

``run_replication(factory_doc, hours, warmup_hours, seed)`` validates the dict into a ``Factory``,
runs the SimPy twin for ``warmup_hours + hours`` and measures only ``[warm-up end, end)``: the frozen
event log's start is moved to the warm-up's end, so the ISO 22400 KPI core and the hourly carbon
ledger (origin ``simulated``) see exactly the span ``simulate`` would report. The warm-up comes from
the argument; the model's ``simulation.warmup_s`` is not added to it.

What it returns (no event log, so a task's result stays a few hundred bytes):

- ``time``: the site's ISO 22400 time elements over the span (sums over every machine, seconds);
  ``produced``, ``good``, ``scrap``, ``rework``, ``failures``: the site's counts (a line's good parts
  are its output station's);
- ``energy_kwh``: the site's energy from the KPI core (grid import + self-consumed PV when there is a
  grid meter); ``hourly_kwh``: the electricity the ledger books per clock hour of the site (grid
  import + self-consumed on-site generation), the hours of the span in order;
- ``scope1_co2e_kg``, ``scope2_location_co2e_kg``: sums of the ledger's records over the span;
  ``co2e_kg_per_good`` = (Scope 1 + Scope 2 location) / good;
- ``oee``, ``availability``, ``performance``, ``quality``: the site's, recomputed by the KPI core
  from the summed elements (None when undefined, never 0 or 1); ``kwh_per_good``;
  ``throughput_per_h`` = good / hours;
- ``bottleneck``: ``line/station`` of the station with the largest active share (below), and
  ``active_share`` of every station.

Bottleneck rule (the active-period method of Roser, Nakano and Tanaka, 2001, in its simplest form:
the machine that is active the largest share of its time constrains the line, because the others
wait for it). A station's active time is APT + ASUT + ADET (producing, in setup or down: the machine
itself is the reason nothing moves); waiting time is ADOT (starved, blocked, idle). Its active share
is active time / PBT, summed over its machines when it has several. The bottleneck is the station
with the largest share; a tie (within 1e-12) goes to the station declared first. A station with no
planned busy time has no share (None) and is never the bottleneck.

Same ``(factory_doc, hours, warmup_hours, seed)``, same dict: every random draw of the twin comes
from streams derived from the seed, and nothing here depends on the process or the clock.
"""

from __future__ import annotations

import json
import math
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from carbon.summary import hourly_totals
from factory_models import ConfigError, Factory
from factory_models.loading import field_path
from twin.emissions.account import account_log, carbon_setup, site_hours
from twin.kpi import compute_kpis
from twin.model import FactorySim

#: the site's time elements returned under ``time`` (KpiWindow field names)
TIME_ELEMENTS = ("pot_s", "pbt_s", "apt_s", "asut_s", "adet_s", "adot_s", "unknown_s")
COUNTS = ("produced", "good", "scrap", "rework", "failures")
KPIS = ("oee", "availability", "performance", "quality", "nee")
TIE = 1e-12
#: carbon configs and registries already loaded in this process (reading the registry's YAML took
#: about a fifth of a 24 h replication of demo_smt); keyed by the model's carbon settings and file
_CARBON: OrderedDict[str, tuple] = OrderedDict()
_CARBON_KEEP = 16


def factory_from_doc(doc: dict, source: str = "<factory model>") -> Factory:
    """The ``Factory`` a dict declares; every validation failure is one ConfigError naming ``source``
    and each bad field by its path (e.g. ``lines[0].stations[2].cycle_time_s``)."""
    if not isinstance(doc, dict):
        raise ConfigError(source, [f"expected a mapping (a factory model), got {type(doc).__name__}"])
    try:
        return Factory.model_validate(doc)
    except ValidationError as exc:
        problems = [f"{field_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)]
        raise ConfigError(source, problems) from None


def check_args(hours: float, warmup_hours: float, seed: int) -> None:
    if not (isinstance(hours, (int, float)) and math.isfinite(hours) and hours > 0):
        raise ValueError(f"hours must be a finite number > 0, got {hours!r}")
    if not (isinstance(warmup_hours, (int, float)) and math.isfinite(warmup_hours) and warmup_hours >= 0):
        raise ValueError(f"warmup_hours must be a finite number >= 0, got {warmup_hours!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")


def active_shares(factory: Factory, stations) -> dict[str, float | None]:
    """Active time (APT + ASUT + ADET) / PBT of each station (its machines summed), by ``line/station``."""
    active: dict[str, float] = {}
    planned: dict[str, float] = {}
    for (line, spec, _unit), row in zip(factory.station_units(), stations):
        key = f"{line.name}/{spec.name}"
        active[key] = active.get(key, 0.0) + row.apt_s + row.asut_s + row.adet_s
        planned[key] = planned.get(key, 0.0) + row.pbt_s
    return {k: (active[k] / planned[k] if planned[k] > 0 else None) for k in active}


def bottleneck_of(shares: dict[str, float | None]) -> str | None:
    """The station with the largest active share; the first declared wins a tie; None if none has one."""
    best, best_share = None, -math.inf
    for name, share in shares.items():  # declaration order
        if share is not None and share > best_share + TIE:
            best, best_share = name, share
    return best


def carbon_for(factory: Factory, config_path: str | Path | None):
    """``carbon_setup`` of the factory, loaded once per process for the same carbon settings (a
    factor file changed on disk during the process's life is not read again)."""
    key = json.dumps([factory.carbon, factory.site.country, factory.site.grid_region,
                      str(config_path) if config_path else None], sort_keys=True, default=str)
    hit = _CARBON.get(key)
    if hit is None:
        hit = _CARBON[key] = carbon_setup(factory, Path(config_path) if config_path else None)
        if len(_CARBON) > _CARBON_KEEP:
            _CARBON.popitem(last=False)
    return hit


def _per(num: float | None, den: float | None) -> float | None:
    return num / den if num is not None and den is not None and den > 0 else None


def run_replication(factory_doc: dict, hours: float, warmup_hours: float, seed: int, *,
                    config_path: str | Path | None = None) -> dict[str, Any]:
    """Simulate ``warmup_hours + hours``, measure the last ``hours``: see the module's docstring.

    ``config_path``: the file the doc came from, so a ``carbon:`` block's relative factor files
    resolve beside it (None: relative to the working directory)."""
    check_args(hours, warmup_hours, seed)
    factory = factory_from_doc(factory_doc, str(config_path) if config_path else "<factory model>")
    warmup_s, span_s = warmup_hours * 3600.0, hours * 3600.0
    sim = FactorySim(factory, seed)
    sim.run(warmup_s + span_s)
    frozen = sim.truth(sim.t0 + warmup_s)  # the warm-up fills the buffers; it is not measured
    report = compute_kpis(frozen, factory)
    cfg, registry = carbon_for(factory, config_path)
    em = account_log(factory, frozen, None, cfg, registry, origin="simulated")
    site = report.site

    hourly = hourly_totals(em.records, site_hours(factory, frozen.t_start, frozen.t_end))
    hourly_kwh = [float(x) for x in hourly["grid_kwh"] + hourly["onsite_kwh"]]
    scope1 = math.fsum(r.co2e_kg for r in em.records if r.scope == "1")
    scope2 = math.fsum(r.co2e_kg for r in em.records if r.scope == "2" and r.method == "location")
    shares = active_shares(factory, report.stations)
    out: dict[str, Any] = {
        "seed": seed,
        "hours": float(hours),
        "warmup_hours": float(warmup_hours),
        "time": {k: float(getattr(site, k)) for k in TIME_ELEMENTS},
        **{k: (int(getattr(site, k)) if k == "failures" else float(getattr(site, k))) for k in COUNTS},
        "energy_kwh": site.energy_kwh,
        "kwh_per_good": site.kwh_per_good,
        "throughput_per_h": site.good / hours,
        **{k: getattr(site, k) for k in KPIS},
        "scope1_co2e_kg": scope1,
        "scope2_location_co2e_kg": scope2,
        "co2e_kg_per_good": _per(scope1 + scope2, site.good) if em.records else None,
        "bottleneck": bottleneck_of(shares),
        "active_share": shares,
        "hourly_kwh": hourly_kwh,
    }
    return _plain(out)


def _plain(x):
    """Python floats and ints only (no numpy scalars), so results compare and serialise exactly."""
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.floating):
        return float(x)
    return x
