"""Durable store-and-forward spool: line protocol waits here, on disk, until the server acknowledges it.

One SQLite file in WAL mode. A write call's lines are stored as chunks (at most one batch of points
each, the lines joined by newlines) in one transaction; only after that commit does a point count
as accepted. The sender reads chunks oldest first (``AUTOINCREMENT`` ids never go backwards) and
deletes them only after the server acknowledged them, so after an outage, a restart or a
``kill -9`` the spool is replayed in order. A point acknowledged but not yet deleted when the
process dies is sent again: harmless, since InfluxDB identifies a point by measurement, tag set and
timestamp, and a second write of it overwrites the same values.

Overflow policy (documented in README.md): the spool is bounded by ``max_bytes`` (the stored line
protocol, excluding SQLite overhead) and by ``max_age_s`` (time since a chunk was accepted). When
either bound is passed, the OLDEST chunks are dropped, whole, until the spool is within bounds
again: recent data is worth more to a running factory than week-old data, and this is what a full
disk cannot choose for us. Every dropped point is counted (``dropped``) and logged with the reason.
The newest chunk is never dropped for size, so a spool always keeps the last write.

``sync="full"`` (default) fsyncs the WAL at each commit: accepted points survive a power cut.
``sync="normal"`` survives a process crash or ``kill -9`` but may lose the last commits on a power
cut; it is faster on slow disks.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("connectors.influxdb.spool")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS chunk (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    accepted_s REAL NOT NULL,   -- wall-clock epoch seconds when it entered the spool
    n_points INTEGER NOT NULL,
    n_bytes INTEGER NOT NULL,
    body BLOB NOT NULL          -- UTF-8 line protocol, one line per point, newline-separated
)
"""


@dataclass(frozen=True, slots=True)
class Chunk:
    id: int
    accepted_s: float
    n_points: int
    body: bytes


class Spool:
    """A bounded, durable FIFO of line-protocol chunks. Thread-safe."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 512 * 2**20,
        max_age_s: float = 7 * 86400.0,
        sync: str = "full",
    ) -> None:
        if sync not in ("full", "normal"):
            raise ValueError(f"spool sync {sync!r}; expected 'full' or 'normal'")
        if max_bytes <= 0 or max_age_s <= 0:
            raise ValueError(f"spool bounds must be positive; got max_bytes={max_bytes}, max_age_s={max_age_s}")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_s)
        self._lock = threading.Lock()
        # isolation_level=None: we open transactions ourselves, so one write call is one commit.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync.upper()}")
        self._db.execute("PRAGMA busy_timeout=10000")
        self._db.execute(_SCHEMA)
        row = self._db.execute("SELECT count(*), coalesce(sum(n_points), 0), coalesce(sum(n_bytes), 0) FROM chunk").fetchone()
        self._chunks, self.depth, self.n_bytes = row
        #: points dropped by the overflow policy, by reason ("bytes", "age"), since this process opened it
        self.dropped = {"bytes": 0, "age": 0}
        if self.depth:
            log.info("spool %s holds %d points from an earlier run; they are replayed first", self.path, self.depth)

    def append(self, lines: list[str], chunk_points: int) -> int:
        """Store ``lines`` durably (chunks of at most ``chunk_points``); return the points accepted."""
        if not lines:
            return 0
        now = time.time()
        rows = []
        for i in range(0, len(lines), chunk_points):
            body = "\n".join(lines[i : i + chunk_points]).encode()
            rows.append((now, min(chunk_points, len(lines) - i), len(body), body))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT INTO chunk (accepted_s, n_points, n_bytes, body) VALUES (?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._chunks += len(rows)
            self.depth += len(lines)
            self.n_bytes += sum(r[2] for r in rows)
            self._enforce_bounds_locked(now)
        return len(lines)

    def peek(self, max_points: int) -> list[Chunk]:
        """The oldest chunks, up to ``max_points`` points in all (at least one chunk if any)."""
        with self._lock:
            self._enforce_bounds_locked(time.time())
            picked: list[tuple[int, float, int]] = []
            total = 0
            # Sizes first, bodies only for the chunks taken: a chunk can hold a megabyte.
            sizes = self._db.execute(
                "SELECT id, accepted_s, n_points FROM chunk ORDER BY id LIMIT ?", (min(max_points, 10_000),)
            ).fetchall()
            for cid, acc, n in sizes:
                if picked and total + n > max_points:
                    break
                picked.append((cid, acc, n))
                total += n
            if not picked:
                return []
            ids = [p[0] for p in picked]
            bodies = dict(self._db.execute(f"SELECT id, body FROM chunk WHERE id IN ({','.join('?' * len(ids))})", ids).fetchall())
            return [Chunk(cid, acc, n, bytes(bodies[cid])) for cid, acc, n in picked]

    def delete(self, chunks: list[Chunk]) -> None:
        """Forget acknowledged chunks: a list ``peek`` returned (the oldest, in order).

        Being the oldest, they are every chunk with an id up to the last one's; deleting that id
        range keeps the statement small for any number of chunks.
        """
        if not chunks:
            return
        with self._lock:
            self._delete_locked(chunks[-1].id)

    def oldest_age_s(self) -> float | None:
        with self._lock:
            row = self._db.execute("SELECT accepted_s FROM chunk ORDER BY id LIMIT 1").fetchone()
        return None if row is None else max(0.0, time.time() - row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- internals (caller holds the lock) ---------------------------------------------------

    def _delete_locked(self, up_to_id: int) -> tuple[int, int]:
        """Delete every chunk with id <= ``up_to_id``; return (points, bytes) deleted."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            n, b, c = self._db.execute(
                "SELECT coalesce(sum(n_points), 0), coalesce(sum(n_bytes), 0), count(*) FROM chunk WHERE id <= ?", (up_to_id,)
            ).fetchone()
            self._db.execute("DELETE FROM chunk WHERE id <= ?", (up_to_id,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._chunks -= c
        self.depth -= n
        self.n_bytes -= b
        return n, b

    def _enforce_bounds_locked(self, now: float) -> None:
        if not self._chunks:
            return
        # Chunks are accepted in id order, so the expired ones are an id prefix.
        expired = self._db.execute("SELECT max(id) FROM chunk WHERE accepted_s < ?", (now - self.max_age_s,)).fetchone()[0]
        if expired is not None:
            n, _ = self._delete_locked(expired)
            self.dropped["age"] += n
            log.warning("spool overflow: dropped %d points older than %.0f s (max_age_s)", n, self.max_age_s)
        if self.n_bytes <= self.max_bytes:
            return
        last_victim, freed = None, 0
        excess = self.n_bytes - self.max_bytes
        oldest_first = self._db.execute("SELECT id, n_bytes FROM chunk ORDER BY id LIMIT ?", (self._chunks - 1,)).fetchall()
        for cid, nb in oldest_first:
            if freed >= excess:
                break
            last_victim = cid
            freed += nb
        if last_victim is not None:
            n, _ = self._delete_locked(last_victim)
            self.dropped["bytes"] += n
            log.warning("spool overflow: dropped the %d oldest points to stay within %d bytes (max_bytes)", n, self.max_bytes)
