"""The spool's on-disk record format: encoding write calls, and scanning a segment file back.

A segment ``<n>.seg`` is a sequence of records, each a 28-byte header and a body::

    magic b"FTS1" | crc32 (u32) | n_bytes (u32) | n_points (u32) | more (u32) | accepted_s (f64)

The CRC-32 covers the header fields after it and the body (the line protocol of at most one batch,
the lines joined by newlines, UTF-8). ``more`` is the number of records that follow in the same
write call: a write call is all-or-nothing for the caller (``append`` had not returned).

Scanning tells two kinds of bad bytes apart:

- a **torn tail**: after the last valid record of the *last* segment, bytes that hold no complete
  record (a header or a body cut short, or zeros), as a crash in the middle of an append leaves.
  They were never accepted, so they are cut off, along with the earlier records of the same write
  call (``more`` > 0 whose followers are missing).
- **corruption**: a complete record whose CRC fails (a flipped bit on disk), or bad bytes followed
  by a valid record, or bad bytes at the end of an earlier segment. Those records had been
  accepted: each is skipped and counted, and the scan resynchronises on the next record whose
  magic and CRC hold (a false match needs a 32-bit CRC collision), so the records after it are kept.
"""

from __future__ import annotations

import logging
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MAGIC = b"FTS1"
_FIELDS = struct.Struct("<IIId")  # n_bytes, n_points, more, accepted_s
_HEADER = struct.Struct("<4sI")  # magic, crc32 of (fields + body)
HEADER_SIZE = _HEADER.size + _FIELDS.size  # 28
_CURSOR = struct.Struct("<QQI")  # segment number, offset, crc32 of the first 16 bytes

log = logging.getLogger("connectors.influxdb.spool")


class SpoolError(ValueError):
    """The spool directory cannot be used (missing permission, read-only, not a directory).

    The message is ``<spool path>: <problem>``; a ValueError, so a command reports it as bad input.
    """


@dataclass(frozen=True, slots=True)
class Chunk:
    id: int
    accepted_s: float
    n_points: int
    body: bytes


class Rec:
    """One record in the index: where it is, what it holds (the body when it is cached)."""

    __slots__ = ("accepted_s", "body", "id", "n_bytes", "n_points", "off", "seg")

    def __init__(self, id, seg, off, n_points, n_bytes, accepted_s, body):
        self.id, self.seg, self.off, self.n_points = id, seg, off, n_points
        self.n_bytes, self.accepted_s, self.body = n_bytes, accepted_s, body

    @property
    def end(self) -> int:
        return self.off + HEADER_SIZE + self.n_bytes


@dataclass(slots=True)
class Corrupt:
    """A run of bad bytes inside a segment: ``records`` whole records (``points`` estimated) lost."""

    off: int
    n_bytes: int
    records: int
    points: int


@dataclass(slots=True)
class Scan:
    recs: list[Rec] = field(default_factory=list)
    corrupt: list[Corrupt] = field(default_factory=list)
    valid_end: int = 0  # where the file is cut (a torn tail, or a corrupt run at its very end)
    size: int = 0
    torn_bytes: int = 0  # bytes of an append cut short by a crash (never accepted)


def check_usable(path: str | Path) -> None:
    """SpoolError (``<path>: <problem>``) unless the spool directory exists or can be made and its
    cursor file opened for writing: a quick check before any work, without scanning the segments."""
    path = Path(path)
    if path.is_file():
        return  # an SQLite spool of earlier versions: Spool migrates it
    try:
        path.mkdir(parents=True, exist_ok=True)
        os.close(os.open(path / "ack", os.O_RDWR | os.O_CREAT, 0o644))
    except OSError as e:
        raise SpoolError(f"{path}: {e.strerror or e}") from None


def seg_name(n: int) -> str:
    return f"{n:016d}.seg"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def encode(bodies: list[tuple[bytes, int]], accepted_s: float) -> list[bytes]:
    """The buffers of one write call (header, body, header, body ...) for ``os.writev``."""
    parts: list[bytes] = []
    k = len(bodies)
    for j, (body, n) in enumerate(bodies):
        fields = _FIELDS.pack(len(body), n, k - 1 - j, accepted_s)
        parts.append(_HEADER.pack(MAGIC, zlib.crc32(body, zlib.crc32(fields))) + fields)
        parts.append(body)
    return parts


def check_body(header_and_body: bytes) -> bytes | None:
    """The body of a record read back whole from disk, or None when its magic or CRC fails."""
    if len(header_and_body) < HEADER_SIZE:
        return None
    magic, crc = _HEADER.unpack_from(header_and_body, 0)
    if magic != MAGIC or zlib.crc32(memoryview(header_and_body)[_HEADER.size:]) != crc:
        return None
    return header_and_body[HEADER_SIZE:]


def _valid_at(data: bytes, pos: int) -> tuple[Rec, int] | None:
    """The record at ``pos`` and its ``more`` field, if it is complete and its CRC holds."""
    if pos + HEADER_SIZE > len(data):
        return None
    magic, crc = _HEADER.unpack_from(data, pos)
    if magic != MAGIC:
        return None
    nb, npts, more, acc = _FIELDS.unpack_from(data, pos + _HEADER.size)
    end = pos + HEADER_SIZE + nb
    if end > len(data) or zlib.crc32(memoryview(data)[pos + _HEADER.size : end]) != crc:
        return None
    return Rec(0, 0, pos, npts, nb, acc, None), more


def _torn(rest: bytes) -> bool:
    """Whether bad bytes at the very end of the last segment are an append cut short: a header or a
    body that stops early, or zeros (a file extended before its data reached the disk)."""
    if len(rest) < HEADER_SIZE or not rest.strip(b"\x00"):
        return True
    nb = _FIELDS.unpack_from(rest, _HEADER.size)[0]
    return rest[:4] == MAGIC and HEADER_SIZE + nb > len(rest)


def _resync(data: bytes, pos: int) -> int:
    """The offset of the next valid record after ``pos``, or -1."""
    at = data.find(MAGIC, pos + 1)
    while at >= 0:
        if _valid_at(data, at) is not None:
            return at
        at = data.find(MAGIC, at + 1)
    return -1


def _estimate(region: bytes) -> tuple[int, int]:
    """(records, points) lost in a run of bad bytes between two valid records (or the segment's end).

    The headers are followed while they chain exactly over the region; a point count is taken from
    the header when it agrees with the body's line count within one (a bit flipped into or out of a
    newline), else from the line count (the header's field was the one hit).
    """
    def points(header_at: int, end: int) -> int:
        lines = region[header_at + HEADER_SIZE : end].count(b"\n") + 1
        npts = _FIELDS.unpack_from(region, header_at + _HEADER.size)[1]
        return npts if abs(npts - lines) <= 1 else lines

    pos, records, total = 0, 0, 0
    while pos + HEADER_SIZE <= len(region) and region[pos : pos + 4] == MAGIC:
        end = pos + HEADER_SIZE + _FIELDS.unpack_from(region, pos + _HEADER.size)[0]
        if end > len(region):
            break
        records += 1
        total += points(pos, end)
        pos = end
    rest = region[pos:]
    if rest.strip(b"\x00"):  # bytes that do not chain (a length was hit): one record, its lines
        records += 1
        if rest[:4] == MAGIC and len(rest) > HEADER_SIZE:
            total += points(pos, len(region))
        else:
            total += rest.count(b"\n") + 1
    return records, total


def scan(path: Path, n: int, *, last: bool) -> Scan:
    """Index segment ``n``: its valid records, its corrupt runs, and where a torn tail begins."""
    with open(path / seg_name(n), "rb") as f:
        data = f.read()
    out = Scan(size=len(data))
    group: list[Rec] = []  # the records of the write call being read
    pos = 0
    while pos < len(data):
        found = _valid_at(data, pos)
        if found is not None:
            rec, more = found
            rec.seg = n
            group.append(rec)
            pos = rec.end
            if more == 0:
                out.recs.extend(group)
                group = []
                out.valid_end = pos
            continue
        nxt = _resync(data, pos)
        if nxt < 0 and last and _torn(data[pos:]):
            out.torn_bytes = len(data) - out.valid_end  # cut before the unfinished write call
            return out
        stop = len(data) if nxt < 0 else nxt
        # The records of a write call before a corrupt one were written whole: keep them.
        out.recs.extend(group)
        group = []
        records, points = _estimate(data[pos:stop])
        out.corrupt.append(Corrupt(pos, stop - pos, max(records, 1), points))
        if nxt < 0 and last:
            out.valid_end = pos  # counted once: cut off, so later appends do not sit behind it
            return out
        pos = out.valid_end = stop
    if last:  # a write call whose later records never reached the file
        out.torn_bytes = len(data) - out.valid_end
    else:  # an earlier segment was closed after its last append returned
        out.recs.extend(group)
        out.valid_end = len(data)
    return out



def load(path: Path, cursor: tuple[int, int] | None) -> tuple[list[int], list[tuple[int, Scan]]]:
    """The segment numbers and their scans from the cursor on: segments wholly behind the cursor are
    deleted, what lies before it is left out, and the last segment's torn tail (or corrupt end) is
    cut off the file, so that later appends never sit behind bad bytes."""
    segs = sorted(int(p.name[:-4]) for p in path.glob("*.seg") if p.name[:-4].isdigit())
    if cursor is not None:
        for n in [s for s in segs if s < cursor[0]]:  # wholly acknowledged, not yet deleted
            os.unlink(path / seg_name(n))
        segs = [s for s in segs if s >= cursor[0]]
    scans = []
    for i, n in enumerate(segs):
        found = scan(path, n, last=i == len(segs) - 1)
        # Only trust the cursor on a record boundary; otherwise replay the whole segment.
        if cursor is not None and n == cursor[0] and (
                cursor[1] == 0 or any(cursor[1] in (r.off, r.end) for r in found.recs)):
            found.recs = [r for r in found.recs if r.off >= cursor[1]]
            found.corrupt = [c for c in found.corrupt if c.off >= cursor[1]]
        if found.valid_end < found.size:
            fd = os.open(path / seg_name(n), os.O_WRONLY)
            try:
                os.ftruncate(fd, found.valid_end)
                os.fsync(fd)
            finally:
                os.close(fd)
        scans.append((n, found))
    return segs, scans

class Cursor:
    """The ``ack`` file: where the oldest record still to send starts (segment, offset).

    Written in place and not fsynced: a lost or stale cursor only makes acknowledged points be
    sent again (idempotent), so a failing write (a full disk) is logged once and not raised.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._failing = False

    def read(self) -> tuple[int, int] | None:
        data = os.pread(self._fd, _CURSOR.size, 0)
        if len(data) != _CURSOR.size:
            return None
        seg, off, crc = _CURSOR.unpack(data)
        return (seg, off) if zlib.crc32(data[:16]) == crc else None

    def write(self, seg: int, off: int) -> None:
        data = struct.pack("<QQ", seg, off)
        try:
            os.pwrite(self._fd, data + struct.pack("<I", zlib.crc32(data)), 0)
        except OSError as e:
            if not self._failing:
                log.warning("spool cursor %s cannot be written (%s); acknowledged points may be sent "
                            "again after a restart", self.path, e.strerror or e)
            self._failing = True
        else:
            self._failing = False

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
