"""PACT product footprints with a life cycle, kept in the store (table ``footprint``, migration 7).

``publish`` turns a report's inventory into v3 ProductFootprints (carbon/reports/pact.py) and
stores them; ``list`` and ``get`` are what the API serves. PACT Technical Specifications v3.0,
spec/v3/index.md, Product Footprint Lifecycle:

- each product and reference period is one series with a stable identity
  (``footprint_series``: company, product, period, origin); revision n of a series has the id
  ``footprint_id(series, n)``, so the same history gives the same ids in any store;
- a footprint is never changed once stored, except its ``status`` from ``Active`` to ``Deprecated``;
- a report of the same product and period whose footprint declares anything differently is a new
  footprint with a new id: the stored one becomes ``Deprecated`` and the new one lists it first in
  ``precedingPfIds`` (then the older ones). ``created`` and ``comment`` do not count: the comment
  names the SHA-256 of the whole report's inputs, which another product's output changes. The same
  figures again change nothing: the stored footprint (its ``created``, its comment) is served as it was;
- every new or deprecated footprint is recorded as a change (``footprint_change``), from which the
  API tells customers with a ``PublishedEvent`` (twin/pact_api/delivery.py).

Access: ``shared_with`` (client ids, or None for every client) is set on each publish for all
footprints of the series published; ``client_id=None`` reads as the data owner (everything).
The server reads through its own connections: SQLite's WAL lets it read while a report writes.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from carbon.reports.pact import footprint_id, footprint_series, pact_document, validate_footprint

from .filters import FilterError, parse_filters

#: properties that do not make a footprint different: its id, the life-cycle fields, and the comment,
#: which names the SHA-256 of the whole report's inputs (another product's output changes it)
_NOT_FIGURES = ("id", "created", "status", "precedingPfIds", "comment")


def figures_digest(pf: dict) -> str:
    """SHA-256 of everything a footprint declares except its id, ``created``, life cycle and comment."""
    body = {k: v for k, v in pf.items() if k not in _NOT_FIGURES}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


@dataclass
class PublishResult:
    """What one publish did: the footprints now current for the report, by what happened to them."""

    docs: list[dict] = field(default_factory=list)
    new: list[str] = field(default_factory=list)  # ids of first revisions
    superseding: list[str] = field(default_factory=list)  # ids of later revisions
    deprecated: list[str] = field(default_factory=list)  # ids made Deprecated by them
    unchanged: list[str] = field(default_factory=list)

    def summary(self) -> dict:
        return {"footprints": len(self.docs), "new": len(self.new), "superseding": len(self.superseding),
                "deprecated": len(self.deprecated), "unchanged": len(self.unchanged)}


def _now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _pact_and_country(cfg, country: str | None):
    """(PactSettings, country) from a CarbonConfig, a PactSettings or None."""
    pact = getattr(cfg, "pact", cfg)
    return pact, (country or getattr(cfg, "site_country", None) or "CN")


def _shared_json(shared_with) -> str | None:
    if shared_with is None:
        return None
    if isinstance(shared_with, str) or not all(isinstance(c, str) and c for c in shared_with):
        raise ValueError(f"shared_with: expected a list of client ids or None, got {shared_with!r}")
    return json.dumps(sorted(set(shared_with)))


def _visible(shared: str | None, client_id: str | None) -> bool:
    return client_id is None or shared is None or client_id in json.loads(shared)


class FootprintRepository:
    """The footprints of one store file. Safe to use from several threads (a connection a call)."""

    def __init__(self, store_path: str | Path) -> None:
        from twin.store import Store

        self.path = Path(store_path)
        with Store(self.path):  # creates the file or runs its missing migrations (footprint table: 7)
            pass
        # ListFootprints reads every footprint: decoded once and kept until the file changes
        # (PRAGMA data_version moves when another connection commits), not at every request
        self._lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._cached: tuple[int, list[tuple[dict, str | None]]] | None = None

    def close(self) -> None:
        with self._lock:
            if self._reader is not None:
                self._reader.close()
                self._reader, self._cached = None, None

    def _all(self) -> list[tuple[dict, str | None]]:
        with self._lock:
            if self._reader is None:
                self._reader = self._connect()
            version = self._reader.execute("PRAGMA data_version").fetchone()[0]
            if self._cached is None or self._cached[0] != version:
                rows = self._reader.execute("SELECT doc, shared_with FROM footprint ORDER BY seq").fetchall()
                self._cached = (version, [(json.loads(d), s) for d, s in rows])
            return self._cached[1]

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=10000")
        return db

    # -- publishing ----------------------------------------------------------------------------

    def publish(self, inventory: dict, cfg=None, shared_with=None, *, country: str | None = None,
                created: str | None = None) -> list[dict]:
        """Store the footprints of a report's inventory; returns them as now served (see module doc)."""
        return self.publish_report(inventory, cfg, shared_with, country=country, created=created).docs

    def publish_report(self, inventory: dict, cfg=None, shared_with=None, *, country: str | None = None,
                       created: str | None = None) -> PublishResult:
        pact, country = _pact_and_country(cfg, country)
        shared = _shared_json(shared_with)
        work = dict(inventory, notes=list(inventory.get("notes") or []))
        made = pact_document(work, pact, country, created=created or _now_text())["data"]
        origin = inventory.get("origin", "measured")
        result = PublishResult()
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")  # one publisher at a time decides the revisions
            now = time.time()
            for pf in made:
                pcf = pf["pcf"]
                series = footprint_series(pf["companyIds"][0], pf["productIds"][0], pcf["referencePeriodStart"],
                                          pcf["referencePeriodEnd"], origin)
                if pf["id"] != footprint_id(series, 1):  # pact.py and this table must name series alike
                    raise RuntimeError(f"footprint {pf['id']} is not revision 1 of series {series}")
                result.docs.append(self._publish_one(db, pf, str(series), shared, now, result))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()
        inventory.setdefault("notes", []).extend(work["notes"][len(inventory.get("notes") or []):])
        return result

    def _publish_one(self, db: sqlite3.Connection, pf: dict, series: str, shared: str | None, now: float,
                     result: PublishResult) -> dict:
        digest = figures_digest(pf)
        latest = db.execute("SELECT revision, figures, doc FROM footprint WHERE series = ? "
                            "ORDER BY revision DESC LIMIT 1", (series,)).fetchone()
        db.execute("UPDATE footprint SET shared_with = ? WHERE series = ?", (shared, series))
        if latest is not None and latest[1] == digest:
            doc = json.loads(latest[2])
            result.unchanged.append(doc["id"])
            return doc
        revision = 1 if latest is None else latest[0] + 1
        doc = dict(pf, id=footprint_id(uuid.UUID(series), revision), status="Active")
        if revision > 1:
            doc["precedingPfIds"] = [footprint_id(uuid.UUID(series), k) for k in range(revision - 1, 0, -1)]
        validate_footprint(doc)
        for old_id, old_doc in db.execute("SELECT id, doc FROM footprint WHERE series = ? AND status = 'Active'",
                                          (series,)).fetchall():
            old = json.loads(old_doc)
            old["status"] = "Deprecated"
            db.execute("UPDATE footprint SET status = 'Deprecated', doc = ? WHERE id = ?", (json.dumps(old), old_id))
            db.execute("INSERT INTO footprint_change (id, at) VALUES (?, ?)", (old_id, now))
            result.deprecated.append(old_id)
        db.execute("INSERT INTO footprint (id, series, revision, status, figures, shared_with, published, doc) "
                   "VALUES (?, ?, ?, 'Active', ?, ?, ?, ?)",
                   (doc["id"], series, revision, digest, shared, now, json.dumps(doc)))
        db.execute("INSERT INTO footprint_change (id, at) VALUES (?, ?)", (doc["id"], now))
        (result.new if revision == 1 else result.superseding).append(doc["id"])
        return doc

    def deprecate(self, pf_id: str) -> bool:
        """Mark a footprint ``Deprecated`` without a successor (obsolete); False if it is unknown.
        Deprecating a deprecated footprint changes nothing."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT doc, status FROM footprint WHERE id = ?", (pf_id,)).fetchone()
            if row is not None and row[1] == "Active":
                doc = dict(json.loads(row[0]), status="Deprecated")
                db.execute("UPDATE footprint SET status = 'Deprecated', doc = ? WHERE id = ?", (json.dumps(doc), pf_id))
                db.execute("INSERT INTO footprint_change (id, at) VALUES (?, ?)", (pf_id, time.time()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()
        return row is not None

    # -- reading -------------------------------------------------------------------------------

    def list(self, client_id: str | None, filters: Mapping[str, object] | None = None, limit: int | None = None,
             offset: int = 0) -> tuple[list[dict], int]:
        """The footprints ``client_id`` may see that match the v3 filters, in publication order:
        (one page from ``offset``, at most ``limit`` long; the number matching in all).
        Raises FilterError for a filter, limit or offset the v3 API cannot apply. The documents are
        shared with later calls: read them, do not change them."""
        for name, v in (("limit", limit), ("offset", offset)):
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise FilterError(f"{name}: expected a whole number 0 or more, got {v!r}")
        criteria = parse_filters(filters)
        found = [doc for doc, shared in self._all() if _visible(shared, client_id) and criteria.matches(doc)]
        end = None if limit is None else offset + limit
        return found[offset:end], len(found)

    def get(self, client_id: str | None, pf_id: str) -> dict | None:
        """The footprint ``pf_id`` if ``client_id`` may see it (deprecated ones too), else None;
        ``exists`` tells an unknown id (404) from one not shared with the client (403)."""
        row = self._row(pf_id)
        if row is None or not _visible(row[1], client_id):
            return None
        return json.loads(row[0])

    def exists(self, pf_id: str) -> bool:
        return self._row(pf_id) is not None

    def _row(self, pf_id: str):
        db = self._connect()
        try:
            return db.execute("SELECT doc, shared_with FROM footprint WHERE id = ?", (str(pf_id),)).fetchone()
        finally:
            db.close()

    # -- changes, for PublishedEvent notices ---------------------------------------------------

    def changes(self, client_id: str) -> tuple[list[str], int]:
        """Ids of the footprints ``client_id`` may see that changed since it was last told (its
        cursor), each once, oldest first, and the change number to ``mark_told`` once told."""
        db = self._connect()
        try:
            row = db.execute("SELECT seq FROM footprint_notice WHERE client_id = ?", (client_id,)).fetchone()
            since = row[0] if row else 0
            rows = db.execute("SELECT c.seq, c.id, f.shared_with FROM footprint_change c JOIN footprint f ON f.id = c.id "
                              "WHERE c.seq > ? ORDER BY c.seq", (since,)).fetchall()
        finally:
            db.close()
        ids = list(dict.fromkeys(pf_id for _, pf_id, shared in rows if _visible(shared, client_id)))
        return ids, (rows[-1][0] if rows else since)

    def mark_told(self, client_id: str, seq: int) -> None:
        db = self._connect()
        try:
            db.execute("INSERT INTO footprint_notice (client_id, seq) VALUES (?, ?) ON CONFLICT (client_id) "
                       "DO UPDATE SET seq = max(seq, excluded.seq)", (client_id, seq))
        finally:
            db.close()


def publish_and_write(store_path: str | Path, inventory: dict, out_path: str | Path, cfg=None,
                      country: str | None = None) -> dict:
    """``report --format pact``: publish the inventory's footprints into the store, then write the
    ``{"data": [...]}`` document of what the store now serves for them, so the file and the API
    hold the same documents. Returns the inventory, its notes telling what the publish did."""
    from carbon.reports.pact import validate_pact

    result = FootprintRepository(store_path).publish_report(inventory, cfg, country=country)
    doc = {"data": result.docs}
    validate_pact(doc)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    s = result.summary()
    inventory.setdefault("notes", []).append(
        f"pact: published into {Path(store_path).name}: {s['new']} new, {s['superseding']} superseding "
        f"({s['deprecated']} now Deprecated), {s['unchanged']} unchanged footprint(s)")
    inventory["pact_publish"] = s
    return inventory
