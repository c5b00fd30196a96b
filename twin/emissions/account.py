"""Emissions of a run: the site meters of an event log through the hourly ledger (``carbon``), and
the CO2e of every KPI row and window from the hour's effective grid intensity.

Site meters map onto carbon meter kinds by their kind in the factory model; each meter's counter
readings become activity per clock hour of the site (``carbon.hourly_activity``: resets, replaced
meters, rollovers, gaps), then records (``carbon.ledger``). When the factory has no grid-import
readings, the sum of the station energy counters stands in for it, as source ``stations``, every
hour of it estimated (a sub-meter sum misses lighting, HVAC and compressors).

Station and line CO2e = their energy x the effective intensity of the hours of their window
(location kg of the grid import / (grid import + self-consumed generation), so PV lowers it); an
hour with no electricity in the ledger takes the configured grid factor of that hour, disclosed in
the notes. Site CO2e = the ledger's Scope 1 + Scope 2 location-based of the window's hours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import carbon
from carbon.accounting import grid_factor_or_nan
from factory_models import ConfigError, EmissionsRecord, Factory
from twin.kpi import compute_kpis
from twin.kpi.eventlog import N_CHANNELS, Channel, FrozenLog

#: factory meter kind -> (event-log channel, unit of its readings)
METER_CHANNEL = {
    "grid_import": (Channel.ENERGY_KWH, "kWh"),
    "grid_export": (Channel.ENERGY_KWH, "kWh"),
    "pv": (Channel.ENERGY_KWH, "kWh"),
    "natural_gas": (Channel.VOLUME, "Nm3"),
    "compressed_air": (Channel.VOLUME, "m3"),
}
STATIONS = "stations"


@dataclass
class Emissions:
    records: list[EmissionsRecord]
    summary: dict
    config: carbon.CarbonConfig
    registry: carbon.Registry
    notes: list[str]
    meters: list[dict] = field(default_factory=list)
    origin: str = "measured"


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
    return c.t[a:b], c.value[a:b]


def site_hours(factory: Factory, t0: float, t1: float) -> np.ndarray:
    """Clock-hour edges of the site covering [t0, t1)."""
    return carbon.hour_edges(t0, t1, factory.site.timezone or factory.calendar.timezone)


def hourly_activities(factory: Factory, log: FrozenLog, edges: np.ndarray) -> tuple[list, list[str]]:
    """Each site meter's activity per hour of ``edges`` within the log's span, and notes."""
    acts, notes = [], []
    span = (log.t_start, log.t_end)
    first_meter = log.n_stations
    for i, meter in enumerate(factory.meters):
        channel, unit = METER_CHANNEL[meter.kind]
        t, v = _readings(log, first_meter + i, channel)
        if len(t) < 2:
            notes.append(f"meter {meter.name} ({meter.kind}): fewer than two readings, not accounted")
            continue
        acts.append(carbon.hourly_activity(meter.name, meter.kind, unit, t, v, edges,
                                           rollover=getattr(meter, "rollover", None), span=span))
    if not any(a.kind == "grid_import" and a.has_data.any() for a in acts):
        stations = _stations(log, edges, span)
        if stations is not None:
            acts = [a for a in acts if a.kind != "grid_import"] + [stations]
            notes.append("no grid-import readings: Scope 2 from the sum of station sub-meters "
                         f"(source {STATIONS!r}, every hour estimated)")
    for a in acts:
        bad = {k: n for k, n in a.rejected.items() if n}
        if bad:
            notes.append(f"meter {a.meter}: readings rejected: " + ", ".join(f"{n} {k}" for k, n in sorted(bad.items())))
    return acts, notes


def _stations(log: FrozenLog, edges: np.ndarray, span) -> carbon.HourlyActivity | None:
    """The station energy counters summed per hour: the stand-in for a missing grid meter."""
    parts = []
    for u in range(log.n_stations):
        t, v = _readings(log, u, Channel.ENERGY_KWH)
        if len(t) >= 2:
            parts.append(carbon.hourly_activity(STATIONS, "grid_import", "kWh", t, v, edges, span=span))
    if not parts:
        return None
    act = np.sum([p.activity for p in parts], axis=0)
    first = np.fmin.reduce([p.first_reading for p in parts], axis=0)  # fmin/fmax: NaN means no reading
    return carbon.HourlyActivity(
        STATIONS, "grid_import", "kWh", edges, act, act.copy(), np.max([p.covered_s for p in parts], axis=0),
        np.sum([p.readings for p in parts], axis=0), np.sum([p.resets for p in parts], axis=0),
        first, np.fmax.reduce([p.last_reading for p in parts], axis=0),
        sum(p.rollovers for p in parts), None,
        {k: sum(p.rejected.get(k, 0) for p in parts) for k in carbon.counters.REJECTIONS}, sum(p.used for p in parts))


def account_log(factory: Factory, log: FrozenLog, report, cfg, registry, *, origin: str = "measured") -> Emissions:
    """The ledger of the log's span [t_start, t_end) (one record per source and clock hour of the
    site), and ``co2e_kg`` filled in every row and window of ``report`` (None: no KPI report) that has energy."""
    records: list[EmissionsRecord] = []
    notes: list[str] = []
    meters: list[dict] = []
    edges = site_hours(factory, log.t_start, log.t_end)
    if log.t_end > log.t_start:
        acts, notes = hourly_activities(factory, log, edges)
        ncv = {m.name: m.ncv_mj_per_nm3 for m in factory.meters if getattr(m, "ncv_mj_per_nm3", None)}
        book = carbon.ledger_records(acts, cfg, registry, site=factory.site.name, origin=origin, ncv_mj_per_nm3=ncv)
        records, meters = book.records, book.meters
        notes += book.warnings
    summary = carbon.emissions_summary(records)
    if report is not None:
        fill_co2e(report, records, edges, cfg, registry, log, notes, factory)
        if records:  # the whole run's site figure is exactly the ledger's sum, as printed and stored
            report.site.co2e_kg = math.fsum(r.co2e_kg for r in records if r.scope == "1" or r.method == "location")
    return Emissions(records, summary, cfg, registry, notes, meters, origin)


def fill_co2e(report, records: list[EmissionsRecord], edges: np.ndarray, cfg, registry, log: FrozenLog,
              notes: list[str] | None = None, factory: Factory | None = None) -> None:
    """``co2e_kg`` of every station, line and site row and window of ``report`` from the ledger's hours.

    A row inside one hour takes that hour's effective intensity. A row over several hours (the whole
    run, an 8-hour window) takes the intensity of each hour weighted by the row's own energy in it
    (with ``factory``: the KPI core over the clock hours), so a station that runs in the sunny hours
    gets the PV share of those hours; without it, by the site's electricity in each hour."""
    fallback = grid_factor_or_nan(registry.get(cfg.grid_factor), edges[:-1], edges[1:])
    intensity = carbon.effective_intensity(records, edges, fallback)
    hourly = carbon.summary.hourly_totals(records, edges)
    kwh = hourly["grid_kwh"] + hourly["onsite_kwh"]
    if notes is not None and np.any((kwh <= 0) & np.isfinite(fallback)) and report.stations:
        notes.append(f"station CO2e of hours without grid meter data from the configured grid factor {cfg.grid_factor}")
    # the part of each hour that lies in the log's span: what its records cover
    lo, hi = np.clip(edges[:-1], log.t_start, log.t_end), np.clip(edges[1:], log.t_start, log.t_end)
    covered = hi - lo
    own = _hourly_energy(factory, log, lo, hi, covered) if factory is not None and len(covered) > 1 else {}

    def weights(start, end):
        a, b = np.clip(lo, start, end), np.clip(hi, start, end)
        return np.divide(np.maximum(b - a, 0.0), covered, out=np.zeros(len(covered)), where=covered > 0)

    def window_intensity(w, energy=None):
        have = np.isfinite(intensity) & (w > 0)
        if not have.any():
            return None
        for e in (None if energy is None else w * energy, w * np.where(kwh > 0, kwh, 0.0)):
            if e is not None and e[have].sum() > 0:
                return float(np.sum((e * np.nan_to_num(intensity))[have]) / e[have].sum())
        return float(np.sum(w[have] * intensity[have]) / w[have].sum())

    whole = weights(log.t_start, log.t_end)
    for rows, w in ((report.stations + report.lines, whole), *(([x], weights(x.start, x.end)) for x in report.windows)):
        for row in rows:
            if row.station is None and row.line is None:
                continue
            i = window_intensity(w, own.get((row.line, row.station)))
            row.co2e_kg = None if row.energy_kwh is None or i is None else row.energy_kwh * i
    site_kg = hourly["site_kg"]
    report.site.co2e_kg = _site_co2e(report.site, records, site_kg, whole, window_intensity)
    for x in report.windows:
        if x.station is None and x.line is None:
            x.co2e_kg = _site_co2e(x, records, site_kg, weights(x.start, x.end), window_intensity)


def _hourly_energy(factory: Factory, log: FrozenLog, lo, hi, covered) -> dict[tuple, np.ndarray]:
    """Each station's and line's energy in each clock hour of the log's span (the KPI core's)."""
    keep = covered > 0
    if keep.sum() < 2:
        return {}
    cut = np.append(lo[keep], hi[keep][-1])
    out: dict[tuple, np.ndarray] = {}
    idx = np.nonzero(keep)[0]
    for w in compute_kpis(log, factory, cut).windows:
        if w.station is None and w.line is None or w.energy_kwh is None:
            continue
        arr = out.setdefault((w.line, w.station), np.zeros(len(covered)))
        arr[idx[int(np.searchsorted(cut, w.start, side="right")) - 1]] += w.energy_kwh
    return out


def _site_co2e(row, records, site_kg, w, window_intensity) -> float | None:
    """The site's figure is its inventory: Scope 1 + Scope 2 location-based (PV and export count zero)."""
    if records:
        return float(np.sum(site_kg * w)) if w is not None else None
    i = window_intensity(w)
    return None if row.energy_kwh is None or i is None else row.energy_kwh * i
