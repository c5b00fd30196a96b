"""The store's schema: its columns and the migrations that build it, oldest first (twin/store.py).

Migration n takes a file from schema version n-1 to n; ``Store`` runs the missing ones in order.
"""

from __future__ import annotations

from factory_models.records import KPI_FIELDS

#: KPI windows of a whole run have no start or end; the key stores this instead of NULL because
#: SQLite treats NULLs as distinct in a primary key, which would defeat the upsert.
OPEN = -1.0e300

EMISSION_COLUMNS = (
    "site", "scope", "source", "method", "start", "end", "activity", "activity_unit", "co2e_kg", "co2_kg",
    "ch4_kg", "n2o_kg", "factor_id", "factor_version", "gwp_set", "data_quality",
    "origin", "estimated_activity", "readings", "resets", "first_reading", "last_reading",
)

#: A UTC day's number (days since 1970) of an hour start: truncated, then one less when the division
#: rounded up across the day's edge, so a row's day agrees with ``start >= day * 86400`` exactly.
_DAY_OF_START = "(CAST(start / 86400 AS INTEGER) - (start < CAST(start / 86400 AS INTEGER) * 86400))"

# The aggregates a report reads (twin/emissions/ledger_sql.py), from the rows themselves; market rows
# of old ledgers are left out (market-based is claimed when a report is made). {where} narrows the
# rows (Store.write_emissions: one hour, one day), {index} names the index to find them by.
HOURS_ROLLUP = """INSERT INTO emissions_hours SELECT site, origin, start, max("end"),
       total(CASE WHEN scope = '1' THEN co2e_kg END),
       total(CASE WHEN scope = '2' AND method = 'location' AND activity_unit = 'kWh' THEN activity END),
       total(CASE WHEN scope = '2' AND method = 'location' AND activity_unit = 'kWh' THEN co2e_kg END),
       total(CASE WHEN scope = '2' AND method = 'location' AND activity_unit != 'kWh' THEN co2e_kg END),
       total(CASE WHEN method = 'onsite' THEN activity END),
       total(CASE WHEN method = 'export' THEN activity END),
       max(data_quality != 'measured'), max(writes)
FROM emissions {index} WHERE method != 'market' {where}
GROUP BY site, origin, start"""
DAYS_ROLLUP = """INSERT INTO emissions_days SELECT site, origin, {day} AS d, source, scope, method, factor_id,
       activity_unit, count(*), total(activity), total(co2e_kg), total(co2_kg), total(ch4_kg), total(n2o_kg),
       total(estimated_activity), total(data_quality != 'measured'), total(readings), total(resets),
       min(first_reading), max(last_reading), min(gwp_set), max(gwp_set)
FROM emissions {index} WHERE method != 'market' {where}
GROUP BY site, origin, d, source, scope, method, factor_id, activity_unit"""

#: The KPI columns of migration 1: KPI fields added later come with a migration of their own.
_KPI_FIELDS_V1 = tuple(name for name in KPI_FIELDS if name != "produced_in_gap")

#: Append; never edit a released one.
MIGRATIONS: list[str] = [
    # 1: the first schema
    f"""
    CREATE TABLE kpi (
        site TEXT NOT NULL,
        line TEXT NOT NULL,      -- '' for a site row
        station TEXT NOT NULL,   -- '' for line and site rows
        start REAL NOT NULL,     -- epoch s, or {OPEN} for a whole-run window
        "end" REAL NOT NULL,
        {", ".join(f"{name} REAL" for name in _KPI_FIELDS_V1)},
        flags TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (site, line, station, start, "end")
    ) WITHOUT ROWID;
    CREATE INDEX kpi_end ON kpi ("end");
    CREATE TABLE emissions (
        site TEXT NOT NULL, scope TEXT NOT NULL, source TEXT NOT NULL, method TEXT NOT NULL,
        start REAL NOT NULL, "end" REAL NOT NULL,
        activity REAL NOT NULL, activity_unit TEXT NOT NULL, co2e_kg REAL NOT NULL,
        co2_kg REAL NOT NULL, ch4_kg REAL NOT NULL, n2o_kg REAL NOT NULL,
        factor_id TEXT NOT NULL, factor_version TEXT NOT NULL, gwp_set TEXT NOT NULL,
        data_quality TEXT NOT NULL,
        -- factor_id is part of the key: a market-based period holds one row per instrument and one
        -- for the residual mix, all with the same source and times
        PRIMARY KEY (site, scope, source, method, factor_id, start, "end")
    ) WITHOUT ROWID;
    CREATE INDEX emissions_end ON emissions ("end");
    CREATE TABLE signal (
        site TEXT NOT NULL,
        signal TEXT NOT NULL,
        bucket REAL NOT NULL,    -- bucket start, epoch s
        ts REAL NOT NULL,        -- time of the last sample in the bucket
        value REAL,              -- last numeric value, or NULL for a state signal
        state TEXT,              -- last text value (states, products)
        quality TEXT NOT NULL,
        min REAL,
        max REAL,
        PRIMARY KEY (site, signal, bucket)
    ) WITHOUT ROWID;
    """,
    # 2: machine time and output per product, the inputs of product footprints (carbon allocation)
    """
    CREATE TABLE product_use (
        site TEXT NOT NULL, line TEXT NOT NULL, station TEXT NOT NULL, product TEXT NOT NULL,
        start REAL NOT NULL, "end" REAL NOT NULL,
        machine_time_s REAL NOT NULL, produced REAL NOT NULL, good REAL NOT NULL,
        is_output INTEGER NOT NULL,
        PRIMARY KEY (site, line, station, product, start, "end")
    ) WITHOUT ROWID;
    CREATE INDEX product_use_end ON product_use ("end");
    """,
    # 3: the hourly emissions ledger: one row per (site, source, scope, method, hour, origin), with
    # data quality, reading counts and a count of writes. Old rows are kept as they were (their own
    # start and end), with origin 'measured'; 'gap_filled' becomes 'estimated' with all of its
    # activity estimated; rows that now share an identity (a market period split over instruments)
    # are merged: activity and masses summed, factor ids joined with '+'.
    """
    CREATE TABLE emissions_ledger (
        site TEXT NOT NULL, source TEXT NOT NULL, scope TEXT NOT NULL, method TEXT NOT NULL,
        start REAL NOT NULL, "end" REAL NOT NULL, origin TEXT NOT NULL,
        activity REAL NOT NULL, activity_unit TEXT NOT NULL, co2e_kg REAL NOT NULL,
        co2_kg REAL NOT NULL, ch4_kg REAL NOT NULL, n2o_kg REAL NOT NULL,
        factor_id TEXT NOT NULL, factor_version TEXT NOT NULL, gwp_set TEXT NOT NULL,
        data_quality TEXT NOT NULL, estimated_activity REAL NOT NULL DEFAULT 0,
        readings INTEGER NOT NULL DEFAULT 0, resets INTEGER NOT NULL DEFAULT 0,
        first_reading REAL, last_reading REAL,
        writes INTEGER NOT NULL DEFAULT 1,
        PRIMARY KEY (site, source, scope, method, start, origin)
    ) WITHOUT ROWID;
    INSERT INTO emissions_ledger (site, source, scope, method, start, "end", origin, activity, activity_unit,
        co2e_kg, co2_kg, ch4_kg, n2o_kg, factor_id, factor_version, gwp_set, data_quality, estimated_activity)
    SELECT site, source, scope, method, start, "end", 'measured', activity, activity_unit, co2e_kg, co2_kg,
        ch4_kg, n2o_kg, factor_id, factor_version, gwp_set,
        CASE WHEN data_quality = 'measured' THEN 'measured' ELSE 'estimated' END,
        CASE WHEN data_quality = 'measured' THEN 0 ELSE activity END
    FROM emissions WHERE true ORDER BY start, factor_id
    ON CONFLICT (site, source, scope, method, start, origin) DO UPDATE SET
        "end" = max("end", excluded."end"), activity = activity + excluded.activity,
        co2e_kg = co2e_kg + excluded.co2e_kg, co2_kg = co2_kg + excluded.co2_kg,
        ch4_kg = ch4_kg + excluded.ch4_kg, n2o_kg = n2o_kg + excluded.n2o_kg,
        factor_id = factor_id || '+' || excluded.factor_id,
        estimated_activity = estimated_activity + excluded.estimated_activity,
        data_quality = CASE WHEN data_quality = 'measured' AND excluded.data_quality = 'measured'
                            THEN 'measured' ELSE 'estimated' END;
    DROP TABLE emissions;
    ALTER TABLE emissions_ledger RENAME TO emissions;
    CREATE INDEX emissions_hour ON emissions (start, site, origin);
    """,
    # 4: parts counted across a connection gap, left out of performance (issue 12)
    "ALTER TABLE kpi ADD COLUMN produced_in_gap REAL",
    # 5: the ledger's aggregates, kept with it by Store.write_emissions: per site, origin and hour (the
    # report's hourly series) and per meter and UTC day (its per-meter totals), filled from the rows held
    f"""
    CREATE TABLE emissions_hours (
        site TEXT NOT NULL, origin TEXT NOT NULL, start REAL NOT NULL, "end" REAL NOT NULL,
        scope1_co2e_kg REAL NOT NULL, grid_kwh REAL NOT NULL, grid_co2e_kg REAL NOT NULL,
        heat_co2e_kg REAL NOT NULL, onsite_kwh REAL NOT NULL, export_kwh REAL NOT NULL,
        estimated INTEGER NOT NULL, writes INTEGER NOT NULL,
        PRIMARY KEY (site, origin, start)
    ) WITHOUT ROWID;
    CREATE TABLE emissions_days (
        site TEXT NOT NULL, origin TEXT NOT NULL, day INTEGER NOT NULL,
        source TEXT NOT NULL, scope TEXT NOT NULL, method TEXT NOT NULL,
        factor_id TEXT NOT NULL, activity_unit TEXT NOT NULL,
        n INTEGER NOT NULL, activity REAL NOT NULL, co2e_kg REAL NOT NULL, co2_kg REAL NOT NULL,
        ch4_kg REAL NOT NULL, n2o_kg REAL NOT NULL, estimated_activity REAL NOT NULL,
        estimated_hours REAL NOT NULL, readings REAL NOT NULL, resets REAL NOT NULL,
        first_reading REAL, last_reading REAL, gwp_lo TEXT, gwp_hi TEXT,
        PRIMARY KEY (site, origin, day, source, scope, method, factor_id, activity_unit)
    ) WITHOUT ROWID;
    {HOURS_ROLLUP.format(index='', where='')};
    {DAYS_ROLLUP.format(day=_DAY_OF_START, index='', where='')}
    """,
    # 6: each site's IANA time zone, recorded by every run that writes to the store, so that
    # `report` reads --from/--to in it without the factory model
    """
    CREATE TABLE site (
        site TEXT NOT NULL PRIMARY KEY,
        timezone TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
    # 7: PACT product footprints as published (twin/pact_api/repository.py), immutable but for status
    # (Active to Deprecated), in publication order (seq), with the changes customers are told of
    # (footprint_change) and how far each customer was told (footprint_notice)
    """
    CREATE TABLE footprint (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        series TEXT NOT NULL, revision INTEGER NOT NULL,
        status TEXT NOT NULL, figures TEXT NOT NULL,
        shared_with TEXT,        -- JSON list of client ids, NULL: every client
        published REAL NOT NULL, doc TEXT NOT NULL,
        UNIQUE (series, revision)
    );
    CREATE TABLE footprint_change (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL, at REAL NOT NULL
    );
    CREATE TABLE footprint_notice (
        client_id TEXT NOT NULL PRIMARY KEY, seq INTEGER NOT NULL
    ) WITHOUT ROWID;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)
