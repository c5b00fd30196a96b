"""The SQLite spool of earlier versions: moved aside, then read so the segment spool can copy it.

A crash during the copy copies it again on the next open (points sent twice, which is harmless:
InfluxDB overwrites a point with the same measurement, tags and timestamp), never loses it.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from .segment import fsync_dir


def park(path: Path, legacy: Path) -> None:
    """Move an SQLite spool file aside (its WAL folded in first) so the directory can take its name."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
    finally:
        db.close()
    os.replace(path, legacy)
    fsync_dir(path.parent)


def rows(legacy: Path) -> list[tuple[float, int, bytes]]:
    """(accepted_s, n_points, body) of every chunk, oldest first; none when it is not a spool."""
    db = sqlite3.connect(legacy)
    try:
        return [(acc, npts, bytes(body)) for acc, npts, body in
                db.execute("SELECT accepted_s, n_points, body FROM chunk ORDER BY id")]
    except sqlite3.DatabaseError:
        return []
    finally:
        db.close()
