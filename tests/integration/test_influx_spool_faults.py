"""The spool's faults end to end, replayed to a real VictoriaMetrics: a flipped byte in a segment, a
torn tail, and a full disk (a real small tmpfs filled by another file; no injected errors)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from support.small_disk import fill, small_disk

from connectors.influxdb import InfluxConfig, InfluxWriter, SignalLines, Spool
from connectors.influxdb.segment import HEADER_SIZE, scan
from factory_models.records import Sample

pytestmark = pytest.mark.integration

T0 = 1_700_000_000.0
MATCH = '{__name__="signal_value"}'


def config(url: str, spool: Path, **kw) -> InfluxConfig:
    base = dict(url=url, org="factory", bucket="twin", spool_path=spool, batch_size=100,
                flush_interval_s=0.05, retry_initial_s=0.05, retry_max_s=0.5, timeout_s=5)
    return InfluxConfig(**{**base, **kw})


def samples(first: int, n: int = 100) -> list[Sample]:
    return [Sample(f"line1/st{j % 7}/power_kw", j + 0.25, T0 + j * 0.001) for j in range(first, first + n)]


def ms(indices) -> list[int]:
    return sorted(round((T0 + j * 0.001) * 1000) for j in indices)


def spool_of_ten_records(path: Path) -> tuple[Path, list[int]]:
    """A spool left by an earlier run: 10 records of 100 points (points 100k .. 100k+99 in record k+1)."""
    sp = Spool(path)
    lines = SignalLines("ms")
    for k in range(10):
        sp.append(lines.lines("s", samples(100 * k))[0], chunk_points=100)
    sp.close()
    seg = next(path.glob("*.seg"))
    return seg, [r.off for r in scan(path, 0, last=True).recs]


def replay(url: str, spool: Path) -> dict:
    with InfluxWriter(config(url, spool)) as w:
        assert w.flush(timeout_s=60)
        return w.close()


def test_flipped_byte_in_record_3_of_10_loses_only_that_record(victoria, tmp_path, caplog):
    seg, offsets = spool_of_ten_records(tmp_path / "spool")
    data = bytearray(seg.read_bytes())
    data[offsets[2] + HEADER_SIZE + 40] ^= 0x04  # inside the body of record 3
    seg.write_bytes(bytes(data))
    block = replay(victoria.url, tmp_path / "spool")
    assert block["corrupt_records"] == 1 and block["dropped"] == 100
    assert block["written"] == 900 and block["spool_depth"] == 0
    got = victoria.wait_for_count(900, MATCH)
    assert sorted(t for _, t, _ in got) == ms([*range(200), *range(300, 1000)])
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and f"segment 0 offset {offsets[2]}" in errors[0], errors


def test_torn_tail_is_not_corruption(victoria, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="connectors.influxdb.spool")
    seg, offsets = spool_of_ten_records(tmp_path / "spool")
    with open(seg, "r+b") as f:  # a crash in the middle of writing record 10
        f.truncate(offsets[9] + HEADER_SIZE + 50)
    block = replay(victoria.url, tmp_path / "spool")
    assert block["corrupt_records"] == 0 and block["dropped"] == 0 and block["written"] == 900
    got = victoria.wait_for_count(900, MATCH)
    assert sorted(t for _, t, _ in got) == ms(range(900))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.endswith("spool")]
    assert [r for r in caplog.records if r.levelno == logging.INFO and "torn tail" in r.getMessage()]


def test_full_disk_drops_new_points_once_loudly_and_resumes_when_space_returns(victoria, tmp_path, caplog):
    with small_disk(tmp_path / "disk") as disk:
        with InfluxWriter(config(victoria.url, disk / "spool")) as w:
            delivered = []
            assert w.write_samples(samples(0), "s") == 100
            delivered += range(100)
            assert w.flush(timeout_s=30)
            filler = fill(disk)
            first, refused = 100, 0
            while refused < 5:  # the segment's last page may take a few batches before the disk refuses
                got = w.write_samples(samples(first), "s")
                assert got in (0, 100)
                if got:
                    delivered += range(first, first + 100)
                else:
                    refused += 1
                first += 100
                assert first < 100_000, "the disk never filled"
            health = w.health()
            assert health["status"] == "degraded" and "disk full" in health["reasons"][0]
            assert health["disk_full"] and health["dropped"] == health["dropped_disk_full"] == 500
            errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
            assert len(errors) == 1 and "No space left on device" in errors[0].getMessage()

            filler.unlink()  # space returns: writing resumes by itself
            for _ in range(5):
                assert w.write_samples(samples(first), "s") == 100
                delivered += range(first, first + 100)
                first += 100
            assert w.health()["status"] == "ok" and not w.stats()["disk_full"]
            assert w.flush(timeout_s=60)
            block = w.close()
        assert block["dropped"] == 500 and block["written"] == block["spooled"] == len(delivered)
        got = victoria.wait_for_count(len(delivered), MATCH)
        assert sorted(t for _, t, _ in got) == ms(delivered)  # nothing accepted lost, nothing refused sent
        assert len([r for r in caplog.records if r.levelno >= logging.ERROR]) == 1
