"""A period of the store's emissions ledger as ``carbon.ledger_view.PeriodData``, by aggregate SQL.

Two reads fetch everything a report needs, and no ledger row comes into Python: the per-meter totals
(factor ids, readings, resets, estimated hours), from the store's per-meter daily aggregates for the
UTC days wholly inside the period and from the rows for the hours at its ends; and the hourly series
(Scope 1, grid import, heat, self-consumed, exported, the estimated flag and the hours written more
than once) from the store's per-hour aggregates. Both are kept by ``Store.write_emissions`` in the
transaction that writes the rows (twin/store_schema.py, migration 5), so a report reads about one row
per meter and day and one per hour instead of every record. bench/report.py times it against a plain
sum over the rows.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from carbon.ledger_view import LONG_ROWS, PeriodData, empty_hourly
from carbon.periods import hour_starts

# old ledgers' market rows are left out: market-based is claimed when the report is made
_SUMS = """total(n), total(activity), total(co2e_kg), total(co2_kg), total(ch4_kg), total(n2o_kg),
       total(estimated_activity), total(estimated_hours), total(readings), total(resets),
       min(first_reading), max(last_reading), min(gwp_lo), max(gwp_hi)"""
# one group per meter, method, factor and unit: the UTC days wholly inside the period from the store's
# daily aggregates (twin/store_schema.py, kept by Store.write_emissions), the hours at either end from
# the rows themselves (found by the hour's index)
_GROUPS = f"""SELECT site, source, scope, method, factor_id, factor_id, activity_unit, activity_unit, {_SUMS}
FROM (SELECT site, source, scope, method, factor_id, activity_unit, n, activity, co2e_kg, co2_kg, ch4_kg, n2o_kg,
             estimated_activity, estimated_hours, readings, resets, first_reading, last_reading, gwp_lo, gwp_hi
      FROM emissions_days WHERE origin = ? AND day >= ? AND day < ? AND method != 'market' {{site}}
      UNION ALL
      SELECT site, source, scope, method, factor_id, activity_unit, 1, activity, co2e_kg, co2_kg, ch4_kg, n2o_kg,
             estimated_activity, data_quality != 'measured', readings, resets, first_reading, last_reading,
             gwp_set, gwp_set
      FROM emissions WHERE origin = ? AND method != 'market' AND (start >= ? AND start < ? OR start >= ? AND start < ?)
      {{site}})
GROUP BY site, source, scope, method, factor_id, activity_unit
ORDER BY site, source, scope, method, factor_id, activity_unit"""
# the hourly series from the store's per-hour aggregates, in their key's order (no sort)
_HOURS = """SELECT start, "end", scope1_co2e_kg, grid_kwh, grid_co2e_kg, heat_co2e_kg, onsite_kwh, export_kwh,
       estimated, writes
FROM emissions_hours WHERE site = ? AND origin = ? AND start >= ? AND start < ? ORDER BY start"""
_HOURLY_COLUMNS = ("scope1_co2e_kg", "grid_kwh", "grid_co2e_kg", "heat_co2e_kg", "onsite_kwh", "export_kwh")


def connect(path: str | Path) -> sqlite3.Connection:
    """A read-only connection (the store was opened, and so migrated, by ``twin.store.Store`` first);
    the per-meter grouping sorts in memory rather than in a temporary file."""
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
    # the UTC days d0 .. d1 - 1 lie wholly inside [t0, t1); the hours before d0 and from d1 are read as rows
    d0, d1 = -(-t0 // 86400), t1 // 86400
    if t0 < 0 or d1 <= d0:  # no whole day inside (or before 1970, where the days are not kept): rows only
        d0 = d1 = 0.0
        edges = (t0, t1, t1, t1)
    else:
        edges = (t0, d0 * 86400, d1 * 86400, t1)
    one = (site,) if site else ()
    args = (origin, int(d0), int(d1), *one, origin, *edges, *one)
    return [_group(r) for r in db.execute(_GROUPS.format(site="AND site = ?" if site else ""), args).fetchall()]


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
    rows = db.execute(_HOURS, (site, origin, lo, t1)).fetchall()
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
