"""Durable store-and-forward spool: line protocol waits here, on disk, until the server acknowledges it.

On-disk format: a directory (``spool_path``) of append-only *segment* files ``<n>.seg`` and one
small cursor file ``ack``. A write call's lines are stored as *records* (at most one batch of
points each; the record format, with its CRC-32, is in ``segment.py``) appended to the active
segment with a single ``writev`` and, with ``sync="full"``, one ``fdatasync``; only after that does
a point count as accepted.

Integrity on reopening (and on reading a record back from disk): a torn tail, the end of the last
segment cut short by a crash mid-append, was never accepted: it is cut off and logged at INFO. A
record whose CRC fails inside a segment (a flipped bit) had been accepted: it is skipped, counted
(``corrupt_records``, its points in ``dropped["corrupt"]``) and logged as an ERROR naming the
segment and offset, and the intact records after it are kept and sent.

Disk full (ENOSPC or EDQUOT from the write, the fsync or a new segment): the append is cut back,
its points are counted in ``dropped["disk_full"]`` and ``append`` returns 0 instead of raising;
one ERROR line says so (at most one a minute), ``disk_full`` is True, and the next append that
fits clears it (one WARNING line): writing resumes by itself once space returns. Acknowledged
records in the active segment are freed first (a new segment is started so the old one can go).

The sender reads records oldest first (recent ones from memory) and they are forgotten only after
the server acknowledged them: the cursor file then records where the oldest record still to send
starts, and segments wholly behind it are deleted. The cursor is not fsynced: lost or stale after a
crash, it makes acknowledged points be sent once more, which is harmless (InfluxDB identifies a
point by measurement, tag set and timestamp), never skips one that was not acknowledged.

Overflow policy (documented in README.md): the spool is bounded by ``max_bytes`` (the stored line
protocol, excluding the 28-byte headers and the acknowledged records still in a live segment) and
by ``max_age_s`` (time since a record was accepted). When either bound is passed, the OLDEST
records are dropped, whole, until the spool is within bounds again: recent data is worth more to a
running factory than week-old data, and this is what a full disk cannot choose for us. Every
dropped point is counted (``dropped``) and logged with the reason. The newest record is never
dropped for size, so a spool always keeps the last write.

``sync="full"`` (default) fdatasyncs each append (and the directory when a segment is created): a
power cut loses no accepted point. ``sync="normal"`` survives a crash or ``kill -9``, not a power cut.

A spool path that is an SQLite file (the format before segments) is migrated on open (``legacy.py``):
its chunks are copied, oldest first, into the new directory, synced, and only then is it deleted.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections import deque
from pathlib import Path

from . import legacy as legacy_spool
from .segment import (HEADER_SIZE, Chunk, Cursor, Rec, SpoolError, check_body, check_usable, encode, fsync_dir,
                      load, seg_name)

log = logging.getLogger("connectors.influxdb.spool")

__all__ = ["Chunk", "Spool", "SpoolError", "check_usable"]

SEGMENT_BYTES = 16 * 2**20  # a segment is closed (and a new one started) past this size
_IDLE_ROLL_BYTES = 1 * 2**20  # ... or past this size once everything in it is acknowledged
CACHE_BYTES = 64 * 2**20  # bodies of recent appends kept in memory for the sender
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)
LOG_EVERY_S = 60.0  # at most one disk-full ERROR line per this many seconds


class Spool:
    """A bounded, durable FIFO of line-protocol records (segment files). Thread-safe."""

    def __init__(self, path: str | Path, *, max_bytes: int = 512 * 2**20, max_age_s: float = 7 * 86400.0,
                 sync: str = "full") -> None:
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
        self._recs: deque[Rec] = deque()
        self._next_id = 1
        self._cached = 0  # body bytes held in memory
        self._read_fds: dict[int, int] = {}
        self._fd = -1
        self._cursor: Cursor | None = None
        self._roll_next = False  # a failed append could not be cut back: continue in a new segment
        self.depth = 0  # points spooled, not yet acknowledged
        self.n_bytes = 0  # their line protocol bytes
        #: points dropped since this process opened the spool, by reason: the overflow policy
        #: ("bytes", "age"), records that failed their CRC ("corrupt"), appends refused by a full disk
        self.dropped = {"bytes": 0, "age": 0, "corrupt": 0, "disk_full": 0}
        #: records (or runs of bad bytes) that failed their checks and were skipped
        self.corrupt_records = 0
        #: bytes of a torn tail cut off when the spool was opened (appends a crash cut short: never accepted)
        self.discarded_bytes = 0
        #: the last append found the disk full (its points were dropped); cleared by one that fits
        self.disk_full = False
        self._full_logged_at = -LOG_EVERY_S
        self._full_told = False  # this episode's ERROR line was written: say when it ends
        try:
            self._open()
        except OSError as e:
            self.close()
            raise SpoolError(f"{self.path}: {e.strerror or e}") from None

    def _open(self) -> None:
        legacy = self.path.with_name(self.path.name + ".legacy-sqlite")
        if self.path.is_file():  # the SQLite spool of earlier versions
            legacy_spool.park(self.path, legacy)
        new_dir = not self.path.exists()
        self.path.mkdir(parents=True, exist_ok=True)
        if new_dir:
            fsync_dir(self.path.parent)
        self._cursor = Cursor(self.path / "ack")
        self._load()
        if legacy.exists():
            self._import_legacy(legacy)
        if self.depth:
            log.info("spool %s holds %d points from an earlier run; they are replayed first", self.path, self.depth)

    # -- public API ------------------------------------------------------------------------

    def append(self, lines: list[str], chunk_points: int) -> int:
        """Store ``lines`` durably (records of at most ``chunk_points``); return the points accepted
        (0 when the disk is full: then they are counted in ``dropped["disk_full"]``)."""
        if not lines:
            return 0
        n = len(lines)
        bodies = [("\n".join(lines[i : i + chunk_points]).encode(), min(chunk_points, n - i))
                  for i in range(0, n, chunk_points)]
        return n if self._append_bodies(bodies, time.time()) else 0

    def peek(self, max_points: int) -> list[Chunk]:
        """The oldest records, up to ``max_points`` points in all (at least one record if any).

        A record read back from disk whose CRC fails is skipped and counted (see the module doc).
        """
        with self._lock:
            self._enforce_bounds_locked(time.time())
            picked: list[Chunk] = []
            total = 0
            recs = self._recs
            while len(picked) < len(recs):
                r = recs[len(picked)]
                if picked and total + r.n_points > max_points:
                    break
                body = r.body if r.body is not None else self._read_locked(r)
                if body is None:
                    if picked:
                        break  # it becomes the oldest once these are acknowledged
                    self._forget_locked(r.id)
                    self._count_corrupt(r.seg, r.off, HEADER_SIZE + r.n_bytes, 1, r.n_points)
                    continue
                picked.append(Chunk(r.id, r.accepted_s, r.n_points, body))
                total += r.n_points
            return picked

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
            for fd in self._read_fds.values():
                os.close(fd)
            self._read_fds.clear()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            if self._cursor is not None:
                self._cursor.close()
                self._cursor = None

    # -- appending -------------------------------------------------------------------------

    def _append_bodies(self, bodies: list[tuple[bytes, int]], now: float) -> bool:
        """Write one call's records; False (points counted as dropped) when the disk is full."""
        parts = encode(bodies, now)
        total = sum(len(p) for p in parts)
        with self._append_lock:
            try:
                start = self._write_locked(parts, total)
            except OSError as e:
                if e.errno not in _NO_SPACE:
                    raise
                start = self._reclaim_and_retry(parts, total)
                if start is None:
                    self._note_disk_full(e, sum(n for _, n in bodies))
                    return False
            if self.disk_full:
                self.disk_full = False
                if self._full_told:
                    self._full_told = False
                    log.warning("spool %s: disk space again; writing resumes (%d points were dropped while "
                                "it was full)", self.path, self.dropped["disk_full"])
            off = start
            with self._lock:
                for body, n in bodies:
                    keep = self._cached + len(body) <= CACHE_BYTES
                    if keep:
                        self._cached += len(body)
                    self._recs.append(Rec(self._next_id, self._seg, off, n, len(body), now, body if keep else None))
                    self._next_id += 1
                    off += HEADER_SIZE + len(body)
                    self.depth += n
                    self.n_bytes += len(body)
                self._enforce_bounds_locked(time.time())
        return True

    def _write_locked(self, parts: list[bytes], total: int) -> int:
        """Append ``parts`` to the active segment (rolling first if due); their offset. Append lock held."""
        self._maybe_roll()
        fd, start = self._fd, self._size
        try:
            written = os.writev(fd, parts)
            if written < total:  # a short write (rare, or a disk filling up): finish it
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
            except OSError:
                log.exception("spool %s: could not cut a failed append back; continuing in a new segment", self.path)
                self._roll_next = True
            raise
        self._size = start + total
        return start

    def _reclaim_and_retry(self, parts: list[bytes], total: int) -> int | None:
        """On a full disk, when the active segment holds only acknowledged records (it is kept until
        it reaches 1 MiB), start a new one so that it can go, and try once more. Append lock held."""
        with self._lock:
            if self._size == 0 or (self._recs and self._recs[-1].seg == self._seg):
                return None
        try:
            self._open_segment(self._seg + 1)
            with self._lock:
                self._collect_locked(self._recs[0].seg if self._recs else self._seg)
            return self._write_locked(parts, total)
        except OSError as e:
            if e.errno not in _NO_SPACE:
                raise
            return None

    def _note_disk_full(self, e: OSError, points: int) -> None:
        with self._lock:
            self.dropped["disk_full"] += points
            first = not self.disk_full
            self.disk_full = True
        # One line, not one per batch; nor one per flap of a disk at the edge (an append that fits
        # between two refused ones): at most one a minute, the counts and ``disk_full`` say the rest.
        if first and time.monotonic() - self._full_logged_at >= LOG_EVERY_S:
            self._full_logged_at = time.monotonic()
            self._full_told = True
            log.error("spool %s: %s; new points are dropped (counted) until space returns", self.path,
                      e.strerror or e)

    def _maybe_roll(self) -> None:
        """Start a new segment when the active one is big (or idle and not small). Append lock held."""
        if self._roll_next:
            self._open_segment(self._seg + 1)
            self._roll_next = False
            return
        if self._size < _IDLE_ROLL_BYTES:
            return
        if self._size < SEGMENT_BYTES:
            with self._lock:
                if self._recs and self._recs[-1].seg == self._seg:
                    return  # records still waiting in it: keep filling it
        self._open_segment(self._seg + 1)

    def _open_segment(self, n: int) -> None:
        fd = os.open(self.path / seg_name(n), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        if self._full:
            fsync_dir(self.path)  # the new file's name must survive a power cut too
        old = self._fd
        self._fd, self._seg, self._size = fd, n, os.fstat(fd).st_size
        if old >= 0:
            os.close(old)

    # -- reading, forgetting, bounds (lock held) ---------------------------------------------

    def _read_locked(self, r: Rec) -> bytes | None:
        """The body of ``r`` read back from its segment; None when it fails its CRC."""
        fd = self._read_fds.get(r.seg)
        if fd is None:
            fd = self._read_fds[r.seg] = os.open(self.path / seg_name(r.seg), os.O_RDONLY)
        return check_body(os.pread(fd, HEADER_SIZE + r.n_bytes, r.off))

    def _count_corrupt(self, seg: int, off: int, n_bytes: int, records: int, points: int) -> None:
        self.corrupt_records += records
        self.dropped["corrupt"] += points
        log.error("spool %s: segment %d offset %d: %d bytes failed their checksum; skipped %d record(s), "
                  "%d points", self.path, seg, off, n_bytes, records, points)

    def _pop_locked(self) -> Rec:
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
            self._cursor.write(seg, off)
            self._collect_locked(seg)
        return n

    def _collect_locked(self, head_seg: int) -> None:
        """Delete the segments wholly behind the cursor (never the active one)."""
        for n in [s for s in self._read_fds if s < head_seg]:
            os.close(self._read_fds.pop(n))
        while self._oldest_seg < head_seg and self._oldest_seg < self._seg:
            try:
                os.unlink(self.path / seg_name(self._oldest_seg))
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

    def _load(self) -> None:
        """Index the records after the cursor; report corruption and a torn tail (``segment.load``)."""
        cursor = self._cursor.read()
        segs, scans = load(self.path, cursor)
        for n, found in scans:
            for c in found.corrupt:
                self._count_corrupt(n, c.off, c.n_bytes, c.records, c.points)
            if found.torn_bytes:
                self.discarded_bytes += found.torn_bytes
                log.info("spool %s: cut off a torn tail of %d bytes in segment %d at offset %d (an append a "
                         "crash cut short; it had not been accepted)", self.path, found.torn_bytes, n,
                         found.valid_end)
            for r in found.recs:
                r.id = self._next_id
                self._next_id += 1
                self._recs.append(r)
                self.depth += r.n_points
                self.n_bytes += r.n_bytes
        self._oldest_seg = segs[0] if segs else (cursor[0] if cursor else 0)
        self._open_segment(segs[-1] if segs else self._oldest_seg)

    def _import_legacy(self, legacy: Path) -> None:
        rows = legacy_spool.rows(legacy)
        for acc, npts, body in rows:
            if not self._append_bodies([(body, npts)], acc):
                raise OSError(errno.ENOSPC, "no space left to migrate the SQLite spool " + str(legacy))
        if rows and not self._full:
            os.fdatasync(self._fd)  # the copy must be durable before the original goes
        legacy.unlink()
        fsync_dir(self.path.parent)
        log.info("spool %s: migrated %d points from the SQLite spool", self.path, sum(r[1] for r in rows))
