"""ISO 22400-2 KPIs of every station, line and the site, from a frozen event log.

``compute_kpis(log, factory, edges=None, *, counter_modulus=None) -> KpiReport`` runs the kernels of
``twin.kpi.kernels`` once over the whole span ``[log.t_start, log.t_end]`` and, when ``edges`` are
given, once over those windows, and turns the summed time elements and counts into KPIs.

Definitions (ISO 22400-2:2014 names, read from the public encodings cited in
``docs/kpis.md``, which also gives the state mapping). These rules are the
contract:

- Time elements per station: APT = PRODUCING, ASUT = SETUP, ADET = DOWN, ADOT = STARVED + BLOCKED
  + IDLE; ``unknown_s`` = UNKNOWN (before a unit's first state sample, after the end of data,
  invalid codes, connection gaps). POT = window time - NO_SHIFT - UNKNOWN (time without data is
  neither planned nor lost, so it is left out of every denominator and reported instead);
  PBT = POT - PLANNED_STOP; AUPT = APT + ASUT.
- availability = APT / PBT. effectiveness ("performance") = sum over products of PRU x PQ / APT,
  never capped: above 1 + 1e-9 it carries the flag ``performance_above_1`` (the ideal cycle time is
  probably too long). An increase of PRODUCED is booked with the product in effect strictly before
  the reading's timestamp: a product change logged at the same instant as the reading (the machine
  finished the last part of one product and switched) takes effect after it, so the finished part
  keeps the old product's ideal cycle time. Without any earlier product sample the station's default
  product applies (the only product when there is one, else unknown). Units produced while the
  product is unknown add no ideal time and set the flag ``unknown_product`` (performance is then
  understated). quality = GQ / PQ.
  OEE = availability x performance x quality; NEE = AUPT / PBT x performance x quality (setup is
  not a loss in NEE).
- Parts across a gap (``kernels.gap_parts``): a PRODUCED increment whose two readings bracket UNKNOWN
  state time is reported as ``produced_in_gap`` and left out of performance, with its ideal time and
  the PRODUCING time between those readings: performance = (ideal time - its gap part) / (APT - the
  PRODUCING time set aside), None when no attributable part is left. ``produced``, ``good``,
  ``scrap`` and quality keep every part counted (their number and quality are measured; only their
  time is unknown). A line's ``produced_in_gap`` is its output stations', the site's its lines'.
  A row with parts across a gap carries the flag ``produced_in_gap``.
- A ratio whose denominator is zero is None, never 0 or 1. With nothing produced in a window the
  production ratios (performance, quality, OEE, NEE) are None; availability stays APT / PBT.
- failures (``kernels.failure_spells``): a DOWN spell is DOWN time that a PLANNED_STOP, NO_SHIFT or
  UNKNOWN interlude does not end (a repair a break or a shift end interrupts is one failure, its
  repair time the DOWN time on both sides); a spell with less DOWN time than the site's
  ``micro_stop_s`` is a micro-stop: its time stays in ADET, but it is no failure. A failure and its
  repair time are booked in the window where the spell began. MTBF = AUPT / failures and MTTR =
  repair time / failures, None without failures (ISO 22400-2: mean busy time between failures,
  mean time to restore). Micro-stops are counted per unit in ``diagnostics``.
- Counts come from cumulative counters (resets and rollovers handled, never negative). When a
  unit has no valid GOOD reading at all, good = produced - scrap - rework (flag ``good_derived``).
- energy_kwh of a unit: its ENERGY_KWH counter when it has at least two valid readings; else the
  trapezoid of its power gauge when it has any valid power sample (flag ``energy_from_power``);
  else None. kwh_per_good = energy_kwh / good.
- Line: time elements, failures, ideal time and energy are sums over its machines. good = good of
  its output station (``line.output``; for a parallel station the sum of its machines); scrap and
  rework = sums over its stations; produced = good + scrap (parts that left the line or were
  scrapped on it). Every ratio is recomputed from these sums, never averaged.
- Site: sums over lines. Its energy = sum of station energy, unless a ``grid_import`` meter has
  energy, in which case site energy = grid import + self-consumed generation (PV generation minus
  ``grid_export``, at least 0; all PV when there is no export meter).
  An energy sum with some members unknown adds the known ones and flags ``energy_partial``.
- ``co2e_kg`` stays None: the carbon accounting fills it.
- Readings rejected by the kernels (NaN, infinite or negative counters, non-finite power, invalid
  state codes) and resets, rollovers and unknown-product units are counted per unit in
  ``KpiReport.diagnostics`` and logged as one warning.
- The span ``[log.t_start, log.t_end]`` must be finite with ``t_end >= t_start``. A zero-length
  span (``t_end == t_start``, e.g. the live twin's first tick or a minute that has just begun) is
  legal and holds nothing: every time element, count, failure and ideal time is 0, so every ratio
  is None (energy is 0, or None without an energy source); a reading exactly at that instant is
  not counted in it. Rejected readings, resets and rollovers are still counted in ``diagnostics``.
- Windows are half-open ``[edges[i], edges[i+1])``; a counter reading exactly at the last edge
  belongs to the last window, so the end-of-run snapshot counts in the whole span. Two calls over
  adjacent spans would therefore both count a reading exactly at their shared edge.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from factory_models.records import KpiWindow
from factory_models.schema import Factory
from factory_models.states import N_STATES, State
from twin.kpi import kernels
from twin.kpi.diagnostics import diagnostics_of
from twin.kpi.eventlog import CONTINUOUS, N_CHANNELS, Channel, EventLog, FrozenLog
from twin.kpi.inputs import check_edges, check_log, counter_modulus_array

log_ = logging.getLogger(__name__)

_ADOT = (State.STARVED, State.BLOCKED, State.IDLE)


@dataclass
class KpiReport:
    """KPIs over the whole span (``stations``, ``lines``, ``site``) and, if edges were given, per window.

    ``windows`` holds, for each window in order, every station, then every line, then the site.
    """

    stations: list[KpiWindow]
    lines: list[KpiWindow]
    site: KpiWindow
    windows: list[KpiWindow] = field(default_factory=list)
    diagnostics: dict = field(default_factory=dict)


@dataclass
class _Totals:
    """Summable inputs of one KpiWindow."""

    seconds: np.ndarray  # [N_STATES]
    produced: float = 0.0
    good: float = 0.0
    scrap: float = 0.0
    rework: float = 0.0
    failures: int = 0
    repair_s: float = 0.0
    ideal_s: float = 0.0
    produced_in_gap: float = 0.0
    ideal_gap_s: float = 0.0
    apt_gap_s: float = 0.0
    unknown_product: float = 0.0
    energy_kwh: float | None = None
    flags: set = field(default_factory=set)


@dataclass
class _Measured:
    """Kernel outputs for one edge array."""

    seconds: np.ndarray  # [units, windows, states]
    failures: np.ndarray  # [units, windows]
    repair_s: np.ndarray  # [units, windows]
    micro_stops: np.ndarray  # [units, windows]
    invalid_states: np.ndarray  # [units]
    delta: np.ndarray  # [units, channels, windows]
    resets: np.ndarray  # [units, channels]
    rollovers: np.ndarray
    bad_counts: np.ndarray
    readings: np.ndarray
    power_kwh: np.ndarray  # [units, windows]
    power_bad: np.ndarray  # [units]
    power_valid: np.ndarray  # [units]
    ideal_s: np.ndarray  # [stations, windows]
    unknown_units: np.ndarray  # [stations, windows]
    in_gap: np.ndarray  # [stations, windows]: parts, their ideal time, PRODUCING time set aside
    ideal_gap_s: np.ndarray
    apt_gap_s: np.ndarray


def _measure(log: FrozenLog, edges: np.ndarray, modulus: np.ndarray, default_product: np.ndarray,
             ideal_cycle_s: np.ndarray, micro_stop_s: float) -> _Measured:
    n_units = len(log.units)
    st, ct, pw, pr = log.states, log.counters, log.power, log.products_stream
    seconds, _stops, invalid = kernels.state_durations(st, edges, float(log.t_end))
    failures, repair, micro = kernels.failure_spells(st, edges, float(log.t_end), micro_stop_s)
    delta, resets, rollovers, bad, readings = kernels.counter_deltas(ct, edges, modulus, CONTINUOUS)
    kwh, _covered, pbad = kernels.trapezoid_energy(pw, edges)
    mix = kernels.product_mix(pr, default_product, ideal_cycle_s)
    ideal, unknown = kernels.ideal_time(ct, mix, edges, float(modulus[Channel.PRODUCED]))
    in_gap, ideal_gap, apt_gap = kernels.gap_parts(ct, st, mix, edges, float(log.t_end), float(modulus[Channel.PRODUCED]))
    n_w = edges.shape[0] - 1
    shape = (n_units, N_CHANNELS)
    return _Measured(
        seconds=seconds, failures=failures, repair_s=repair, micro_stops=micro, invalid_states=invalid,
        delta=delta.reshape(n_units, N_CHANNELS, n_w), resets=resets.reshape(shape),
        rollovers=rollovers.reshape(shape), bad_counts=bad.reshape(shape), readings=readings.reshape(shape),
        power_kwh=kwh, power_bad=pbad, power_valid=np.diff(pw.offsets) - pbad,
        ideal_s=ideal, unknown_units=unknown, in_gap=in_gap, ideal_gap_s=ideal_gap, apt_gap_s=apt_gap,
    )


def _nothing_booked(m: _Measured) -> _Measured:
    """The measurement of a zero-length span: no time and no event in it; stream diagnostics kept."""
    for name in ("seconds", "failures", "repair_s", "micro_stops", "delta", "power_kwh", "ideal_s", "unknown_units", "in_gap", "ideal_gap_s",
                 "apt_gap_s"):
        getattr(m, name)[...] = 0
    return m


def _unit_energy(m: _Measured, u: int, w: int) -> tuple[float | None, bool]:
    """(energy kWh or None, whether it came from the power gauge)."""
    if m.readings[u, Channel.ENERGY_KWH] >= 2:
        return float(m.delta[u, Channel.ENERGY_KWH, w]), False
    if m.power_valid[u] > 0:
        return float(m.power_kwh[u, w]), True
    return None, False


def _station_totals(m: _Measured, u: int, w: int) -> _Totals:
    d = m.delta[u, :, w]
    tot = _Totals(seconds=m.seconds[u, w].copy(), produced=float(d[Channel.PRODUCED]),
                  scrap=float(d[Channel.SCRAP]), rework=float(d[Channel.REWORK]),
                  failures=int(m.failures[u, w]), repair_s=float(m.repair_s[u, w]), ideal_s=float(m.ideal_s[u, w]),
                  unknown_product=float(m.unknown_units[u, w]), produced_in_gap=float(m.in_gap[u, w]),
                  ideal_gap_s=float(m.ideal_gap_s[u, w]), apt_gap_s=float(m.apt_gap_s[u, w]))
    if m.readings[u, Channel.GOOD] > 0:
        tot.good = float(d[Channel.GOOD])
    else:
        tot.good = tot.produced - tot.scrap - tot.rework
        tot.flags.add("good_derived")
    tot.energy_kwh, from_power = _unit_energy(m, u, w)
    if from_power:
        tot.flags.add("energy_from_power")
    return tot


def _sum_energy(values: list[float | None], flags: set) -> float | None:
    known = [v for v in values if v is not None]
    if not known:
        return None
    if len(known) < len(values):
        flags.add("energy_partial")
    return float(math.fsum(known))


def _sum_totals(parts: list[_Totals]) -> _Totals:
    """Time elements, failures, ideal time, counts and energy summed; flags merged (not energy_partial logic)."""
    tot = _Totals(seconds=np.sum([p.seconds for p in parts], axis=0) if parts else np.zeros(N_STATES))
    tot.failures = sum(p.failures for p in parts)
    tot.repair_s = math.fsum(p.repair_s for p in parts)
    tot.ideal_s = math.fsum(p.ideal_s for p in parts)
    tot.ideal_gap_s = math.fsum(p.ideal_gap_s for p in parts)
    tot.apt_gap_s = math.fsum(p.apt_gap_s for p in parts)
    tot.unknown_product = math.fsum(p.unknown_product for p in parts)
    tot.scrap = math.fsum(p.scrap for p in parts)
    tot.rework = math.fsum(p.rework for p in parts)
    tot.energy_kwh = _sum_energy([p.energy_kwh for p in parts], tot.flags)
    for p in parts:
        tot.flags |= p.flags & {"good_derived", "energy_partial", "energy_from_power"}
    return tot


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def _finish(tot: _Totals, site: str, line: str | None, station: str | None, start, end) -> KpiWindow:
    s = tot.seconds
    apt, asut, adet = float(s[State.PRODUCING]), float(s[State.SETUP]), float(s[State.DOWN])
    adot = float(sum(s[x] for x in _ADOT))
    unknown = float(s[State.UNKNOWN])
    pot = float(s.sum()) - float(s[State.NO_SHIFT]) - unknown
    pbt = pot - float(s[State.PLANNED_STOP])
    aupt = apt + asut
    flags = set(tot.flags)
    availability = _ratio(apt, pbt)
    performance = quality = oee = nee = None
    if tot.produced - tot.produced_in_gap > 0:
        performance = _ratio(tot.ideal_s - tot.ideal_gap_s, apt - tot.apt_gap_s)
    if tot.produced > 0:
        quality = tot.good / tot.produced
    if tot.unknown_product > 0:
        flags.add("unknown_product")
    if tot.produced_in_gap > 0:  # said where flags are shown: the text summaries print them
        flags.add("produced_in_gap")
    if performance is not None and performance > 1 + 1e-9:
        flags.add("performance_above_1")
    if availability is not None and performance is not None and quality is not None:
        oee = availability * performance * quality
    if pbt > 0 and performance is not None and quality is not None:
        nee = aupt / pbt * performance * quality
    if tot.good < 0:
        flags.add("good_negative")
    energy = tot.energy_kwh
    return KpiWindow(
        site=site, line=line, station=station, start=start, end=end,
        pot_s=pot, pbt_s=pbt, apt_s=apt, asut_s=asut, adet_s=adet, adot_s=adot, unknown_s=unknown,
        produced=tot.produced, produced_in_gap=tot.produced_in_gap, good=tot.good, scrap=tot.scrap, rework=tot.rework, failures=tot.failures,
        availability=availability, performance=performance, quality=quality, oee=oee, nee=nee,
        mtbf_s=aupt / tot.failures if tot.failures else None,
        mttr_s=tot.repair_s / tot.failures if tot.failures else None,
        energy_kwh=energy, kwh_per_good=energy / tot.good if energy is not None and tot.good > 0 else None,
        flags=sorted(flags),
    )


class _Layout:
    """Which units belong to which line and station, and which meters are grid or PV."""

    def __init__(self, factory: Factory):
        self.factory = factory
        self.site = factory.site.name
        self.units = factory.station_units()
        self.n_stations = len(self.units)
        self.line_units: dict[str, list[int]] = {}
        self.output_units: dict[str, list[int]] = {}
        for u, (line, spec, _name) in enumerate(self.units):
            self.line_units.setdefault(line.name, []).append(u)
            if spec.name == line.output:
                self.output_units.setdefault(line.name, []).append(u)
        self.lines = [ln.name for ln in factory.lines]
        self.meters = [(self.n_stations + j, m) for j, m in enumerate(factory.meters)]
        products = factory.product_names()
        self.ideal_cycle_s = np.array([[spec.cycle_time_s[p] for p in products] for _, spec, _ in self.units],
                                      dtype=np.float64).reshape(self.n_stations, len(products))
        self.default_product = np.full(self.n_stations, 0 if len(products) == 1 else -1, dtype=np.int64)

    def windows(self, m: _Measured, w: int, start, end) -> tuple[list[KpiWindow], list[KpiWindow], KpiWindow]:
        stations = [_station_totals(m, u, w) for u in range(self.n_stations)]
        st_out = [_finish(tot, self.site, line.name, name, start, end)
                  for tot, (line, _spec, name) in zip(stations, self.units)]
        lines = []
        for ln in self.lines:
            members = [stations[u] for u in self.line_units.get(ln, [])]
            tot = _sum_totals(members)
            tot.good = math.fsum(stations[u].good for u in self.output_units.get(ln, []))
            tot.produced_in_gap = math.fsum(stations[u].produced_in_gap for u in self.output_units.get(ln, []))
            tot.produced = tot.good + tot.scrap
            lines.append(tot)
        ln_out = [_finish(tot, self.site, name, None, start, end) for tot, name in zip(lines, self.lines)]
        site = _sum_totals(lines)
        site.good = math.fsum(t.good for t in lines)
        site.produced = math.fsum(t.produced for t in lines)
        site.produced_in_gap = math.fsum(t.produced_in_gap for t in lines)
        grid = [self.meter_energy(m, u, w) for u, meter in self.meters if meter.kind == "grid_import"]
        if any(e is not None for e in grid):
            site.flags = (site.flags - {"energy_partial"}) | {"energy_from_grid_meter"}
            pv = [self.meter_energy(m, u, w) for u, meter in self.meters if meter.kind == "pv"]
            export = [self.meter_energy(m, u, w) for u, meter in self.meters if meter.kind == "grid_export"]
            # what the site consumed: imports + self-consumed generation (generated - exported, never
            # below 0), as the emissions ledger counts it for each hour
            own = max(math.fsum(e for e in pv if e is not None) - math.fsum(e for e in export if e is not None), 0.0)
            site.energy_kwh = math.fsum(e for e in grid if e is not None) + own
        return st_out, ln_out, _finish(site, self.site, None, None, start, end)

    @staticmethod
    def meter_energy(m: _Measured, u: int, w: int) -> float | None:
        return _unit_energy(m, u, w)[0]


def compute_kpis(log: FrozenLog | EventLog, factory: Factory, edges=None, *,
                 counter_modulus: float | Mapping | None = None) -> KpiReport:
    """ISO 22400-2 KPIs of each station, line and the site; see the module docstring for the rules.

    ``log``: the event log (an ``EventLog`` is frozen first), its units in ``factory.unit_names()``
    order. ``edges``: optional window edges (epoch s, strictly increasing); then ``windows`` holds
    every station, line and the site per window. ``counter_modulus``: rollover modulus of the
    cumulative counters, one number for all channels or a mapping by channel (e.g.
    ``{"produced": 65536}`` for a 16-bit PLC counter); None: the factory's ``kpi.counter_rollover``
    (by default none: every decrease is a reset).
    """
    from twin.kpi.warmup import wait_ready  # here, not at the top: ``python -m twin.kpi.warmup`` runs it

    wait_ready()  # a warm-up in progress is compiling these kernels: wait for it, do not compile twice
    if isinstance(log, EventLog):
        log = log.freeze()
    check_log(log, factory)
    modulus = counter_modulus_array(factory.kpi.counter_rollover if counter_modulus is None else counter_modulus)
    layout = _Layout(factory)
    span = np.array([log.t_start, log.t_end], dtype=np.float64)
    micro_stop_s = float(factory.site.micro_stop_s)
    whole = _measure(log, span, modulus, layout.default_product, layout.ideal_cycle_s, micro_stop_s)
    if log.t_end == log.t_start:
        whole = _nothing_booked(whole)
    stations, lines, site = layout.windows(whole, 0, None, None)
    windows: list[KpiWindow] = []
    if edges is not None:
        e = check_edges(edges)
        m = _measure(log, e, modulus, layout.default_product, layout.ideal_cycle_s, micro_stop_s)
        for w in range(e.shape[0] - 1):
            st, ln, si = layout.windows(m, w, float(e[w]), float(e[w + 1]))
            windows.extend(st)
            windows.extend(ln)
            windows.append(si)
    diagnostics = diagnostics_of(whole, log, layout, modulus)
    rejected = {k: diagnostics[k] for k in ("bad_counter_readings", "bad_power_samples", "invalid_state_codes")
                if diagnostics[k]}
    if rejected:
        log_.warning("KPI core rejected readings (counted per unit): %s", rejected)
    return KpiReport(stations=stations, lines=lines, site=site, windows=windows, diagnostics=diagnostics)
