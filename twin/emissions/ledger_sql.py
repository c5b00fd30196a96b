"""A period of the store's emissions ledger as ``carbon.ledger_view.PeriodData``, by aggregate SQL.

Two scans read everything a report needs, and no row comes into Python: one grouped by source in
the table's own key order (totals, factor ids, readings, resets, estimated hours; SQLite streams
it without sorting), one grouped by hour (Scope 1, grid import, heat, self-consumed, exported, the
estimated flag and the hours written more than once). bench/report.py times it against a plain sum.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from carbon.ledger_view import LONG_ROWS, PeriodData, empty_hourly
from carbon.periods import hour_starts

# old ledgers' market rows are left out: market-based is claimed when the report is made
_WHERE = "origin = ? AND start >= ? AND start < ? AND method != 'market'"
_SUMS = """count(*), total(activity), total(co2e_kg), total(co2_kg), total(ch4_kg), total(n2o_kg),
       total(estimated_activity), total(data_quality != 'measured'), total(readings), total(resets),
       min(first_reading), max(last_reading), min(gwp_set), max(gwp_set)"""
# one group per meter and method in the key's order (site, source, scope, method, start, origin)
# (``+start``: no index on the hour for this one, which would visit the rows out of key order and sort)
_GROUPS = f"""SELECT site, source, scope, method, min(factor_id), max(factor_id), min(activity_unit),
       max(activity_unit), {_SUMS}
FROM emissions WHERE origin = ? AND +start >= ? AND +start < ? AND method != 'market' {{site}}
GROUP BY site, source, scope, method"""
# the rare meter whose factor or unit changed within the period: split by them
_SPLIT = f"""SELECT site, source, scope, method, factor_id, factor_id, activity_unit, activity_unit, {_SUMS}
FROM emissions WHERE {_WHERE} AND site = ? AND source = ? AND scope = ? AND method = ?
GROUP BY factor_id, activity_unit"""
_HOURS = f"""SELECT start, max("end"),
       total(CASE WHEN scope = '1' THEN co2e_kg END),
       total(CASE WHEN scope = '2' AND method = 'location' AND activity_unit = 'kWh' THEN activity END),
       total(CASE WHEN scope = '2' AND method = 'location' AND activity_unit = 'kWh' THEN co2e_kg END),
       total(CASE WHEN scope = '2' AND method = 'location' AND activity_unit != 'kWh' THEN co2e_kg END),
       total(CASE WHEN method = 'onsite' THEN activity END),
       total(CASE WHEN method = 'export' THEN activity END),
       max(data_quality != 'measured'), max(writes)
FROM emissions WHERE {_WHERE} AND site = ?
GROUP BY start ORDER BY start"""
_HOURLY_COLUMNS = ("scope1_co2e_kg", "grid_kwh", "grid_co2e_kg", "heat_co2e_kg", "onsite_kwh", "export_kwh")


def connect(path: str | Path) -> sqlite3.Connection:
    """A read-only connection (the store was opened, and so migrated, by ``twin.store.Store`` first);
    the hourly grouping sorts in memory rather than in a temporary file."""
    db = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True)
    db.execute("PRAGMA temp_store = MEMORY")
    db.execute("PRAGMA cache_size = -65536")
    return db


def origins(db: sqlite3.Connection, t0: float, t1: float) -> dict[str, int]:
    rows = db.execute("SELECT origin, count(*) FROM emissions WHERE start >= ? AND start < ? AND method != 'market' "
                      "GROUP BY origin", (t0, t1)).fetchall()
    return dict(rows)


def _group(row) -> dict:
    (site, source, scope, method, fid, _, unit, _, n, act, kg, co2, ch4, n2o, est_act, est_h, readings, resets,
     first, last, gwp_lo, gwp_hi) = row
    return {"site": site, "source": source, "scope": scope, "method": method, "factor_id": fid, "activity_unit": unit,
            "n": int(n), "activity": act, "co2e_kg": kg, "co2_kg": co2, "ch4_kg": ch4, "n2o_kg": n2o,
            "estimated_activity": est_act, "estimated_hours": int(est_h), "readings": int(readings),
            "resets": int(resets), "first_reading": first, "last_reading": last, "gwp": {gwp_lo, gwp_hi}}


def source_groups(db: sqlite3.Connection, site: str | None, origin: str, t0: float, t1: float) -> list[dict]:
    """Per (site, source, scope, method, factor id, unit): sums and coverage of the period."""
    args = (origin, t0, t1) + ((site,) if site else ())
    out = []
    for row in db.execute(_GROUPS.format(site="AND site = ?" if site else ""), args).fetchall():
        if row[4] != row[5] or row[6] != row[7]:
            out += [_group(r) for r in db.execute(_SPLIT, (origin, t0, t1, *row[:4])).fetchall()]
        else:
            out.append(_group(row))
    return out


def period_data(db: sqlite3.Connection, site: str | None, origin: str, t0: float, t1: float, tz: str,
                claim_from: float | None = None):
    """(PeriodData of [t0, t1), (hour starts, grid kWh) from ``claim_from`` to ``t1`` for the claim).

    ``site`` None: the one site with records of ``origin`` in the period (ValueError when several,
    LookupError when none)."""
    groups = source_groups(db, site, origin, t0, t1)
    sites = sorted({g.pop("site") for g in groups})
    if len(sites) > 1:
        raise ValueError(f"{origin} records of several sites {sites}; choose one with --site")
    if not sites:
        raise LookupError(site)
    site = sites[0]
    gwp = sorted({x for g in groups for x in g.pop("gwp") if x})
    lo = t0 if claim_from is None else min(t0, claim_from)
    rows = db.execute(_HOURS, (origin, lo, t1, site)).fetchall()
    arr = np.array([r[:8] for r in rows], dtype=np.float64).reshape(-1, 8)
    flags = np.array([r[8:] for r in rows], dtype=np.int64).reshape(-1, 2)
    hours = hour_starts(t0, t1, tz)
    hourly = empty_hourly(len(hours))
    has = np.zeros(len(hours), dtype=bool)
    est = np.zeros(len(hours), dtype=bool)
    notes = []
    inside = arr[:, 0] >= t0
    a, f = arr[inside], flags[inside]
    if len(a):
        i = np.searchsorted(hours, a[:, 0], side="right") - 1
        for k, name in enumerate(_HOURLY_COLUMNS, start=2):
            np.add.at(hourly[name], i, a[:, k])
        j = np.searchsorted(hours, a[:, 1], side="left")
        if np.all(j == i + 1):  # the ledger's hours: one hour each
            has[i] = True
            est[i] |= f[:, 0].astype(bool)
        else:  # older whole-span rows cover every hour they span
            notes.append(LONG_ROWS)
            for lo_i, hi_j, e in zip(i, j, f[:, 0]):
                has[lo_i:max(hi_j, lo_i + 1)] = True
                est[lo_i:max(hi_j, lo_i + 1)] |= bool(e)
    # hours written more than once: Store.emission_rewrites of this site, origin and period
    rewrites = int(np.count_nonzero(f[:, 1] > 1)) if len(f) else 0
    pd = PeriodData(site, origin, t0, t1, tz, hours, hourly, has, est, groups, gwp, rewrites,
                    sum(g["n"] for g in groups), notes)
    grid = arr[:, 3] > 0
    return pd, (arr[grid, 0], arr[grid, 3])
