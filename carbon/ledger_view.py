"""One period of the hourly emissions ledger, reduced to what a report shows.

A report never needs the ledger's rows one by one: it needs totals per source (with factor ids),
per meter coverage, and per clock hour the Scope 1, grid import, heat, self-consumed and exported
figures (the chart, and the certificates claimed hour by hour). ``PeriodData`` holds exactly that.
It is built from records in memory (``from_records``) or by aggregate SQL over the store
(``twin.emissions.ledger_sql``), which is what keeps a year of hourly records for fifty meters fast.

Record methods (the ledger contract): ``direct`` (Scope 1), ``location`` (Scope 2 grid import in
kWh, heat in GJ), ``onsite`` (self-consumed generation, kWh, 0 kg), ``export`` (exported
generation, kWh, 0 kg). ``market`` records of older stores are ignored: market-based figures are
computed when a report is made (``carbon.claims``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np

from .periods import hour_starts

LONG_ROWS = ("records longer than an hour (kept from an older store) count in the hour they start in; "
             "hours they span are counted as covered")
HOURLY_FIELDS = ("scope1_co2e_kg", "grid_kwh", "grid_co2e_kg", "heat_co2e_kg", "onsite_kwh", "export_kwh")


def _r(x) -> float | None:
    return None if x is None else round(float(x), 6)


@dataclass
class PeriodData:
    """The figures of one site, origin and period [t0, t1) of the ledger."""

    site: str
    origin: str
    t0: float
    t1: float
    tz: str
    hours: np.ndarray  # starts of every clock hour of the site's zone in the period
    hourly: dict[str, np.ndarray]  # HOURLY_FIELDS, one value per hour
    has_data: np.ndarray  # bool per hour: at least one record
    estimated: np.ndarray  # bool per hour: some activity of the hour estimated
    by_source: list[dict]  # per (source, scope, method, factor_id, activity_unit)
    gwp_sets: list[str] = field(default_factory=list)
    rewrites: int = 0  # hours written more than once (Store.emission_rewrites)
    n_records: int = 0
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        # one order whichever way the groups were read: Scope 1 first, then by source
        self.by_source.sort(key=lambda g: (g["scope"], g["source"], g["method"], g["factor_id"], g["activity_unit"]))

    def total(self, name: str) -> float:
        return float(self.hourly[name].sum())

    def meters(self) -> list[dict]:
        """Coverage per meter (source): hours, estimated hours, readings used, resets, first and last reading."""
        out: dict[str, dict] = {}
        for g in self.by_source:
            m = out.setdefault(g["source"], {
                "source": g["source"], "activity_unit": g["activity_unit"], "hours": 0, "estimated_hours": 0,
                "readings": 0, "resets": 0, "first_reading": None, "last_reading": None,
                "activity": 0.0, "estimated_activity": 0.0})
            m["hours"] += g["n"]
            m["estimated_hours"] += g["estimated_hours"]
            m["readings"] += g["readings"]
            m["resets"] += g["resets"]
            m["activity"] += g["activity"]
            m["estimated_activity"] += g["estimated_activity"]
            for k, pick in (("first_reading", min), ("last_reading", max)):
                if g[k] is not None:
                    m[k] = g[k] if m[k] is None else pick(m[k], g[k])
        return [{**m, "activity": _r(m["activity"]), "estimated_activity": _r(m["estimated_activity"])}
                for m in out.values()]

    def digest_payload(self) -> dict:
        """The aggregates a report is made from, canonical and rounded to 1e-6: hours with data only,
        so the same records give the same digest whatever period encloses them."""
        keep = self.has_data
        cols = [self.hours[keep].tolist()] + [np.round(self.hourly[k][keep], 6).tolist() for k in HOURLY_FIELDS]
        hours = [list(row) for row in zip(*cols, self.estimated[keep].tolist())]
        groups = sorted(
            ([g["source"], g["scope"], g["method"], g["factor_id"], g["activity_unit"], g["n"]]
             + [_r(g[k]) for k in ("activity", "co2e_kg", "co2_kg", "ch4_kg", "n2o_kg", "estimated_activity")]
             + [g["readings"], g["resets"], g["first_reading"], g["last_reading"]]) for g in self.by_source)
        return {"site": self.site, "origin": self.origin, "hours": hours, "sources": groups}


def digest(payload: dict) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def empty_hourly(n: int) -> dict[str, np.ndarray]:
    return {k: np.zeros(n) for k in HOURLY_FIELDS}


def hourly_field(scope: str, method: str, unit: str) -> tuple[str | None, str | None]:
    """Which hourly series a record's activity and its CO2e go to (None: not that one)."""
    if scope == "1":
        return None, "scope1_co2e_kg"
    if method == "location":
        return ("grid_kwh", "grid_co2e_kg") if unit == "kWh" else (None, "heat_co2e_kg")
    if method == "onsite":
        return "onsite_kwh", None
    if method == "export":
        return "export_kwh", None
    return None, None


def from_records(records, t0: float, t1: float, tz: str | None = "UTC", *, origin: str | None = None,
                 rewrites: int = 0) -> PeriodData:
    """The period's figures from records in memory (records of one site; old ``market`` ones ignored).

    A record counts when its start lies in [t0, t1), as in the store; records longer than an hour
    (older whole-window records) count in the hour they start in.
    """
    hours = hour_starts(t0, t1, tz)
    n = len(hours)
    hourly = empty_hourly(n)
    has = np.zeros(n, dtype=bool)
    est = np.zeros(n, dtype=bool)
    groups: dict[tuple, dict] = {}
    gwp: set[str] = set()
    sites: set[str] = set()
    count = 0
    for r in records:
        if r.method == "market" or not (t0 <= r.start < t1):
            continue
        if origin is not None and getattr(r, "origin", "measured") != origin:
            continue
        count += 1
        sites.add(r.site)
        i = int(np.searchsorted(hours, r.start, side="right")) - 1
        # a record longer than an hour covers every clock hour it spans, for coverage
        j = int(np.searchsorted(hours, r.end, side="left"))
        has[max(i, 0):max(j, i + 1)] = True
        estimated = r.data_quality != "measured"
        est[max(i, 0):max(j, i + 1)] |= estimated
        act_f, kg_f = hourly_field(r.scope, r.method, r.activity_unit)
        if act_f:
            hourly[act_f][i] += r.activity
        if kg_f:
            hourly[kg_f][i] += r.co2e_kg
        if r.gwp_set:
            gwp.add(r.gwp_set)
        key = (r.source, r.scope, r.method, r.factor_id, r.activity_unit)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {"source": r.source, "scope": r.scope, "method": r.method, "factor_id": r.factor_id,
                               "activity_unit": r.activity_unit, "n": 0, "activity": 0.0, "co2e_kg": 0.0,
                               "co2_kg": 0.0, "ch4_kg": 0.0, "n2o_kg": 0.0, "estimated_activity": 0.0,
                               "estimated_hours": 0, "readings": 0, "resets": 0,
                               "first_reading": None, "last_reading": None}
        g["n"] += 1
        for k in ("activity", "co2e_kg", "co2_kg", "ch4_kg", "n2o_kg"):
            g[k] += getattr(r, k)
        # older records carry no estimated part: an estimated record is estimated throughout
        g["estimated_activity"] += getattr(r, "estimated_activity", 0.0) or (r.activity if estimated else 0.0)
        g["estimated_hours"] += estimated
        g["readings"] += int(getattr(r, "readings", 0) or 0)
        g["resets"] += int(getattr(r, "resets", 0) or 0)
        for k, pick in (("first_reading", min), ("last_reading", max)):
            v = getattr(r, k, None)
            if v is not None:
                g[k] = v if g[k] is None else pick(g[k], v)
    if len(sites) > 1:
        raise ValueError(f"records of several sites {sorted(sites)}; report one site at a time")
    notes = [LONG_ROWS] if any(r.end - r.start > 3600.0 + 1e-6 for r in records if t0 <= r.start < t1) else []
    origin = origin or next((getattr(r, "origin", "measured") for r in records), "measured")
    return PeriodData(next(iter(sites), ""), origin, t0, t1, tz or "UTC", hours, hourly, has, est,
                      list(groups.values()), sorted(gwp), rewrites, count, notes)
