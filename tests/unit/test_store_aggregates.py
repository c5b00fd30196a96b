"""The ledger's aggregates the report reads (per site/origin/hour, per meter and UTC day): kept with
the rows by Store.write_emissions, rebuilt from the rows by the migration, and read as the rows."""

from __future__ import annotations

import sqlite3

from factory_models.records import EmissionsRecord
from twin.emissions import ledger_sql
from twin.store import SCHEMA_VERSION, Store

D = 1_772_668_800.0  # 2026-03-05T00:00Z, a UTC day's start (day 20517)
DAY = 20517


def rec(source="grid", start=D, activity=10.0, co2e=5.0, scope="2", method="location", **kw):
    unit = "Nm3" if scope == "1" else "kWh"
    return EmissionsRecord("s", scope, source, method, start, start + 3600, activity, unit, co2e, co2_kg=co2e,
                           factor_id="f", factor_version="v", gwp_set="ar5", origin="measured", **kw)


def write_example(path):
    """23:00 the day before (10 kWh), 00:00 (20 kWh, estimated), 01:00 first with grid 30 kWh and gas
    4 Nm3, then written again with grid 40 kWh alone."""
    with Store(path) as st:
        st.write_emissions([rec(start=D - 3600)])
        st.write_emissions([rec(start=D, activity=20.0, co2e=10.0, data_quality="estimated", estimated_activity=20.0),
                            rec(start=D + 3600, activity=30.0, co2e=15.0),
                            rec(source="gas", scope="1", method="direct", start=D + 3600, activity=4.0, co2e=8.0)])
        st.write_emissions([rec(start=D + 3600, activity=40.0, co2e=20.0, readings=6)])


def test_aggregates_follow_every_write_including_a_rewritten_hour(tmp_path):
    write_example(tmp_path / "t.sqlite")
    db = sqlite3.connect(tmp_path / "t.sqlite")
    # day 20517: grid 20 + 40 kWh, 10 + 20 kg, one estimated hour, 6 readings; gas went with the rewrite
    assert db.execute("SELECT day, source, n, activity, co2e_kg, estimated_hours, readings FROM emissions_days "
                      "ORDER BY day, source").fetchall() == [(DAY - 1, "grid", 1, 10.0, 5.0, 0.0, 0.0),
                                                             (DAY, "grid", 2, 60.0, 30.0, 1.0, 6.0)]
    assert db.execute("SELECT start, scope1_co2e_kg, grid_kwh, grid_co2e_kg, estimated, writes FROM emissions_hours "
                      "ORDER BY start").fetchall() == [(D - 3600, 0.0, 10.0, 5.0, 0, 1), (D, 0.0, 20.0, 10.0, 1, 1),
                                                       (D + 3600, 0.0, 40.0, 20.0, 0, 2)]


def test_a_period_reads_whole_days_from_the_aggregates_and_its_ends_from_the_rows(tmp_path):
    write_example(tmp_path / "t.sqlite")
    db = ledger_sql.connect(tmp_path / "t.sqlite")
    # 22:00 the day before .. 02:00 the day after: the edge hour 23:00 (10 kWh) + the whole day (60 kWh)
    pd, (hours, kwh) = ledger_sql.period_data(db, None, "measured", D - 7200, D + 86400 + 7200, "UTC")
    (grid,) = pd.by_source
    assert (grid["n"], grid["activity"], grid["co2e_kg"], grid["estimated_hours"]) == (3, 70.0, 35.0, 1)
    assert pd.rewrites == 1 and list(hours) == [D - 3600, D, D + 3600] and list(kwh) == [10.0, 20.0, 40.0]
    # 00:00 .. 02:00: no whole day inside, both hours from the rows
    pd, _ = ledger_sql.period_data(db, None, "measured", D, D + 7200, "UTC")
    assert [(g["n"], g["activity"], g["co2e_kg"]) for g in pd.by_source] == [(2, 60.0, 30.0)]


def test_the_migration_builds_the_aggregates_from_the_rows_held(tmp_path):
    path = tmp_path / "t.sqlite"
    write_example(path)
    db = sqlite3.connect(path)
    kept = [db.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4").fetchall() for t in ("emissions_hours", "emissions_days")]
    db.executescript("DROP TABLE emissions_hours; DROP TABLE emissions_days; DROP TABLE site; DROP TABLE footprint; "
                     "DROP TABLE footprint_change; DROP TABLE footprint_notice; PRAGMA user_version=4;")
    db.close()
    with Store(path) as st:
        assert st.schema_version == SCHEMA_VERSION
    db = sqlite3.connect(path)
    assert [db.execute(f"SELECT * FROM {t} ORDER BY 1, 2, 3, 4").fetchall()
            for t in ("emissions_hours", "emissions_days")] == kept
