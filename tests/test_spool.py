"""The durable spool: order, persistence across reopening, chunking and the overflow policy."""

from __future__ import annotations

import sqlite3

import pytest

from connectors.influxdb import spool as spool_module
from connectors.influxdb.spool import Spool


def lines(a: int, b: int) -> list[str]:
    return [f"m,k=v f={i}.0 {i}" for i in range(a, b)]


def body_lines(chunks) -> list[str]:
    return [ln for c in chunks for ln in c.body.decode().split("\n")]


def test_fifo_chunking_and_delete(tmp_path):
    sp = Spool(tmp_path / "s.sqlite")
    assert sp.append(lines(0, 25), chunk_points=10) == 25
    assert sp.append(lines(25, 30), chunk_points=10) == 5
    assert sp.depth == 30
    first = sp.peek(20)
    assert [c.n_points for c in first] == [10, 10]
    assert body_lines(first) == lines(0, 20)
    sp.delete(first)
    assert sp.depth == 10
    rest = sp.peek(1000)
    assert body_lines(rest) == lines(20, 30)
    # A batch smaller than one chunk still returns that chunk, whole.
    assert [c.n_points for c in sp.peek(1)] == [5]
    sp.delete(rest)
    assert sp.depth == 0 and sp.n_bytes == 0 and sp.peek(10) == [] and sp.oldest_age_s() is None


def test_spool_survives_reopen_and_keeps_order(tmp_path):
    path = tmp_path / "s.sqlite"
    sp = Spool(path)
    sp.append(lines(0, 7), chunk_points=3)
    sp.delete(sp.peek(3))
    sp.close()
    again = Spool(path)
    assert again.depth == 4
    assert body_lines(again.peek(100)) == lines(3, 7)
    again.append(lines(7, 9), chunk_points=3)
    assert body_lines(again.peek(100)) == lines(3, 9)
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_full_spool_drops_oldest_and_counts_them(tmp_path):
    one = len("\n".join(lines(100, 110)).encode())  # every chunk below has this size (3-digit i)
    sp = Spool(tmp_path / "s.sqlite", max_bytes=3 * one)
    for k in range(6):
        sp.append(lines(100 + 10 * k, 110 + 10 * k), chunk_points=10)
    assert sp.n_bytes == 3 * one
    assert sp.dropped == {"bytes": 30, "age": 0}
    assert sp.depth == 30
    assert body_lines(sp.peek(1000)) == lines(130, 160)  # the newest are kept


def test_newest_chunk_is_kept_even_when_alone_too_big(tmp_path):
    sp = Spool(tmp_path / "s.sqlite", max_bytes=10)
    sp.append(lines(0, 5), chunk_points=100)
    sp.append(lines(5, 10), chunk_points=100)
    assert sp.depth == 5 and sp.dropped["bytes"] == 5
    assert body_lines(sp.peek(100)) == lines(5, 10)


def test_old_chunks_expire_and_are_counted(tmp_path, monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(spool_module.time, "time", lambda: now[0])
    sp = Spool(tmp_path / "s.sqlite", max_age_s=3600)
    sp.append(lines(0, 4), chunk_points=2)
    now[0] += 1800
    sp.append(lines(4, 6), chunk_points=2)
    assert sp.oldest_age_s() == 1800
    now[0] += 1801  # the first write is now older than an hour, the second is not
    assert body_lines(sp.peek(100)) == lines(4, 6)
    assert sp.dropped == {"bytes": 0, "age": 4}
    assert sp.depth == 2


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="sync"):
        Spool(tmp_path / "a.sqlite", sync="sometimes")
    with pytest.raises(ValueError, match="positive"):
        Spool(tmp_path / "b.sqlite", max_bytes=0)
