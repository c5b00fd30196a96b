"""Contractual instruments claimed once, when a report is made (GHG Protocol Scope 2 Guidance, 2015,
ch. 7 Scope 2 Quality Criteria and ch. 6.7 market-based method).

The claim is a function of the ledger alone: each instrument covers grid import hour by hour, in
time order, from the first hour it may cover (its vintage year in the site's time zone, narrowed
by ``valid_from``/``valid_to``), until its quantity is used up; instruments are taken in the order
the config lists them, each over what the earlier ones left uncovered. A report of a period takes
its slice of that one claim. So a kWh is claimed once however many reports are made, and the
market-based figures of consecutive periods add up to the figure of their union (the claim of an
hour depends only on the hours before it).

An instrument that is not retired, or is of another market than the site's, is refused with the
reason and claims nothing; the report lists it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np

from .config import Instrument
from .periods import day_start, year_bounds


@dataclass
class Claim:
    """What the instruments cover, per interval of ``start`` (the grid import hours given)."""

    start: np.ndarray
    covered: dict[str, np.ndarray]  # instrument id -> kWh covered in each hour
    accepted: list[Instrument]
    refused: list[dict]  # {"id", "kind", "volume_kwh", "vintage", "market", "reason"}

    def covered_total(self) -> np.ndarray:
        if not self.covered:
            return np.zeros(len(self.start))
        return np.sum(list(self.covered.values()), axis=0)


def refusal(x: Instrument, site_country: str) -> str | None:
    """Why an instrument cannot be claimed at this site (Scope 2 Quality Criteria), or None."""
    reasons = []
    if not x.retired:
        reasons.append("not retired (cancelled) on behalf of the reporting company")
    if x.market.upper() != site_country.upper():
        reasons.append(f"market {x.market.upper()} is not the site's market {site_country.upper()}")
    return "; ".join(reasons) or None


def eligibility(x: Instrument, tz: str | None) -> tuple[float, float]:
    """[start, end) epoch seconds of the hours an instrument may cover: its vintage year in the
    site's zone, narrowed by its validity dates."""
    a, b = year_bounds(x.vintage, tz)
    if x.valid_from is not None:
        a = max(a, day_start(x.valid_from, tz))
    if x.valid_to is not None:
        b = min(b, day_start(x.valid_to + timedelta(days=1), tz))
    return a, b


def earliest_eligible(instruments: list[Instrument], tz: str | None) -> float | None:
    spans = [eligibility(x, tz)[0] for x in instruments]
    return min(spans) if spans else None


def claim(instruments: list[Instrument], site_country: str, tz: str | None, start, kwh) -> Claim:
    """Claim the instruments against grid import ``kwh`` of the hours starting at ``start``.

    ``start`` must be increasing and hold every grid-import hour of the ledger from the earliest
    eligibility start up to the end of the period being reported (hours after it change nothing).
    """
    start = np.asarray(start, dtype=np.float64)
    uncovered = np.clip(np.asarray(kwh, dtype=np.float64), 0.0, None).copy()
    if len(start) > 1 and np.any(np.diff(start) <= 0):
        raise ValueError("grid import hours must be in increasing time order to claim instruments")
    covered, accepted, refused = {}, [], []
    for x in instruments:
        why = refusal(x, site_country)
        if why:
            refused.append({"id": x.id, "kind": x.kind, "volume_kwh": x.volume_kwh, "vintage": x.vintage,
                            "market": x.market, "reason": why})
            continue
        a, b = eligibility(x, tz)
        eligible = np.where((start >= a) & (start < b), uncovered, 0.0)
        before = np.cumsum(eligible) - eligible  # eligible kWh in the hours before
        take = np.clip(x.volume_kwh - before, 0.0, eligible)
        uncovered -= take
        covered[x.id] = take
        accepted.append(x)
    return Claim(start, covered, accepted, refused)


def instrument_rows(c: Claim, t0: float, t1: float, tz: str | None) -> list[dict]:
    """Per accepted instrument: claimed before the period, in it, and remaining at its end."""
    before = c.start < t0
    inside = (c.start >= t0) & (c.start < t1)
    rows = []
    for x in c.accepted:
        cov = c.covered[x.id]
        a, b = eligibility(x, tz)
        prior, now = float(cov[before].sum()), float(cov[inside].sum())
        rows.append({
            "id": x.id, "kind": x.kind, "volume_kwh": x.volume_kwh, "vintage": x.vintage, "market": x.market,
            "retired": x.retired, "factor": x.factor, "eligible_from": a, "eligible_to": b,
            "claimed_before_kwh": round(prior, 6), "claimed_kwh": round(now, 6),
            "remaining_kwh": round(max(x.volume_kwh - prior - now, 0.0), 6),
        })
    return rows
