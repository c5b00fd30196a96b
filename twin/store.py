"""The embedded store: one SQLite file (WAL) of KPI windows, emissions records and downsampled signals.

The default sink when no InfluxDB is configured, and what reports and the dashboard read
(docs/architecture.md, Contracts). Every table has a primary key on series and time, and writes are upserts,
so a replay or a re-run of the same period rewrites its rows instead of adding new ones.
Emissions are the hourly ledger: one row per (site, source, scope, method, hour, origin); a batch
of records replaces the whole hours it holds, and ``writes`` counts how often each was written.

Signals are downsampled to one row per signal and bucket (``bucket_s``, default one minute)
holding the last value (by sample time) with its quality, and the minimum and maximum of the
numeric values. All three are idempotent: feeding the same samples twice gives the same row, which
a count or a mean would not.

The schema (twin/store_schema.py) carries a version (``PRAGMA user_version``); opening an older file runs the missing
migrations in order, opening a newer one is refused with the versions named.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Iterable
from pathlib import Path

from factory_models.records import KPI_FIELDS, EmissionsRecord, KpiWindow, Sample

from twin.store_samples import SIGNAL_UPSERT, fold_samples
from twin.store_schema import DAYS_ROLLUP, EMISSION_COLUMNS, HOURS_ROLLUP, MIGRATIONS, OPEN, SCHEMA_VERSION

log = logging.getLogger("twin.store")

# an hour's and a UTC day's aggregates, from the rows found by the hour's index
_HOUR_AGG = HOURS_ROLLUP.format(index="INDEXED BY emissions_hour", where="AND +site = ? AND start = ? AND origin = ?")
_DAY_AGG = DAYS_ROLLUP.format(day="?", index="INDEXED BY emissions_hour",
                              where="AND start >= ? AND start < ? AND +site = ? AND origin = ?")

_PRODUCT_USE_COLUMNS = ("line", "station", "product", "start", "end", "machine_time_s", "produced", "good", "is_output")


class StoreError(RuntimeError):
    pass


def _kpi_window(r: tuple) -> KpiWindow:
    """A KpiWindow of a kpi row (site, line, station, start, end, KPI_FIELDS..., flags)."""
    values = dict(zip(KPI_FIELDS, r[5:-1]))
    for name in ("pot_s", "pbt_s", "apt_s", "asut_s", "adet_s", "adot_s", "unknown_s", "produced", "good", "scrap", "rework",
                 "produced_in_gap"):
        values[name] = values[name] if values[name] is not None else 0.0
    values["failures"] = int(values["failures"] or 0)
    return KpiWindow(site=r[0], line=r[1] or None, station=r[2] or None,
                     start=None if r[3] == OPEN else r[3], end=None if r[4] == OPEN else r[4],
                     flags=json.loads(r[-1]), **values)


def _where(sql: str, conditions: list[tuple[str, object]]) -> tuple[str, list]:
    """``sql`` with a WHERE clause of the conditions whose value is given (None: no filter); a
    tuple value fills several placeholders of its clause."""
    used = [(clause, value) for clause, value in conditions if value is not None]
    if used:
        sql += " WHERE " + " AND ".join(clause for clause, _ in used)
    args: list = []
    for _, value in used:
        args.extend(value if isinstance(value, tuple) else (value,))
    return sql, args


class Store:
    """The embedded SQLite store. Thread-safe; several processes may read while one writes (WAL).

    A ``factory_models.sink.Sink``: ``close()`` returns its block of the ``sinks`` document."""

    sink_name = "store"

    def __init__(self, path: str | Path, *, bucket_s: float = 60.0) -> None:
        if not bucket_s > 0:
            raise ValueError(f"bucket_s must be positive; got {bucket_s}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.bucket_s = float(bucket_s)
        self._lock = threading.Lock()
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a directory; expected an SQLite store file")
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            # the first statement is where SQLite finds out that the file is not one of its own
            self._db.execute("PRAGMA journal_mode=WAL")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not an SQLite store ({exc})") from None
        self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: safe against a process crash
        self._db.execute("PRAGMA busy_timeout=10000")
        self._migrate()
        self._written = {"kpi": 0, "emissions": 0, "signal": 0, "product_use": 0}
        self._rejected = 0
        self._closed: dict | None = None

    def _migrate(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} has store schema version {version}; this factory-twin knows up to "
                f"{SCHEMA_VERSION}. Use a newer factory-twin or another --store file."
            )
        for n in range(version + 1, SCHEMA_VERSION + 1):
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # processes that open a new file at once (run --lines): one migrates, the others find it done
                if self._db.execute("PRAGMA user_version").fetchone()[0] >= n:
                    self._db.execute("COMMIT")
                    continue
                for statement in MIGRATIONS[n - 1].split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version={n}")
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            log.info("store %s migrated to schema version %d", self.path, n)

    @property
    def schema_version(self) -> int:
        return self._db.execute("PRAGMA user_version").fetchone()[0]

    # -- writing ---------------------------------------------------------------------------

    def write_windows(self, windows: Iterable[KpiWindow]) -> int:
        """Upsert KPI windows (station, line and site rows); returns the rows written."""
        rows = []
        for w in windows:
            values = []
            for name in KPI_FIELDS:
                v = getattr(w, name)
                values.append(None if v is None or not math.isfinite(float(v)) else float(v))
            rows.append((
                w.site, w.line or "", w.station or "",
                OPEN if w.start is None else float(w.start), OPEN if w.end is None else float(w.end),
                *values, json.dumps(list(w.flags)),
            ))
        cols = ", ".join(KPI_FIELDS)
        marks = ", ".join("?" * (len(KPI_FIELDS) + 6))
        return self._upsert("kpi", f'INSERT OR REPLACE INTO kpi (site, line, station, start, "end", {cols}, flags) VALUES ({marks})', rows)

    def write_emissions(self, records: Iterable[EmissionsRecord]) -> int:
        """Write ledger records; returns the rows written.

        A batch holds whole hours: the records of one hour (site, start, origin) replace every row
        of that hour in the store, so an hour written again by another run or a re-run is replaced,
        never added to, and a source that no longer appears in it goes. Each row's ``writes``
        counts how often its hour was written (``emission_rewrites``). The aggregates the report
        reads (the hour's, and each meter's of the UTC days written) are made again from the rows
        in the same transaction, so they are always the rows' own."""
        recs = list(records)
        if not recs:
            return 0
        hours: dict[tuple, list[EmissionsRecord]] = {}
        for r in recs:
            hours.setdefault((r.site, float(r.start), r.origin), []).append(r)
        cols = ", ".join(f'"{c}"' for c in (*EMISSION_COLUMNS, "writes"))
        marks = ", ".join("?" * (len(EMISSION_COLUMNS) + 1))
        insert = f"INSERT INTO emissions ({cols}) VALUES ({marks})"
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for (site, start, origin), group in hours.items():
                    # "+site": look the hour up by the (start, site, origin) index; the key's site prefix
                    # alone would visit every row of the site for each hour (quadratic over a year)
                    where = "+site = ? AND start = ? AND origin = ?"
                    # the hour's index, named: the planner would otherwise scan the site's rows by key
                    prior = self._db.execute(f"SELECT max(writes) FROM emissions INDEXED BY emissions_hour WHERE {where}",
                                             (site, start, origin)).fetchone()[0] or 0
                    self._db.execute(f"DELETE FROM emissions WHERE {where}", (site, start, origin))
                    self._db.executemany(insert, [(*(getattr(r, c) for c in EMISSION_COLUMNS), prior + 1)
                                                  for r in group])
                    self._db.execute("DELETE FROM emissions_hours WHERE site = ? AND origin = ? AND start = ?",
                                     (site, origin, start))
                    self._db.execute(_HOUR_AGG, (site, start, origin))
                for site, origin, day in {(site, origin, start // 86400) for site, start, origin in hours}:
                    self._db.execute("DELETE FROM emissions_days WHERE site = ? AND origin = ? AND day = ?",
                                     (site, origin, int(day)))
                    self._db.execute(_DAY_AGG, (int(day), day * 86400, (day + 1) * 86400, site, origin))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._written["emissions"] += len(recs)
        return len(recs)

    def record_site_zone(self, site: str, tz: str) -> None:
        """Remember the site's IANA time zone (the ledger's clock hours are the zone's), so ``report``
        reads a period in it without the factory model. A store that holds another zone for the site
        is refused: its hours and this run's would be different clocks."""
        with self._lock:
            held = self._db.execute("SELECT timezone FROM site WHERE site = ?", (site,)).fetchone()
            if held is None:
                self._db.execute("INSERT OR IGNORE INTO site (site, timezone) VALUES (?, ?)", (site, tz))
                held = self._db.execute("SELECT timezone FROM site WHERE site = ?", (site,)).fetchone()
        if held[0] != tz:
            raise StoreError(f"{self.path}: site {site!r} was written in time zone {held[0]}, this run's "
                             f"factory.site.timezone is {tz}; use the same zone or another --store")

    def site_zones(self) -> dict[str, str]:
        """Each site's recorded IANA time zone (none for sites written before schema version 6)."""
        with self._lock:
            return dict(self._db.execute("SELECT site, timezone FROM site ORDER BY site").fetchall())

    def write_product_use(self, rows: Iterable, site: str) -> int:
        """Upsert per-station, per-product machine time and output (``twin.emissions.products.ProductUse``)."""
        data = [(site, *(float(getattr(r, c)) if c not in ("line", "station", "product") else getattr(r, c)
                         for c in _PRODUCT_USE_COLUMNS)) for r in rows]
        cols = ", ".join(f'"{c}"' for c in ("site", *_PRODUCT_USE_COLUMNS))
        marks = ", ".join("?" * (len(_PRODUCT_USE_COLUMNS) + 1))
        return self._upsert("product_use", f"INSERT OR REPLACE INTO product_use ({cols}) VALUES ({marks})", data)

    def product_use(self, t0: float | None = None, t1: float | None = None, *, site: str | None = None) -> list[dict]:
        """Product-use rows whose period lies within [t0, t1], oldest first."""
        cols = ("site", *_PRODUCT_USE_COLUMNS)
        sql, args = _where(f"SELECT {', '.join(chr(34) + c + chr(34) for c in cols)} FROM product_use",
                           [("start >= ?", t0), ('"end" <= ?', t1), ("site = ?", site)])
        sql += ' ORDER BY "end", line, station, product'
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [dict(zip(cols, r)) for r in rows]

    def write_samples(self, samples: Iterable[Sample], site: str) -> int:
        """Fold samples into their signal buckets; returns the samples taken.

        A numeric sample that is NaN or infinite is rejected, counted and logged, never stored.
        """
        rows, taken, bad = fold_samples(samples, site, self.bucket_s)
        if bad:
            self._rejected += bad
            log.warning("store rejected %d samples with a non-finite value", bad)
        self._upsert("signal", SIGNAL_UPSERT, rows)
        with self._lock:
            self._written["signal"] += taken - len(rows)  # the block counts samples, not rows
        return taken

    def _upsert(self, table: str, sql: str, rows: list[tuple]) -> int:
        if not rows:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(sql, rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._written[table] += len(rows)
        return len(rows)

    # -- reading ---------------------------------------------------------------------------

    def kpis(
        self,
        t0: float | None = None,
        t1: float | None = None,
        *,
        site: str | None = None,
        line: str | None = None,
        station: str | None = None,
        level: str | None = None,
    ) -> list[KpiWindow]:
        """KPI windows whose end lies in [t0, t1), ordered by end, site, line, station.

        ``level`` is "station", "line" or "site" to keep one kind of row; whole-run windows
        (no start or end) are returned only when neither t0 nor t1 is given.
        """
        levels = {"station": "station != ''", "line": "line != '' AND station = ''", "site": "line = ''"}
        if level is not None and level not in levels:
            raise ValueError(f"level {level!r}; expected station, line or site")
        sql, args = _where(f'SELECT site, line, station, start, "end", {", ".join(KPI_FIELDS)}, flags FROM kpi', [
            ('"end" >= ?', t0),
            ('"end" < ? AND "end" != ?', None if t1 is None else (t1, OPEN)),
            ("site = ?", site), ("line = ?", line), ("station = ?", station),
            (levels.get(level, ""), None if level is None else ()),
        ])
        sql += ' ORDER BY "end", site, line, station'
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_kpi_window(r) for r in rows]

    def line_windows(self, t0: float, t1: float, *, site: str | None = None) -> list[KpiWindow]:
        """Line rows (no station or site rows) of the windows that lie within [t0, t1], by site,
        line, start and end: what ``rollup`` sums (twin/rollup.py). Found by the end index."""
        sql, args = _where(f'SELECT site, line, station, start, "end", {", ".join(KPI_FIELDS)}, flags FROM kpi', [
            ('"end" > ? AND "end" <= ? AND start >= ?', (t0, t1, t0)),
            ("line != '' AND station = ''", ()), ("site = ?", site),
        ])
        sql += ' ORDER BY site, line, start, "end"'
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_kpi_window(r) for r in rows]

    def emissions(self, t0: float | None = None, t1: float | None = None, *, site: str | None = None,
                  origin: str | None = None) -> list[EmissionsRecord]:
        """Ledger records whose hour starts in [t0, t1), ordered by start, scope, source, method."""
        sql, args = _where(f"SELECT {', '.join(f'{chr(34)}{c}{chr(34)}' for c in EMISSION_COLUMNS)} FROM emissions",
                           [("start >= ?", t0), ("start < ?", t1), ("site = ?", site), ("origin = ?", origin)])
        sql += " ORDER BY start, scope, source, method, origin"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [EmissionsRecord(**dict(zip(EMISSION_COLUMNS, r))) for r in rows]

    def emission_rewrites(self, t0: float | None = None, t1: float | None = None, *, site: str | None = None,
                          origin: str | None = None) -> int:
        """Hours (distinct site, start, origin) starting in [t0, t1) that were written more than once."""
        sql, args = _where("SELECT site, start, origin FROM emissions",
                           [("start >= ?", t0), ("start < ?", t1), ("site = ?", site), ("origin = ?", origin)])
        sql = f"SELECT count(*) FROM ({sql} GROUP BY site, start, origin HAVING max(writes) > 1)"
        with self._lock:
            return int(self._db.execute(sql, args).fetchone()[0])

    def signals(self, signal: str, t0: float | None = None, t1: float | None = None, *, site: str | None = None) -> list[dict]:
        """Downsampled rows of one signal with bucket start in [t0, t1), oldest first.

        Each row: ``site, signal, bucket, ts, value`` (or ``state``), ``quality, min, max``.
        """
        sql, args = _where("SELECT site, signal, bucket, ts, value, state, quality, min, max FROM signal",
                           [("signal = ?", signal), ("bucket >= ?", t0), ("bucket < ?", t1), ("site = ?", site)])
        sql += " ORDER BY bucket, site"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        keys = ("site", "signal", "bucket", "ts", "value", "state", "quality", "min", "max")
        return [dict(zip(keys, r)) for r in rows]

    def stats(self) -> dict:
        """Rows written by this process (``written`` in all), rejections, and the rows held now."""
        with self._lock:
            held = {t: self._db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
                    for t in ("kpi", "emissions", "signal", "product_use")}
        return {
            "path": str(self.path),
            "schema_version": SCHEMA_VERSION,
            "written": sum(self._written.values()),
            "written_kpi": self._written["kpi"],
            "written_emissions": self._written["emissions"],
            "written_signal": self._written["signal"],
            "written_product_use": self._written["product_use"],
            "rejected": self._rejected,
            "rows_kpi": held["kpi"],
            "rows_emissions": held["emissions"],
            "rows_signal": held["signal"],
            "rows_product_use": held["product_use"],
        }

    def health(self) -> dict:
        return self.block()

    def block(self) -> dict:
        """What this process wrote, by kind: the store's block of the ``sinks`` document."""
        with self._lock:
            return self._block()

    def _block(self) -> dict:
        if self._closed is not None:
            return dict(self._closed)
        w = self._written
        return {"path": str(self.path), "written": sum(w.values()), "samples": w["signal"], "windows": w["kpi"],
                "emissions": w["emissions"], "product_use": w["product_use"], "rejected": self._rejected}

    def close(self) -> dict:
        """Close the file; returns ``block()`` (the same block again on a second call)."""
        with self._lock:
            if self._closed is None:
                self._closed = self._block()
                self._db.close()
            return dict(self._closed)

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
