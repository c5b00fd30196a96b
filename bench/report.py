"""Benchmark of ``report``: a year of hourly ledger records for fifty meters, against a plain SQL sum.

    python -m bench.report [--meters 50] [--format json] [--json]

Builds a store (``twin.store.Store``) holding one year (2026, Asia/Shanghai) of hourly records for
``--meters`` meters: grid imports, gas meters, PV (self-consumed), an export meter and heat, with
two certificates to claim. Then times, best of three in the same run: the report of the whole year
(``twin.emissions.report.write_period_report``, the whole path: the store opened, the ledger read,
certificates claimed, the inventory built and the file written), and the plain SQL sum of
``co2e_kg`` over the same rows (``SELECT sum(co2e_kg) ... WHERE site, origin, start in the year``).
Prints both times and their ratio; the goal is at most 3. The report reads the aggregates the store
keeps as it writes (per hour, per meter and UTC day): their cost is in ``build_s``, the writing.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from carbon import CarbonConfig, Instrument, Registry
from carbon.periods import hour_starts, parse_site_time
from factory_models.records import EmissionsRecord
from twin.emissions.report import write_period_report
from twin.store import Store

TZ = "Asia/Shanghai"
SITE = "bench"


def meters(n: int) -> list[tuple[str, str, str, str, float]]:
    """(source, scope, method, unit, kg per unit) of ``n`` meters, most of them grid sub-imports."""
    fixed = [("gas-1", "1", "direct", "Nm3", 2.1622), ("gas-2", "1", "direct", "Nm3", 2.1622),
             ("pv-1", "2", "onsite", "kWh", 0.0), ("export", "2", "export", "kWh", 0.0),
             ("heat", "2", "location", "GJ", 110.0)]
    grid = [(f"grid-{i:02d}", "2", "location", "kWh", 0.5703) for i in range(max(n - len(fixed), 1))]
    return (grid + fixed)[:n]


def build(path: Path, n_meters: int, t0: float, t1: float) -> int:
    """The store, written as the twin writes it (``Store.write_emissions``), a month of hours a batch."""
    hours = hour_starts(t0, t1, TZ)
    rng = np.random.default_rng(1)
    rows = 0
    with Store(path) as st:
        for month in np.array_split(hours, 12):
            batch = []
            for source, scope, method, unit, k in meters(n_meters):
                act = rng.uniform(0.5, 50.0, len(month))
                est = rng.random(len(month)) < 0.01
                fid = "cn-mee-2023-national" if unit == "kWh" else "bench"
                batch += [EmissionsRecord(
                    site=SITE, scope=scope, source=source, method=method, start=float(h), end=float(h) + 3600.0,
                    activity=float(a), activity_unit=unit, co2e_kg=float(a) * k, co2_kg=float(a) * k, factor_id=fid,
                    factor_version="bench", gwp_set="ar5", data_quality="estimated" if e else "measured",
                    origin="measured", estimated_activity=float(a) if e else 0.0, readings=0 if e else 6,
                    first_reading=None if e else float(h) + 30.0, last_reading=None if e else float(h) + 3570.0)
                    for h, a, e in zip(month, act, est)]
            rows += st.write_emissions(batch)
    return rows


def best_of(fn, n: int = 3) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(n):
        a = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - a)
    return best, out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--meters", type=int, default=50)
    ap.add_argument("--format", default="json", choices=("json", "csv", "xlsx", "pdf"))
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    t0, t1 = parse_site_time("2026-01-01", TZ), parse_site_time("2027-01-01", TZ)
    cfg = CarbonConfig(grid_factor="cn-mee-2023-national", instruments=[
        Instrument(id="GEC-A", kind="gec", mwh=2000, vintage=2026, market="CN", retired=True),
        Instrument(id="PPA-B", kind="green_ppa", mwh=500, vintage=2026, market="CN", retired=True,
                   valid_from="2026-07-01")])
    reg = Registry.default()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.sqlite"
        a = time.perf_counter()
        rows = build(path, args.meters, t0, t1)
        build_s = time.perf_counter() - a
        out = Path(tmp) / f"report.{args.format}"

        def report():
            return write_period_report(path, t0, t1, args.format, out, factory=None, carbon_cfg=cfg, registry=reg,
                                       origin="measured", tz=TZ)

        def plain_sum():
            db = sqlite3.connect(path)
            try:
                return db.execute("SELECT sum(co2e_kg) FROM emissions WHERE site = ? AND origin = ? AND start >= ? "
                                  "AND start < ?", (SITE, "measured", t0, t1)).fetchone()[0]
            finally:
                db.close()

        def ledger_read():  # the report's ledger read alone (per-meter and per-hour aggregates), for the breakdown
            from carbon.claims import earliest_eligible
            from twin.emissions import ledger_sql

            db = ledger_sql.connect(path)
            try:
                return ledger_sql.period_data(db, None, "measured", t0, t1, TZ, earliest_eligible(list(cfg.instruments), TZ))
            finally:
                db.close()

        sql_s, total = best_of(plain_sum)
        report_s, inv = best_of(report)
        read_s, _ = best_of(ledger_read)
        sql_s = min(sql_s, best_of(plain_sum)[0])  # before and after: the same warm cache for both
    t = inv["totals"]
    # the report's figures are the sum: Scope 1 + Scope 2 location over the same rows
    assert abs(t["total_location_co2e_kg"] - total) <= 1e-6 * total, (t["total_location_co2e_kg"], total)
    result = {"rows": rows, "meters": args.meters, "hours": inv["coverage"]["hours_in_period"],
              "format": args.format, "build_s": round(build_s, 2), "sql_sum_s": round(sql_s, 4),
              "report_s": round(report_s, 4), "ledger_read_s": round(read_s, 4), "ratio": round(report_s / sql_s, 2),
              "goal_ratio": 3.0}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{rows:,} hourly records ({args.meters} meters x {result['hours']} hours), built in {build_s:.1f} s")
        print(f"plain SQL sum:   {sql_s * 1000:8.1f} ms")
        print(f"report ({args.format}): {report_s * 1000:8.1f} ms, of which the ledger read {read_s * 1000:.1f} ms")
        print(f"ratio: {report_s / sql_s:.2f}x (goal: at most 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
