"""``run --lines``: two processes, each owning one line of a two-line site, fed over a real mosquitto
into one SQLite store, against one process owning both; ``rollup`` of the two equals the one.

The broker queues the whole script for each process's persistent session before any process starts
(the sessions are made first with the client ids the processes will use), so the three processes
get exactly the same samples whatever their start-up time, and nothing waits on the clock.

The script, in seconds after ``base`` (a minute edge two minutes back), by hand:

    a/s1  PRODUCING 0-60, DOWN 60-90 (a micro-stop: 30 s < 120 s), PRODUCING 90-120;
          produced 0 -> 5 (59) -> 8 (119), good 0 -> 5 -> 7, scrap 0 -> 0 -> 1
    a/s2  IDLE 0-30, PRODUCING 30-120; produced = good 0 -> 3 (59) -> 6 (119)
    b/m1  PRODUCING 0-100, SETUP 100-120; produced = good 0 -> 6 (59) -> 8 (119)

Over [base, base + 120 s] (every station 120 s planned, no shift plan, all known):
POT = PBT = 3 x 120 = 360 s; APT = 90 + 90 + 100 = 280 s; ADET = 30; ADOT = 30; ASUT = 20.
Line a: good = its output station s2's = 6, scrap = 1, produced = 7; line b: 8 good, 8 produced.
Site: produced 15, good 14, scrap 1, failures 0. Ideal time = (8 + 6 + 8) parts x 10 s = 220 s, so
availability = 280/360, performance = 220/280, quality = 14/15, OEE = 220/360 x 14/15.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from connectors.mqtt.sensors import payload_of, topic_of
from factory_models.records import iso_utc
from twin.store import Store

FT = str(Path(sys.executable).parent / "factory-twin")

CONFIG = """
site: {name: twoline, country: CN}
products: [{name: p}]
calendar: {timezone: UTC, workdays: [mon, tue, wed, thu, fri, sat, sun]}
lines:
  - name: a
    stations:
      - {name: s1, cycle_time_s: {p: 10}, power_kw: &pw {producing: 2, setup: 1, down: 1, idle: 1, planned_stop: 1, no_shift: 0}}
      - {name: s2, cycle_time_s: {p: 10}, power_kw: *pw}
  - name: b
    stations:
      - {name: m1, cycle_time_s: {p: 10}, power_kw: *pw}
"""

MAPPING = """
site: twoline
mqtt:
  - name: meters
    url: {url}
    client_id: t2-meters
    qos: 1
    topics:
      - pattern: "factory/{{site}}/{{line}}/{{station}}/{{signal}}"
        signal: "{{line}}/{{station}}/{{signal}}"
        field: value
"""

SCRIPT = [  # (seconds after base, signal, value)
    (0, "a/s1/state", "PRODUCING"), (0, "a/s1/produced", 0), (0, "a/s1/good", 0), (0, "a/s1/scrap", 0),
    (59, "a/s1/produced", 5), (59, "a/s1/good", 5), (59, "a/s1/scrap", 0),
    (60, "a/s1/state", "DOWN"), (90, "a/s1/state", "PRODUCING"),
    (119, "a/s1/produced", 8), (119, "a/s1/good", 7), (119, "a/s1/scrap", 1),
    (0, "a/s2/state", "IDLE"), (0, "a/s2/produced", 0), (0, "a/s2/good", 0), (30, "a/s2/state", "PRODUCING"),
    (59, "a/s2/produced", 3), (59, "a/s2/good", 3), (119, "a/s2/produced", 6), (119, "a/s2/good", 6),
    (0, "b/m1/state", "PRODUCING"), (0, "b/m1/produced", 0), (0, "b/m1/good", 0),
    (59, "b/m1/produced", 6), (59, "b/m1/good", 6), (100, "b/m1/state", "SETUP"),
    (119, "b/m1/produced", 8), (119, "b/m1/good", 8),
]
TIME = ("pot_s", "pbt_s", "apt_s", "asut_s", "adet_s", "adot_s", "unknown_s")
COUNTS = ("produced", "good", "scrap", "rework", "failures")


def _session(broker, client_id: str, filters: list[str]) -> None:
    """A persistent QoS 1 session with these subscriptions, left at once: the broker queues for it."""
    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id,
                    clean_session=False, protocol=paho.MQTTv311)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.subscribe([(f, 1) for f in filters])
    assert done.wait(10), f"{client_id}: no SUBACK"
    c.disconnect()
    c.loop_stop()


def _publish(broker, base: int) -> None:
    c = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="t2-feeder", protocol=paho.MQTTv311)
    c.connect(broker.host, broker.port)
    c.loop_start()
    infos = [c.publish(topic_of("twoline", sig), payload_of(value, base + dt), qos=1)
             for dt, sig, value in sorted(SCRIPT, key=lambda x: x[0])]
    for info in infos:
        info.wait_for_publish(10)
    c.disconnect()
    c.loop_stop()


def _run(cfg: Path, mapping: Path, store: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen([FT, "run", str(cfg), "-m", str(mapping), "--duration", "8", "--no-dashboard", "--json",
                             "--store", str(store), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "NUMBA_NUM_THREADS": "1", "INFLUX_TOKEN": "not-checked-by-victoria"})


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return json.loads(out)


def _rollup(store: Path, cfg: Path, t0: float, t1: float) -> dict:
    done = subprocess.run([FT, "rollup", "--from", iso_utc(t0), "--to", iso_utc(t1), "--store", str(store),
                           "--config", str(cfg), "--json"], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()
    return json.loads(done.stdout)


def test_two_processes_by_line_roll_up_to_the_single_process_site(mosquitto, victoria, tmp_path):
    cfg, mapping = tmp_path / "twoline.yaml", tmp_path / "mapping.yaml"
    cfg.write_text(CONFIG)
    mapping.write_text(MAPPING.format(url=mosquitto.url))
    # the ids run --lines gives each process's session: the mapping's, with its lines (and "site"
    # for the meters' owner, by default the process owning the first line)
    _session(mosquitto, "t2-meters", ["factory/twoline/+/+/+"])
    _session(mosquitto, "t2-meters-a-site", ["factory/twoline/a/+/+", "factory/twoline/site/+/+"])
    _session(mosquitto, "t2-meters-b", ["factory/twoline/b/+/+"])
    base = int(time.time()) // 60 * 60 - 120
    _publish(mosquitto, base)

    single, split = tmp_path / "single.sqlite", tmp_path / "split.sqlite"
    influx = ["--influx-url", victoria.url, "--influx-bucket", "twin"]  # the same InfluxDB too
    procs = [_run(cfg, mapping, single),
             _run(cfg, mapping, split, "--lines", "a", *influx, "--influx-spool", str(tmp_path / "spool-a")),
             _run(cfg, mapping, split, "--lines", "b", *influx, "--influx-spool", str(tmp_path / "spool-b"))]
    one, a, b = (_finish(p) for p in procs)

    assert a["partition"] == {"lines": ["a"], "meters": True, "notes": [
        "no grid-import meter: the emissions ledger's station-energy stand-in covers lines a only, "
        "not the lines of the other processes"]}
    assert b["partition"] == {"lines": ["b"], "meters": False, "notes": []}
    # each process took its own line's samples only: nothing of the other line reached it
    n_a = sum(1 for _, sig, _ in SCRIPT if sig.startswith("a/"))
    assert (a["samples"]["used"], a["samples"]["rejected"]) == (n_a, 0)
    assert (b["samples"]["used"], b["samples"]["rejected"]) == (len(SCRIPT) - n_a, 0)
    assert one["samples"]["used"] == len(SCRIPT)
    for doc in (a, b):  # two writers on one SQLite file (WAL, busy timeout): nothing failed
        assert doc["errors"] == {} and "error" not in doc["sinks"]["store"]

    t0, t1 = float(base), float(base + 120)
    split_doc, single_doc = _rollup(split, cfg, t0, t1), _rollup(single, cfg, t0, t1)
    site = split_doc["site_kpis"]
    hand = {"pot_s": 360, "pbt_s": 360, "apt_s": 280, "asut_s": 20, "adet_s": 30, "adot_s": 30, "unknown_s": 0,
            "produced": 15, "good": 14, "scrap": 1, "rework": 0, "failures": 0}
    assert {k: site[k] for k in hand} == hand
    assert site["availability"] == pytest.approx(280 / 360, rel=1e-12)
    assert site["performance"] == pytest.approx(220 / 280, rel=1e-12)
    assert site["quality"] == pytest.approx(14 / 15, rel=1e-12)
    assert site["oee"] == pytest.approx(220 / 360 * 14 / 15, rel=1e-12)
    assert split_doc["lines"]["a"]["good"] == 6 and split_doc["lines"]["a"]["produced"] == 7
    assert split_doc["lines"]["b"]["good"] == 8 and split_doc["lines"]["b"]["asut_s"] == 20
    assert split_doc["coverage"]["complete"] is True and split_doc["coverage"]["missing_lines"] == []
    assert split_doc["coverage"]["spans"] == [{"from": iso_utc(t0), "to": iso_utc(t1), "seconds": 120.0,
                                               "lines": ["a", "b"]}]
    # a period past the runs' end: the whole-run row each process wrote at its end counts the same
    # time as its minutes and is left out; the time after the runs is covered by no line
    later = _rollup(split, cfg, t0, t0 + 900)
    assert later["coverage"]["overlapping_skipped"] == {"a": 1, "b": 1}
    assert later["coverage"]["complete"] is False and later["coverage"]["spans"][-1]["lines"] == []
    assert later["site_kpis"]["apt_s"] > site["apt_s"] and later["site_kpis"]["good"] == site["good"]

    # the single process: its own site rows of the period, and the rollup of its line rows
    with Store(single) as db:
        rows = [w for w in db.kpis(t0, t1 + 1, level="site") if w.start is not None and w.start >= t0]
    assert len(rows) == 2
    for k in (*TIME, *COUNTS):
        assert sum(getattr(w, k) for w in rows) == site[k], k
        assert single_doc["site_kpis"][k] == site[k], k
    for k in ("availability", "performance", "quality", "oee", "nee"):
        assert single_doc["site_kpis"][k] == pytest.approx(site[k], rel=1e-12), k
    # the split store holds no site rows: each process's would have replaced the other's
    with Store(split) as db:
        assert db.kpis(t0, t1 + 1, level="site") == []

    # InfluxDB: line points of both processes (tag line, window 60s), no site point; their sums
    # over the period (points stamped at their window's end) are the site's, as docs/deployment.md sums them
    got = victoria.wait_for_count(4, '{__name__="station_kpi_apt_s", station="", window="60s"}')
    lines = {dict(k[1]).get("line", "") for k, _, _ in got}
    assert lines == {"a", "b"}
    in_period = [(dict(k[1])["line"], v) for k, t, v in got if t0 * 1000 < t <= t1 * 1000]
    # line a: s1 60 + s2 30 in the first minute, s1 30 + s2 60 in the second; line b: 60, then 40
    assert sorted(in_period) == [("a", 90.0), ("a", 90.0), ("b", 40.0), ("b", 60.0)]  # 280 s of APT


def test_unknown_lines_are_named_and_exit_2(tmp_path):
    cfg, mapping = tmp_path / "twoline.yaml", tmp_path / "mapping.yaml"
    cfg.write_text(CONFIG)
    mapping.write_text(MAPPING.format(url="mqtt://127.0.0.1:1"))
    done = subprocess.run([FT, "run", str(cfg), "-m", str(mapping), "--lines", "a,x,y", "--no-dashboard",
                           "--no-store"], capture_output=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.decode().strip() == "factory-twin: --lines: unknown line(s) x, y; the factory has a, b"
    done = subprocess.run([FT, "run", str(cfg), "-m", str(mapping), "--meters", "--no-dashboard", "--no-store"],
                          capture_output=True, timeout=60)
    assert (done.returncode, done.stderr.decode().strip()) == (2, "factory-twin: --meters/--no-meters go with --lines")
