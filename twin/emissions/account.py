"""Emissions of a run: the site meters of an event log through ``carbon.account``, and each station's
and line's share of Scope 2 (location-based) from its own sub-meter.

Site meters map onto carbon meter kinds by their kind in the factory model. When the factory has
no grid-import readings, the sum of the station sub-meters stands in for it, flagged ``estimated``
in every record (a sub-meter sum misses lighting, HVAC and compressors).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

import carbon
from factory_models import ConfigError, EmissionsRecord, Factory

from twin.kpi.eventlog import N_CHANNELS, Channel, FrozenLog

#: factory meter kind -> (event-log channel, unit of its readings)
METER_CHANNEL = {
    "grid_import": (Channel.ENERGY_KWH, "kWh"),
    "pv": (Channel.ENERGY_KWH, "kWh"),
    "natural_gas": (Channel.VOLUME, "Nm3"),
    "compressed_air": (Channel.VOLUME, "m3"),
}


@dataclass
class Emissions:
    records: list[EmissionsRecord]
    summary: dict
    config: carbon.CarbonConfig
    registry: carbon.Registry
    notes: list[str]


def carbon_setup(factory: Factory, config_path: Path | None, override: Path | None = None):
    """The carbon config and registry for a factory: ``--carbon FILE``, else the factory's
    ``carbon:`` block, else the defaults for its site (its country's and grid region's factors)."""
    try:
        if override is not None:
            return carbon.load_carbon_config(override)
        if factory.carbon is not None:
            cfg, reg = carbon.load_carbon_config(factory.carbon)
            if cfg.factor_files and config_path is not None:  # relative to the factory file
                cfg = cfg.model_copy(update={"factor_files": [str(Path(config_path).parent / f) for f in cfg.factor_files]})
                reg = cfg.registry()
            return cfg, reg
        cfg = carbon.CarbonConfig.for_site(factory.site)
        return cfg, cfg.registry()
    except ConfigError:
        raise
    except ValueError as exc:  # an unknown factor id, a bad instrument: name the file and the block
        raise ConfigError(override or config_path or "<factory>", [f"carbon: {exc}"]) from None


def _readings(log: FrozenLog, unit: int, channel: int) -> tuple[np.ndarray, np.ndarray]:
    c = log.counters
    k = unit * N_CHANNELS + channel
    a, b = c.offsets[k], c.offsets[k + 1]
    t, v = c.t[a:b], c.value[a:b]
    ok = np.isfinite(v)
    return t[ok], v[ok]


def meter_series(factory: Factory, log: FrozenLog, station_energy_kwh: float | None) -> tuple[list, list[str]]:
    """Carbon ``MeterSeries`` for every site meter with at least two readings, and notes on the rest."""
    series, notes = [], []
    first_meter = log.n_stations
    has_grid = False
    for i, meter in enumerate(factory.meters):
        channel, unit = METER_CHANNEL[meter.kind]
        t, v = _readings(log, first_meter + i, channel)
        if len(t) < 2:
            notes.append(f"meter {meter.name} ({meter.kind}): fewer than two readings, not accounted")
            continue
        ncv = getattr(meter, "ncv_mj_per_nm3", None)
        series.append(carbon.series_from_cumulative(meter.name, meter.kind, unit, t, v, ncv_mj_per_nm3=ncv))
        has_grid |= meter.kind == "grid_import"
    if not has_grid and station_energy_kwh is not None and station_energy_kwh > 0 and log.t_end > log.t_start:
        series.append(carbon.MeterSeries(
            "stations", "grid_import", "kWh", np.array([log.t_start]), np.array([log.t_end]),
            np.array([station_energy_kwh]), np.array([True]),
        ))
        notes.append("no grid-import readings: Scope 2 from the sum of station sub-meters (estimated)")
    return series, notes


def account_log(factory: Factory, log: FrozenLog, report, cfg, registry, edges=None) -> Emissions:
    """Emissions over the log's span (and per window with ``edges``); fills ``co2e_kg`` in ``report``."""
    station_kwh = [w.energy_kwh for w in report.stations if w.energy_kwh is not None]
    series, notes = meter_series(factory, log, sum(station_kwh) if station_kwh else None)
    records: list[EmissionsRecord] = []
    if series and log.t_end > log.t_start:
        records = carbon.account(series, cfg, registry, log.t_start, log.t_end, site=factory.site.name)
    summary = carbon.emissions_summary(records)
    intensity = carbon.grid_intensity_kg_per_kwh(records, "location")
    if intensity is None and records == [] and station_kwh:
        # no meter data at all: the configured annual grid factor, applied to the sub-meters
        factor = registry.get(cfg.grid_factor)
        if factor.kind == "grid_electricity":
            intensity = carbon.station_co2e(1.0, factor)
            notes.append(f"station CO2e from the configured grid factor {factor.id} (no grid meter data)")
    _fill(report.stations + report.lines, intensity)
    # the site's figure is its inventory: Scope 1 plus Scope 2 location-based (PV counts zero)
    report.site.co2e_kg = (summary["scope1_co2e_kg"] + summary["scope2_location_co2e_kg"]) if records else (
        None if report.site.energy_kwh is None or intensity is None else report.site.energy_kwh * intensity)
    if edges is not None and report.windows:
        window_records = carbon.account(series, cfg, registry, log.t_start, log.t_end, windows=edges_within(edges, log),
                                        site=factory.site.name) if series else []
        for w in report.windows:
            recs = [r for r in window_records if r.start < w.end and r.end > w.start]
            if w.station is None and w.line is None and recs:
                w.co2e_kg = sum(r.co2e_kg for r in recs if r.scope == "1" or r.method == "location")
            else:
                _fill([w], carbon.grid_intensity_kg_per_kwh(recs, "location") or intensity)
    return Emissions(records, summary, cfg, registry, notes)


def edges_within(edges, log: FrozenLog) -> np.ndarray:
    """Window edges clipped to the log's span (accounting covers only time with data)."""
    e = np.asarray(edges, dtype=np.float64)
    inner = e[(e > log.t_start) & (e < log.t_end)]
    return np.concatenate(([log.t_start], inner, [log.t_end]))


def _fill(items, intensity: float | None) -> None:
    for w in items:
        if w.energy_kwh is not None and intensity is not None:
            w.co2e_kg = w.energy_kwh * intensity
