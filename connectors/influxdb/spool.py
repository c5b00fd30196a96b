"""Durable store-and-forward spool: line protocol waits here, on disk, until the server acknowledges it.

On-disk format: a directory (``spool_path``) of append-only *segment* files ``<n>.seg`` and one
small cursor file ``ack``. A write call's lines are stored as *records* (at most one batch of
points each, the lines joined by newlines, UTF-8) appended to the active segment with a single
``writev`` and, with ``sync="full"``, one ``fdatasync``; only after that does a point count as
accepted. Each record has a 28-byte header::

    magic b"FTS1" | crc32 (u32) | n_bytes (u32) | n_points (u32) | more (u32) | accepted_s (f64)

The CRC covers the header fields after it and the body. ``more`` is the number of records that
follow in the same write call: a write call is all-or-nothing, so when a ``kill -9`` or a power cut
tears the tail of the active segment, reopening finds the first record (or write call) whose bytes
are incomplete or fail the CRC, discards it and everything after it, and truncates the file there.
Nothing discarded had been acknowledged to the caller (``append`` had not returned).

The sender reads records oldest first (the most recent ones from memory, so it does not read back
what was just written) and they are forgotten only after the server acknowledged them: the cursor
file then records the position of the oldest record still to send, and segments wholly behind it
are deleted. The cursor is written in place and not fsynced: if it is lost or stale after a crash,
acknowledged points are sent once more, which is harmless (InfluxDB identifies a point by
measurement, tag set and timestamp, and a second write of it overwrites the same values). It never
makes the spool skip a point that was not acknowledged.

Overflow policy (documented in README.md): the spool is bounded by ``max_bytes`` (the stored line
protocol, excluding the 28-byte headers and the acknowledged records still in a live segment) and
by ``max_age_s`` (time since a record was accepted). When either bound is passed, the OLDEST
records are dropped, whole, until the spool is within bounds again: recent data is worth more to a
running factory than week-old data, and this is what a full disk cannot choose for us. Every
dropped point is counted (``dropped``) and logged with the reason. The newest record is never
dropped for size, so a spool always keeps the last write.

``sync="full"`` (default) fdatasyncs each append (and the directory when a segment is created):
accepted points survive a power cut. ``sync="normal"`` leaves the data to the page cache: it
survives a process crash or ``kill -9`` but may lose the last appends on a power cut.

A spool path that is an SQLite file (the format before segments) is migrated on open: its chunks
are copied, oldest first and with their acceptance times, into the new directory, which is synced,
and only then is the SQLite file deleted. A crash during migration copies them again on the next
open (sent twice, harmless as above), never loses them.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import struct
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("connectors.influxdb.spool")

MAGIC = b"FTS1"
_FIELDS = struct.Struct("<IIId")  # n_bytes, n_points, more, accepted_s
_HEADER = struct.Struct("<4sI")  # magic, crc32 of (fields + body)
HEADER_SIZE = _HEADER.size + _FIELDS.size  # 28
_CURSOR = struct.Struct("<QQI")  # segment number, offset, crc32 of the first 16 bytes
SEGMENT_BYTES = 16 * 2**20  # a segment is closed (and a new one started) past this size
_IDLE_ROLL_BYTES = 1 * 2**20  # ... or past this size once everything in it is acknowledged
CACHE_BYTES = 64 * 2**20  # bodies of recent appends kept in memory for the sender


@dataclass(frozen=True, slots=True)
class Chunk:
    id: int
    accepted_s: float
    n_points: int
    body: bytes


class _Rec:
    __slots__ = ("id", "seg", "off", "n_points", "n_bytes", "accepted_s", "body")

    def __init__(self, id, seg, off, n_points, n_bytes, accepted_s, body):
        self.id, self.seg, self.off, self.n_points = id, seg, off, n_points
        self.n_bytes, self.accepted_s, self.body = n_bytes, accepted_s, body

    @property
    def end(self) -> int:
        return self.off + HEADER_SIZE + self.n_bytes


def _seg_name(n: int) -> str:
    return f"{n:016d}.seg"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    """A bounded, durable FIFO of line-protocol records (segment files). Thread-safe."""

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
        self.max_bytes = int(max_bytes)
        self.max_age_s = float(max_age_s)
        self.sync = sync
        self._full = sync == "full"
        self._lock = threading.Lock()  # the record queue and the counters
        self._append_lock = threading.Lock()  # the active segment (one appender at a time)
        self._recs: deque[_Rec] = deque()
        self._next_id = 1
        self._cached = 0  # body bytes held in memory
        self._read_fds: dict[int, int] = {}
        self.depth = 0  # points spooled, not yet acknowledged
        self.n_bytes = 0  # their line protocol bytes
        #: points dropped by the overflow policy, by reason ("bytes", "age"), since this process opened it
        self.dropped = {"bytes": 0, "age": 0}
        #: bytes of a torn or corrupt tail discarded when the spool was opened (never acknowledged writes)
        self.discarded_bytes = 0

        legacy = self.path.with_name(self.path.name + ".legacy-sqlite")
        if self.path.is_file():  # the SQLite spool of earlier versions
            self._park_legacy(legacy)
        new_dir = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        if new_dir:
            _fsync_dir(self.path.parent)
        self._cursor_fd = os.open(self.path / "ack", os.O_RDWR | os.O_CREAT, 0o644)
        self._load()
        if legacy.exists():
            self._import_legacy(legacy)
        if self.depth:
            log.info("spool %s holds %d points from an earlier run; they are replayed first", self.path, self.depth)

    # -- public API ------------------------------------------------------------------------

    def append(self, lines: list[str], chunk_points: int) -> int:
        """Store ``lines`` durably (records of at most ``chunk_points``); return the points accepted."""
        if not lines:
            return 0
        now = time.time()
        n = len(lines)
        if n <= chunk_points:
            bodies = [("\n".join(lines).encode(), n)]
        else:
            bodies = [("\n".join(lines[i : i + chunk_points]).encode(), min(chunk_points, n - i))
                      for i in range(0, n, chunk_points)]
        self._append_bodies(bodies, now)
        return n

    def peek(self, max_points: int) -> list[Chunk]:
        """The oldest records, up to ``max_points`` points in all (at least one record if any)."""
        with self._lock:
            self._enforce_bounds_locked(time.time())
            picked: list[_Rec] = []
            total = 0
            for r in self._recs:
                if picked and total + r.n_points > max_points:
                    break
                picked.append(r)
                total += r.n_points
            return [Chunk(r.id, r.accepted_s, r.n_points, r.body if r.body is not None else self._read_locked(r))
                    for r in picked]

    def delete(self, chunks: list[Chunk]) -> None:
        """Forget acknowledged records: a list ``peek`` returned (the oldest, in order)."""
        if not chunks:
            return
        with self._lock:
            self._forget_locked(chunks[-1].id)

    def oldest_age_s(self) -> float | None:
        with self._lock:
            return None if not self._recs else max(0.0, time.time() - self._recs[0].accepted_s)

    def close(self) -> None:
        with self._append_lock, self._lock:
            if self._cursor_fd < 0:
                return
            for fd in self._read_fds.values():
                os.close(fd)
            self._read_fds.clear()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            os.close(self._cursor_fd)
            self._cursor_fd = -1

    # -- appending -------------------------------------------------------------------------

    def _append_bodies(self, bodies: list[tuple[bytes, int]], now: float) -> None:
        parts: list[bytes] = []
        k = len(bodies)
        for j, (body, n) in enumerate(bodies):
            fields = _FIELDS.pack(len(body), n, k - 1 - j, now)
            parts.append(_HEADER.pack(MAGIC, zlib.crc32(body, zlib.crc32(fields))) + fields)
            parts.append(body)
        with self._append_lock:
            self._maybe_roll()
            fd, seg, start = self._fd, self._seg, self._size
            try:
                written = os.writev(fd, parts)
                total = sum(len(p) for p in parts)
                if written < total:  # a short write (rare): finish it
                    rest = b"".join(parts)[written:]
                    while rest:
                        rest = rest[os.write(fd, rest):]
                if self._full:
                    os.fdatasync(fd)
            except BaseException:
                # Never leave a partial write call in the middle of the segment: later appends
                # would sit behind bytes that fail the checks on reopening.
                try:
                    os.ftruncate(fd, start)
                    os.lseek(fd, start, os.SEEK_SET)
                except OSError:
                    log.exception("spool %s: could not cut a failed append back", self.path)
                raise
            self._size = start + total
            recs = []
            off = start
            with self._lock:
                for body, n in bodies:
                    keep = self._cached + len(body) <= CACHE_BYTES
                    if keep:
                        self._cached += len(body)
                    recs.append(_Rec(self._next_id, seg, off, n, len(body), now, body if keep else None))
                    self._next_id += 1
                    off += HEADER_SIZE + len(body)
                    self.depth += n
                    self.n_bytes += len(body)
                self._recs.extend(recs)
                self._enforce_bounds_locked(time.time())

    def _maybe_roll(self) -> None:
        """Start a new segment when the active one is big (or idle and not small). Append lock held."""
        if self._size < _IDLE_ROLL_BYTES:
            return
        if self._size < SEGMENT_BYTES:
            with self._lock:
                if self._recs and self._recs[-1].seg == self._seg:
                    return  # records still waiting in it: keep filling it
        self._open_segment(self._seg + 1)

    def _open_segment(self, n: int) -> None:
        fd = os.open(self.path / _seg_name(n), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if self._full:
            _fsync_dir(self.path)  # the new file's name must survive a power cut too
        old = getattr(self, "_fd", -1)
        self._fd, self._seg, self._size = fd, n, os.fstat(fd).st_size
        if old >= 0:
            os.close(old)

    # -- reading, forgetting, bounds (lock held) ---------------------------------------------

    def _read_locked(self, r: _Rec) -> bytes:
        fd = self._read_fds.get(r.seg)
        if fd is None:
            fd = self._read_fds[r.seg] = os.open(self.path / _seg_name(r.seg), os.O_RDONLY)
        body = os.pread(fd, r.n_bytes, r.off + HEADER_SIZE)
        if len(body) != r.n_bytes:
            raise OSError(f"spool segment {r.seg} is shorter than its index")
        return body

    def _pop_locked(self) -> _Rec:
        r = self._recs.popleft()
        self.depth -= r.n_points
        self.n_bytes -= r.n_bytes
        if r.body is not None:
            self._cached -= r.n_bytes
        return r

    def _forget_locked(self, up_to_id: int) -> int:
        """Forget every record with id <= ``up_to_id``; move the cursor; return the points forgotten."""
        n = 0
        last = None
        while self._recs and self._recs[0].id <= up_to_id:
            last = self._pop_locked()
            n += last.n_points
        if last is not None:
            head = self._recs[0] if self._recs else None
            seg, off = (head.seg, head.off) if head is not None else (last.seg, last.end)
            self._write_cursor(seg, off)
            self._collect_locked(seg)
        return n

    def _write_cursor(self, seg: int, off: int) -> None:
        data = struct.pack("<QQ", seg, off)
        os.pwrite(self._cursor_fd, data + struct.pack("<I", zlib.crc32(data)), 0)

    def _collect_locked(self, head_seg: int) -> None:
        """Delete the segments wholly behind the cursor (never the active one)."""
        for n in [s for s in self._read_fds if s < head_seg]:
            os.close(self._read_fds.pop(n))
        while self._oldest_seg < head_seg and self._oldest_seg < self._seg:
            try:
                os.unlink(self.path / _seg_name(self._oldest_seg))
            except FileNotFoundError:
                pass
            self._oldest_seg += 1

    def _enforce_bounds_locked(self, now: float) -> None:
        recs = self._recs
        if not recs:
            return
        limit = now - self.max_age_s
        if recs[0].accepted_s < limit:
            last = None
            for r in recs:
                if r.accepted_s >= limit:
                    break
                last = r
            n = self._forget_locked(last.id)
            self.dropped["age"] += n
            log.warning("spool overflow: dropped %d points older than %.0f s (max_age_s)", n, self.max_age_s)
        if self.n_bytes <= self.max_bytes or len(recs) < 2:
            return
        excess = self.n_bytes - self.max_bytes
        freed, last_victim = 0, None
        for i, r in enumerate(recs):
            if freed >= excess or i == len(recs) - 1:  # the newest record is always kept
                break
            last_victim = r
            freed += r.n_bytes
        if last_victim is not None:
            n = self._forget_locked(last_victim.id)
            self.dropped["bytes"] += n
            log.warning("spool overflow: dropped the %d oldest points to stay within %d bytes (max_bytes)",
                        n, self.max_bytes)

    # -- opening -----------------------------------------------------------------------------

    def _read_cursor(self) -> tuple[int, int] | None:
        data = os.pread(self._cursor_fd, _CURSOR.size, 0)
        if len(data) != _CURSOR.size:
            return None
        seg, off, crc = _CURSOR.unpack(data)
        return (seg, off) if zlib.crc32(data[:16]) == crc else None

    def _load(self) -> None:
        """Index the records after the cursor; cut a torn tail off the last segment."""
        segs = sorted(int(p.name[:-4]) for p in self.path.glob("*.seg") if p.name[:-4].isdigit())
        cursor = self._read_cursor()
        if cursor is not None:
            for n in [s for s in segs if s < cursor[0]]:  # wholly acknowledged, not yet deleted
                os.unlink(self.path / _seg_name(n))
            segs = [s for s in segs if s >= cursor[0]]
        for i, n in enumerate(segs):
            last = i == len(segs) - 1
            recs, valid_end, size = self._scan(n)
            if cursor is not None and n == cursor[0]:
                skip = [r for r in recs if r.end <= cursor[1]]
                # Only trust the cursor when it sits on a record boundary; otherwise replay the segment.
                if cursor[1] == 0 or (skip and skip[-1].end == cursor[1]):
                    recs = recs[len(skip):]
            if valid_end < size:
                self.discarded_bytes += size - valid_end
                what = "a torn tail (an append cut short by a crash)" if last else "corrupt bytes"
                log.warning("spool %s: discarded %d bytes of %s in segment %d", self.path, size - valid_end, what, n)
                if last:
                    fd = os.open(self.path / _seg_name(n), os.O_WRONLY)
                    try:
                        os.ftruncate(fd, valid_end)
                        os.fsync(fd)
                    finally:
                        os.close(fd)
            for r in recs:
                r.id = self._next_id
                self._next_id += 1
                self._recs.append(r)
                self.depth += r.n_points
                self.n_bytes += r.n_bytes
        self._oldest_seg = segs[0] if segs else (cursor[0] if cursor else 0)
        self._fd = -1
        self._open_segment(segs[-1] if segs else self._oldest_seg)

    def _scan(self, n: int) -> tuple[list[_Rec], int, int]:
        """The whole, valid write calls of segment ``n``, the end of the last one, the file size."""
        with open(self.path / _seg_name(n), "rb") as f:
            data = f.read()
        recs: list[_Rec] = []
        group: list[_Rec] = []
        pos = valid_end = 0
        size = len(data)
        while pos + HEADER_SIZE <= size:
            magic, crc = _HEADER.unpack_from(data, pos)
            nb, npts, more, acc = _FIELDS.unpack_from(data, pos + _HEADER.size)
            end = pos + HEADER_SIZE + nb
            if magic != MAGIC or end > size:
                break
            body_view = memoryview(data)[pos + HEADER_SIZE : end]
            if zlib.crc32(body_view, zlib.crc32(data[pos + _HEADER.size : pos + HEADER_SIZE])) != crc:
                break
            group.append(_Rec(0, n, pos, npts, nb, acc, None))
            pos = end
            if more == 0:
                recs.extend(group)
                group = []
                valid_end = pos
        return recs, valid_end, size

    # -- migration from the SQLite spool -------------------------------------------------------

    def _park_legacy(self, legacy: Path) -> None:
        """Move an SQLite spool file aside (its WAL folded in first) so the directory can take its name."""
        db = sqlite3.connect(self.path)
        try:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            db.execute("PRAGMA journal_mode=DELETE")
        finally:
            db.close()
        os.replace(self.path, legacy)
        _fsync_dir(self.path.parent)

    def _import_legacy(self, legacy: Path) -> None:
        db = sqlite3.connect(legacy)
        try:
            rows = db.execute("SELECT accepted_s, n_points, body FROM chunk ORDER BY id").fetchall()
        except sqlite3.DatabaseError:
            rows = []  # not a spool after all (or empty): nothing to carry over
        finally:
            db.close()
        for acc, npts, body in rows:
            self._append_bodies([(bytes(body), npts)], acc)
        if rows and not self._full:
            os.fdatasync(self._fd)  # the copy must be durable before the original goes
        legacy.unlink()
        _fsync_dir(self.path.parent)
        log.info("spool %s: migrated %d points from the SQLite spool", self.path, sum(r[1] for r in rows))
