"""A period of the store's emissions ledger as ``carbon.ledger_view.PeriodData``, by aggregate SQL.

Two grouped scans read everything a report needs: one per source (totals, factor ids, readings,
resets, estimated hours), one per hour (Scope 1, grid import, heat, self-consumed, exported). The
rows themselves never come into Python, so a year of hourly records for fifty meters reports in
about the time SQLite takes to sum them (bench/report.py).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from carbon.ledger_view import PeriodData, empty_hourly
from carbon.periods import hour_starts

_WHERE = "site = ? AND origin = ? AND start >= ? AND start < ? AND method != 'market'"

_GROUPS = f"""
SELECT source, scope, method, factor_id, activity_unit, count(*), total(activity), total(co2e_kg), total(co2_kg),
       total(ch4_kg), total(n2o_kg), total(estimated_activity), total(data_quality != 'measured'),
       total(readings), total(resets), min(first_reading), max(last_reading), group_concat(DISTINCT gwp_set)
FROM emissions WHERE {_WHERE}
GROUP BY source, scope, method, factor_id, activity_unit
"""

# the old ledger's market rows are left out: market-based is claimed when the report is made
_HOURS = f"""
SELECT start, max("end"),
       total(CASE WHEN scope = '1' THEN co2e_kg END),
       total(CASE WHEN scope = '2' AND method = 'location' AND activity_unit = 'kWh' THEN activity END),
       total(CASE WHEN scope = '2' AND method = 'location' AND activity_unit = 'kWh' THEN co2e_kg END),
       total(CASE WHEN scope = '2' AND method = 'location' AND activity_unit != 'kWh' THEN co2e_kg END),
       total(CASE WHEN method = 'onsite' THEN activity END),
       total(CASE WHEN method = 'export' THEN activity END),
       max(data_quality != 'measured')
FROM emissions WHERE {_WHERE}
GROUP BY start ORDER BY start
"""
_HOURLY_COLUMNS = ("scope1_co2e_kg", "grid_kwh", "grid_co2e_kg", "heat_co2e_kg", "onsite_kwh", "export_kwh")


def connect(path: str | Path) -> sqlite3.Connection:
    """A read-only connection (the store was opened, and so migrated, by ``twin.store.Store`` first)."""
    return sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)


def sites(db: sqlite3.Connection, origin: str, t0: float, t1: float) -> list[str]:
    rows = db.execute("SELECT DISTINCT site FROM emissions WHERE origin = ? AND start >= ? AND start < ?",
                      (origin, t0, t1)).fetchall()
    return sorted(r[0] for r in rows)


def origins(db: sqlite3.Connection, t0: float, t1: float) -> dict[str, int]:
    rows = db.execute("SELECT origin, count(*) FROM emissions WHERE start >= ? AND start < ? GROUP BY origin",
                      (t0, t1)).fetchall()
    return dict(rows)


def period_data(db: sqlite3.Connection, site: str, origin: str, t0: float, t1: float, tz: str,
                claim_from: float | None = None, rewrites: int = 0):
    """(PeriodData of [t0, t1), (hour starts, grid kWh) from ``claim_from`` to ``t1`` for the claim)."""
    groups = []
    gwp: set[str] = set()
    for row in db.execute(_GROUPS, (site, origin, t0, t1)):
        (source, scope, method, fid, unit, n, act, kg, co2, ch4, n2o, est_act, est_h, readings, resets,
         first, last, gwps) = row
        groups.append({"source": source, "scope": scope, "method": method, "factor_id": fid, "activity_unit": unit,
                       "n": int(n), "activity": act, "co2e_kg": kg, "co2_kg": co2, "ch4_kg": ch4, "n2o_kg": n2o,
                       "estimated_activity": est_act, "estimated_hours": int(est_h), "readings": int(readings),
                       "resets": int(resets), "first_reading": first, "last_reading": last})
        gwp.update(g for g in (gwps or "").split(",") if g)
    lo = t0 if claim_from is None else min(t0, claim_from)
    rows = db.execute(_HOURS, (site, origin, lo, t1)).fetchall()
    arr = np.array([r[:8] for r in rows], dtype=np.float64).reshape(-1, 8)
    est_flag = np.array([bool(r[8]) for r in rows], dtype=bool)
    hours = hour_starts(t0, t1, tz)
    hourly = empty_hourly(len(hours))
    has = np.zeros(len(hours), dtype=bool)
    est = np.zeros(len(hours), dtype=bool)
    inside = arr[:, 0] >= t0
    a = arr[inside]
    if len(a):
        i = np.searchsorted(hours, a[:, 0], side="right") - 1
        for k, name in enumerate(_HOURLY_COLUMNS, start=2):
            np.add.at(hourly[name], i, a[:, k])
        j = np.searchsorted(hours, a[:, 1], side="left")
        if np.all(j == i + 1):  # the ledger's hours: one hour each
            has[i] = True
            est[i] |= est_flag[inside]
        else:  # older whole-span rows cover every hour they span
            for lo_i, hi_j, e in zip(i, j, est_flag[inside]):
                has[lo_i:max(hi_j, lo_i + 1)] = True
                est[lo_i:max(hi_j, lo_i + 1)] |= e
    count = sum(g["n"] for g in groups)
    pd = PeriodData(site, origin, t0, t1, tz, hours, hourly, has, est, groups, sorted(gwp), rewrites, count)
    grid = arr[:, 3] > 0
    return pd, (arr[grid, 0], arr[grid, 3])
