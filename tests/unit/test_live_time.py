"""Time in a live run: samples stamped far from their receive time are rejected by name
(``clock_skew``, ``too_old``, limits from the factory's ``live`` block), ``replay`` keeps history,
and in-band connection samples land on the twin's own clock (the demo's simulated one)."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factory_models import ConfigError, Quality, Sample, TsKind, load_factory
from twin.cli import app
from twin.shadow.live_twin import LiveTwin
from twin.shadow.replay import parse_ts

DATA = Path(__file__).parents[1] / "data"
FACTORY = load_factory(DATA / "worked_example.yaml")
T0 = parse_ts("2026-03-02T06:00:00Z")
STATE = "line1/reflow/state"


def epoch(year: int) -> float:
    return datetime(year, 6, 1, tzinfo=timezone.utc).timestamp()


def factory_with(tmp_path: Path, live_block: str) -> Path:
    path = tmp_path / "factory.yaml"
    path.write_text((DATA / "worked_example.yaml").read_text() + live_block)
    return path


def test_samples_stamped_2001_and_2096_are_rejected_by_reason_in_a_live_run():
    twin = LiveTwin(FACTORY)  # a real run: the twin's clock is the wall clock
    assert not twin.add(Sample(STATE, "PRODUCING", epoch(2001)))
    assert not twin.add(Sample(STATE, "DOWN", epoch(2096)))
    assert twin.add(Sample(STATE, "PRODUCING", time.time() - 5))
    counts = twin.snapshot().samples
    assert counts["rejected_by_reason"] == {"clock_skew": 1, "too_old": 1}
    assert (counts["received"], counts["used"], counts["rejected"]) == (3, 1, 2)
    # nothing of 2001 or 2096 reached the log: the run starts at the one sample used
    assert twin.router.t_min == twin.router.t_max and twin.first_ts == twin.router.t_min


def test_limits_are_measured_on_the_twins_clock_and_are_inclusive():
    now = {"t": T0}
    twin = LiveTwin(FACTORY, clock=lambda: now["t"])  # the demo: simulated time
    assert twin.add(Sample(STATE, "PRODUCING", T0 + 300))  # exactly max_clock_skew_s ahead
    assert twin.add(Sample(STATE, "IDLE", T0 - 86400))  # exactly max_sample_age_s old
    assert not twin.add(Sample(STATE, "DOWN", T0 + 300.5))
    assert not twin.add(Sample(STATE, "DOWN", T0 - 86400.5))
    # a wall-clock stamp is 9 months ahead of this simulated clock
    assert not twin.add(Sample(STATE, "DOWN", time.time(), ts_kind=TsKind.RECEIVE))
    now["t"] = T0 + 3600  # the same sample is fine once the twin's clock has caught up
    assert twin.add(Sample(STATE, "DOWN", T0 + 300.5))
    assert twin.router.rejected == {"clock_skew": 2, "too_old": 1}


def test_the_live_block_sets_the_limits(tmp_path):
    factory = load_factory(factory_with(tmp_path, "live:\n  max_clock_skew_s: 5\n  max_sample_age_s: 60\n"))
    assert (factory.live.max_clock_skew_s, factory.live.max_sample_age_s) == (5.0, 60.0)
    assert (FACTORY.live.max_clock_skew_s, FACTORY.live.max_sample_age_s) == (300.0, 86400.0)  # the defaults
    twin = LiveTwin(factory, clock=lambda: T0)
    assert twin.add(Sample(STATE, "PRODUCING", T0 + 5))
    assert not twin.add(Sample(STATE, "DOWN", T0 + 6))
    assert twin.add(Sample(STATE, "IDLE", T0 - 60))
    assert not twin.add(Sample(STATE, "DOWN", T0 - 61))
    assert twin.router.rejected == {"clock_skew": 1, "too_old": 1}


@pytest.mark.parametrize(("block", "field", "line"), [
    ("live:\n  max_clock_skew_s: -5\n", "live.max_clock_skew_s", 2),
    ("live:\n  max_clock_skew_s: 300\n  max_sample_age_s: a day\n", "live.max_sample_age_s", 3),
    ("live:\n  max_skew_s: 300\n", "live.max_skew_s", 2),
])
def test_a_bad_live_block_names_file_line_and_field(tmp_path, block, field, line):
    path = factory_with(tmp_path, block)
    first = len((DATA / "worked_example.yaml").read_text().splitlines())
    with pytest.raises(ConfigError) as err:
        load_factory(path)
    text = str(err.value)
    assert str(path) in text and field in text and f"line {first + line}" in text, text


def test_replay_keeps_history_of_any_age(tmp_path):
    """The worked example moved to 2001, with a live age limit of a minute: replay reads it whole."""
    csv = (DATA / "worked_example.csv").read_text().replace("2026-03-02T", "2001-03-02T")
    assert "2001-03-02T14:00" in csv and "2026" not in csv
    (tmp_path / "old.csv").write_text(csv)
    config = factory_with(tmp_path, "live:\n  max_clock_skew_s: 1\n  max_sample_age_s: 60\n")
    result = CliRunner().invoke(app, ["replay", str(config), str(tmp_path / "old.csv"), "--no-store", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["samples"]["rejected"] == 0 and doc["samples"]["used"] > 0
    (st,) = doc["stations"]
    assert (st["produced"], st["good"]) == (700, 665)
    assert st["oee"] == pytest.approx(0.738889, abs=1e-6)


def test_a_wall_clock_reconnect_on_a_simulated_clock_leaves_no_station_unknown():
    """The demo's bug: the source stamps connection/<source> with the wall clock, the twin runs on
    simulated time (months earlier). The gap must sit at the twin's receive time, and the station's
    next state sample must end it."""
    now = {"t": T0}
    twin = LiveTwin(FACTORY, clock=lambda: now["t"], source_signals={"meters": ["line1/reflow/power_kw", STATE]})

    def at(t: float, sample: Sample) -> None:
        now["t"] = t
        twin.add(sample)

    at(T0, Sample("connection/meters", "up", time.time(), ts_kind=TsKind.RECEIVE))
    at(T0, Sample(STATE, "PRODUCING", T0))
    at(T0 + 100, Sample("connection/meters", "down", time.time(), ts_kind=TsKind.RECEIVE))
    at(T0 + 130, Sample("connection/meters", "up", time.time(), ts_kind=TsKind.RECEIVE))
    at(T0 + 200, Sample(STATE, "PRODUCING", T0 + 200, Quality.GOOD))
    now["t"] = T0 + 300
    snap = twin.snapshot()
    assert snap.states == {"line1/reflow": "PRODUCING"}
    assert snap.gaps == [{"source": "meters", "start": T0 + 100, "end": T0 + 130, "stations": ["line1/reflow"],
                          "signals": ["line1/reflow/power_kw"]}]
    assert snap.connections == {"meters": "up"}
    (st,) = twin.report(T0, T0 + 300).stations
    assert st.unknown_s == pytest.approx(100)  # from the loss to the next state sample
    assert st.apt_s == pytest.approx(200)
    assert twin.router.rejected == {}  # connection samples are the twin's, never clock_skew
