"""Scope 2: purchased electricity and heat, dual reported (GHG Protocol Scope 2 Guidance, 2015).

- Location-based (ch. 6.6): kWh x the grid-average factor of where the energy is used, either an
  annual factor or an hourly series time-aligned with the meter windows.
- Market-based (ch. 6.7): consumption covered by contractual instruments (GECs, PPAs, supplier
  contracts) takes the instrument's factor; the rest takes the residual mix (China: the national
  factor excluding market-traded non-fossil power). Instruments must meet the Scope 2 Quality
  Criteria (ch. 7): retired, same market, same vintage year as the consumption they cover.
- On-site generation that is self-consumed has zero Scope 2 emissions and is reported apart.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from factory_models.records import iso_utc

from .config import Instrument


class InstrumentError(ValueError):
    """A contractual instrument that cannot be claimed (vintage, market, not retired)."""


def location_co2_kg(energy_kwh, factor_kg_per_kwh):
    """Location-based CO2 (kg): energy times the grid-average factor (scalar or per window)."""
    return np.asarray(energy_kwh, dtype=np.float64) * factor_kg_per_kwh


def market_co2_kg(energy_kwh, covered_kwh, instrument_kg_per_kwh, residual_kg_per_kwh):
    """Market-based CO2 (kg): covered energy at the instrument factor, the rest at the residual mix."""
    e = np.asarray(energy_kwh, dtype=np.float64)
    c = np.asarray(covered_kwh, dtype=np.float64)
    return c * instrument_kg_per_kwh + (e - c) * residual_kg_per_kwh


def _year(ts: float) -> int:
    return datetime.fromtimestamp(ts, tz=timezone.utc).year


class InstrumentLedger:
    """The volumes of the instruments still unclaimed over one reporting period.

    Instruments are claimed against consumption in time order, in the order the config lists them,
    until their volume is used up: so accounting a period in several calls (the twin's continuous
    accounting) claims each kWh of a certificate once, never twice. Create one per reporting period
    and pass it to every ``account`` call of that period.
    """

    def __init__(self, instruments: list[Instrument], t0: float, t1: float):
        years = set(range(_year(t0), _year(max(t0, t1 - 1e-6)) + 1))
        problems = []
        for x in instruments:
            if x.vintage not in years:
                problems.append(
                    f"instrument {x.id!r} ({x.kind}) has vintage {x.vintage}, outside the reporting period "
                    f"{iso_utc(t0)} to {iso_utc(t1)} (years {', '.join(map(str, sorted(years)))}); "
                    f"the Scope 2 Quality Criteria require the same vintage as the consumption"
                )
            if not x.retired:
                problems.append(f"instrument {x.id!r} is not retired and cannot be claimed")
        if problems:
            raise InstrumentError("; ".join(problems))
        self.instruments = list(instruments)
        self.remaining_kwh = {x.id: x.volume_kwh for x in instruments}

    def claim(self, start: np.ndarray, kwh: np.ndarray) -> dict[str, np.ndarray]:
        """Claim instruments against consumption ``kwh`` of intervals starting at ``start`` (in time order).

        Returns, per instrument id, the kWh it covers in each interval; consumption of another year
        than an instrument's vintage is not covered by it.
        """
        uncovered = np.asarray(kwh, dtype=np.float64).copy()
        years = np.array([_year(t) for t in start], dtype=np.int64) if len(start) else np.zeros(0, np.int64)
        out = {}
        for x in self.instruments:
            eligible = np.where(years == x.vintage, uncovered, 0.0)
            before = np.cumsum(eligible) - eligible  # eligible kWh earlier in time
            take = np.clip(self.remaining_kwh[x.id] - before, 0.0, eligible)
            self.remaining_kwh[x.id] -= float(take.sum())
            uncovered -= take
            out[x.id] = take
        return out

    def unclaimed(self) -> dict[str, float]:
        """kWh of each instrument not (yet) matched by consumption; reported, never carried silently."""
        return {k: v for k, v in self.remaining_kwh.items() if v > 1e-9}
