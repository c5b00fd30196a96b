"""The store's side of ``rollup``: the line windows of a period, and samples folded per batch as the
upsert folds them one by one (the live run's write path that bench/site.py measures)."""

from __future__ import annotations

import inspect
import random
import sqlite3
import sys
import threading
import time

from factory_models import Quality, Sample
from factory_models.records import KpiWindow
from twin.store import Store
from twin.store_schema import MIGRATIONS


def test_line_windows_are_the_line_rows_lying_within_the_period(tmp_path):
    def w(line, station, start, end):
        return KpiWindow(site="s", line=line, station=station, start=start, end=end, apt_s=1.0)

    with Store(tmp_path / "s.sqlite") as db:
        db.write_windows([
            w("a", None, 0.0, 60.0), w("a", None, 60.0, 120.0), w("b", None, 60.0, 120.0),
            w("a", "m1", 0.0, 60.0),            # a station row
            w(None, None, 0.0, 60.0),           # a site row
            w("a", None, 0.0, 130.0),           # ends after the period
            w("b", None, -60.0, 60.0),          # starts before it
            w("a", None, None, None),           # a whole-run row without bounds
        ])
        got = [(x.line, x.start, x.end) for x in db.line_windows(0.0, 120.0)]
    assert got == [("a", 0.0, 60.0), ("a", 60.0, 120.0), ("b", 60.0, 120.0)]


def test_a_batch_folds_to_the_rows_the_samples_give_one_by_one(tmp_path):
    rng = random.Random(7)
    samples = []
    for k in range(600):
        sig = rng.choice(["l/m/power_kw", "l/m/produced", "l/m/state"])
        ts = 1000.0 + rng.randrange(0, 240)  # repeated times too: a tie goes to the later sample
        value = rng.choice(["IDLE", "PRODUCING"]) if sig.endswith("state") else float(rng.randrange(0, 50))
        samples.append(Sample(sig, value, ts, rng.choice([Quality.GOOD, Quality.UNCERTAIN])))
    samples.append(Sample("l/m/power_kw", float("nan"), 1001.0))
    with Store(tmp_path / "batch.sqlite") as batch, Store(tmp_path / "single.sqlite") as single:
        assert batch.write_samples(samples[:300], "s") + batch.write_samples(samples[300:], "s") == 600
        for s in samples:
            single.write_samples([s], "s")
        for sig in ("l/m/power_kw", "l/m/produced", "l/m/state"):
            assert batch.signals(sig) == single.signals(sig)
        assert batch.block()["samples"] == single.block()["samples"] == 600
        assert batch.block()["rejected"] == single.block()["rejected"] == 1
    # 3 signals x 5 minute buckets (240 s from 1000 s: buckets 960 ... 1200)
    with Store(tmp_path / "batch.sqlite") as db:
        assert db.stats()["rows_signal"] == 15


def test_a_store_migrated_by_another_process_meanwhile_is_not_migrated_again(tmp_path):
    """Two ``run --lines`` processes opening a new store at once: both read schema version 0, one
    migrates; the other, once it has the write lock, finds the migration done."""
    path = tmp_path / "new.sqlite"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("BEGIN IMMEDIATE")  # the other process holds the write lock
    opened: list = []
    t = threading.Thread(target=lambda: opened.append(Store(path)))
    t.start()
    lines, first = inspect.getsourcelines(Store._migrate)
    waiting_at = first + next(i for i, text in enumerate(lines) if 'execute("BEGIN IMMEDIATE")' in text)
    deadline = time.monotonic() + 10
    while True:  # until this one has read version 0 and waits for the lock
        frame = sys._current_frames().get(t.ident)
        if frame is not None and frame.f_code.co_name == "_migrate" and frame.f_lineno == waiting_at:
            break
        assert time.monotonic() < deadline, "the store never waited for the write lock"
    with Store(tmp_path / "reference.sqlite") as ref:
        version = ref.schema_version
    for migration in MIGRATIONS:  # the other process migrates
        for statement in migration.split(";"):
            if statement.strip():
                other.execute(statement)
    other.execute(f"PRAGMA user_version={version}")
    other.execute("COMMIT")
    t.join(20)
    assert len(opened) == 1, "opening the store failed (the migration ran a second time)"
    with opened[0] as db:
        assert db.schema_version == version
        db.write_windows([KpiWindow(site="s", line="a", station=None, start=0.0, end=60.0, apt_s=60.0)])
        assert db.line_windows(0.0, 60.0)[0].apt_s == 60.0
    other.close()
