"""The durable spool: order, persistence across reopening, chunking and the overflow policy."""

from __future__ import annotations

import sqlite3

import pytest
from support.small_disk import fill, small_disk

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
    assert path.is_dir() and [p.suffix for p in path.glob("*.seg")] == [".seg"]


def test_torn_tail_after_a_crash_is_discarded_and_appends_continue(tmp_path):
    path = tmp_path / "s"
    sp = Spool(path)
    sp.append(lines(0, 4), chunk_points=2)
    sp.append(lines(4, 10), chunk_points=2)  # one write call of three records
    sp.close()
    seg = next(path.glob("*.seg"))
    whole = seg.read_bytes()
    # kill -9 in the middle of the second write call: its last record is cut short.
    seg.write_bytes(whole[:-5])
    again = Spool(path)
    # The whole second write call goes (it had not returned), the first stays; the file is cut back.
    assert again.depth == 4 and body_lines(again.peek(100)) == lines(0, 4)
    assert again.discarded_bytes > 0
    again.append(lines(10, 12), chunk_points=2)
    again.close()
    third = Spool(path)
    assert body_lines(third.peek(100)) == lines(0, 4) + lines(10, 12) and third.discarded_bytes == 0


def test_corrupt_record_is_detected_by_its_checksum(tmp_path):
    path = tmp_path / "s"
    sp = Spool(path)
    sp.append(lines(0, 2), chunk_points=2)
    sp.append(lines(2, 4), chunk_points=2)
    sp.close()
    seg = next(path.glob("*.seg"))
    data = bytearray(seg.read_bytes())
    data[-3] ^= 0x01  # a flipped bit in the last body
    seg.write_bytes(bytes(data))
    again = Spool(path)
    assert body_lines(again.peek(100)) == lines(0, 2)


def test_lost_cursor_replays_acknowledged_points_never_skips_any(tmp_path):
    path = tmp_path / "s"
    sp = Spool(path)
    sp.append(lines(0, 6), chunk_points=2)
    sp.delete(sp.peek(2))
    sp.close()
    assert body_lines(Spool(path).peek(100)) == lines(2, 6)
    (path / "ack").write_bytes(b"")  # e.g. a power cut before the cursor reached the disk
    assert body_lines(Spool(path).peek(100)) == lines(0, 6)  # sent again: idempotent, nothing lost


def test_acknowledged_segments_are_deleted(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "SEGMENT_BYTES", 64)
    monkeypatch.setattr(spool_module, "_IDLE_ROLL_BYTES", 64)
    path = tmp_path / "s"
    sp = Spool(path, sync="normal")
    for k in range(5):
        sp.append(lines(10 * k, 10 * k + 10), chunk_points=10)
    assert len(list(path.glob("*.seg"))) == 5
    sp.delete(sp.peek(30))
    assert len(list(path.glob("*.seg"))) == 2  # the three acknowledged ones are gone
    sp.close()
    again = Spool(path)
    assert body_lines(again.peek(100)) == lines(30, 50)


def test_sqlite_spool_of_earlier_versions_is_migrated(tmp_path):
    path = tmp_path / "spool.sqlite"
    db = sqlite3.connect(path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE chunk (id INTEGER PRIMARY KEY AUTOINCREMENT, accepted_s REAL NOT NULL, "
               "n_points INTEGER NOT NULL, n_bytes INTEGER NOT NULL, body BLOB NOT NULL)")
    for a, b in ((0, 3), (3, 5)):
        body = "\n".join(lines(a, b)).encode()
        db.execute("INSERT INTO chunk (accepted_s, n_points, n_bytes, body) VALUES (?, ?, ?, ?)",
                   (1e9 * 1.7, b - a, len(body), body))
    db.commit()
    db.close()
    sp = Spool(path, max_age_s=1e10)
    assert path.is_dir() and not list(tmp_path.glob("*.legacy-sqlite"))
    assert sp.depth == 5 and body_lines(sp.peek(100)) == lines(0, 5)


def test_full_spool_drops_oldest_and_counts_them(tmp_path):
    one = len("\n".join(lines(100, 110)).encode())  # every chunk below has this size (3-digit i)
    sp = Spool(tmp_path / "s.sqlite", max_bytes=3 * one)
    for k in range(6):
        sp.append(lines(100 + 10 * k, 110 + 10 * k), chunk_points=10)
    assert sp.n_bytes == 3 * one
    assert sp.dropped == {"bytes": 30, "age": 0, "corrupt": 0, "disk_full": 0}
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
    assert sp.dropped == {"bytes": 0, "age": 4, "corrupt": 0, "disk_full": 0}
    assert sp.depth == 2


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ValueError, match="sync"):
        Spool(tmp_path / "a.sqlite", sync="sometimes")
    with pytest.raises(ValueError, match="positive"):
        Spool(tmp_path / "b.sqlite", max_bytes=0)


def ten_records(path, sync="full"):
    """A spool of 10 records of 10 points each (one write call each); their offsets in the segment."""
    sp = Spool(path, sync=sync)
    for k in range(10):
        sp.append(lines(100 + 10 * k, 110 + 10 * k), chunk_points=10)
    offsets = [r.off for r in sp._recs]
    sp.close()
    return next(path.glob("*.seg")), offsets


def flip(seg, at: int) -> None:
    data = bytearray(seg.read_bytes())
    data[at] ^= 0x20
    seg.write_bytes(bytes(data))


def test_corrupt_record_inside_a_segment_is_skipped_and_the_later_ones_are_kept(tmp_path, caplog):
    path = tmp_path / "s"
    seg, offsets = ten_records(path)
    flip(seg, offsets[2] + spool_module.HEADER_SIZE + 7)  # a byte in the body of record 3
    again = Spool(path)
    assert again.corrupt_records == 1 and again.dropped["corrupt"] == 10
    assert body_lines(again.peek(1000)) == lines(100, 120) + lines(130, 200)
    assert again.depth == 90 and again.discarded_bytes == 0
    errors = [r for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and f"segment 0 offset {offsets[2]}" in errors[0].getMessage()
    # Appends after it, and the cursor moving past the bad record, do not count it again.
    again.append(lines(200, 205), chunk_points=10)
    again.delete(again.peek(30))  # records 1, 2, 4 acknowledged
    again.close()
    third = Spool(path)
    assert third.corrupt_records == 0 and body_lines(third.peek(1000)) == lines(140, 205)


def test_a_flipped_byte_in_a_header_is_corruption_too(tmp_path):
    path = tmp_path / "s"
    seg, offsets = ten_records(path)
    flip(seg, offsets[2] + 10)  # in n_bytes: the length cannot be trusted, the scan resynchronises
    again = Spool(path)
    assert again.corrupt_records == 1 and again.dropped["corrupt"] == 10
    assert body_lines(again.peek(1000)) == lines(100, 120) + lines(130, 200)


def test_torn_tail_is_cut_and_not_counted_as_corruption(tmp_path, caplog):
    caplog.set_level("INFO", logger="connectors.influxdb.spool")
    path = tmp_path / "s"
    seg, offsets = ten_records(path)
    size = seg.stat().st_size
    with open(seg, "r+b") as f:
        f.truncate(offsets[9] + (size - offsets[9]) // 2)  # the last record, cut mid-way
    again = Spool(path)
    assert again.corrupt_records == 0 and again.dropped["corrupt"] == 0
    assert again.discarded_bytes > 0 and seg.stat().st_size == offsets[9]
    assert body_lines(again.peek(1000)) == lines(100, 190)
    assert not [r for r in caplog.records if r.levelname in ("ERROR", "WARNING")]
    assert any("torn tail" in r.getMessage() and r.levelname == "INFO" for r in caplog.records)


def test_corrupt_last_record_is_counted_once_and_cut(tmp_path):
    path = tmp_path / "s"
    seg, _ = ten_records(path)
    flip(seg, seg.stat().st_size - 3)  # whole length, bad CRC: corruption, not a crash
    again = Spool(path)
    assert again.corrupt_records == 1 and again.dropped["corrupt"] == 10 and again.discarded_bytes == 0
    again.append(lines(200, 203), chunk_points=10)
    again.close()
    third = Spool(path)
    assert third.corrupt_records == 0
    assert body_lines(third.peek(1000)) == lines(100, 190) + lines(200, 203)


def test_a_record_read_back_from_disk_is_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(spool_module, "CACHE_BYTES", 0)  # nothing in memory: every body is read back
    path = tmp_path / "s"
    sp = Spool(path)
    for k in range(3):
        sp.append(lines(10 * k, 10 * k + 10), chunk_points=10)
    seg = next(path.glob("*.seg"))
    flip(seg, sp._recs[0].off + spool_module.HEADER_SIZE + 2)  # after it was indexed
    assert body_lines(sp.peek(1000)) == lines(10, 30)
    assert sp.corrupt_records == 1 and sp.dropped["corrupt"] == 10 and sp.depth == 20


def test_unusable_spool_path_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(spool_module.SpoolError, match=rf"^{blocker / 'spool'}: Not a directory$"):
        Spool(blocker / "spool")


def test_full_disk_drops_new_points_with_one_error_and_resumes_when_space_returns(tmp_path, caplog):
    """A real full disk: a 256 KiB tmpfs, filled by another file (no injected errors)."""
    with small_disk(tmp_path / "disk") as disk:
        sp = Spool(disk / "spool")
        sp.append(lines(0, 10), chunk_points=10)
        filler = fill(disk)
        accepted, refused, k = 10, 0, 1
        while refused < 500:  # the segment's last page may still take a few appends
            got = sp.append(lines(10 * k, 10 * k + 10), chunk_points=10)
            accepted += got
            refused += 10 - got
            k += 1
            assert k < 10_000, "the disk never filled"
        assert sp.disk_full and sp.dropped["disk_full"] == refused == 500
        errors = [r for r in caplog.records if r.levelname == "ERROR"]
        assert len(errors) == 1 and "No space left on device" in errors[0].getMessage()
        assert sp.depth == accepted
        filler.unlink()  # space returns: the next append goes in, and says so once
        assert sp.append(lines(10 * k, 10 * k + 10), chunk_points=10) == 10
        assert not sp.disk_full and sp.depth == accepted + 10
        assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1
        sp.close()
        again = Spool(disk / "spool")  # nothing accepted was lost, nothing refused sits in a segment
        kept = body_lines(again.peek(10**6))
        assert len(kept) == accepted + 10 and kept[:10] == lines(0, 10) and kept[-10:] == lines(10 * k, 10 * k + 10)
        assert again.corrupt_records == 0 and again.discarded_bytes == 0
        again.close()


def test_acknowledged_records_never_fill_a_small_disk(tmp_path):
    """The active segment keeps acknowledged records until it reaches 1 MiB: on a 256 KiB disk the
    spool starts a new segment when the disk is full, so the old one goes, instead of dropping."""
    with small_disk(tmp_path / "disk") as disk:
        sp = Spool(disk / "spool")
        for k in range(3000):  # about 1.5 MB of records through a 256 KiB disk
            assert sp.append(lines(1000 + 10 * k, 1010 + 10 * k), chunk_points=10) == 10, k
            sp.delete(sp.peek(10))
        assert sp.dropped["disk_full"] == 0 and not sp.disk_full and sp.depth == 0
        sp.close()


def test_a_disk_at_the_edge_logs_one_error_not_one_per_flap(tmp_path, caplog):
    """Space for a few appends comes back (a small file deleted), then the disk is full again."""
    with small_disk(tmp_path / "disk") as disk:
        sp = Spool(disk / "spool")
        small = disk / "small"
        small.write_bytes(b"\0" * 16384)
        fill(disk)
        k, flaps, refused_before = 0, 0, False
        while flaps < 2:  # full, some space, full again
            got = sp.append(lines(10 * k, 10 * k + 10), chunk_points=10)
            k += 1
            assert k < 10_000, "the disk never filled"
            if got == 0 and not refused_before and small.exists():
                small.unlink()  # a little space returns: the next appends fit, then it is full again
            if got == 0 and not refused_before:
                flaps += 1
            refused_before = got == 0
        assert sp.disk_full and sp.dropped["disk_full"] > 0
        assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1
        sp.close()
