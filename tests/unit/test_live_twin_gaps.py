"""Honest connection gaps in the live twin (issue 12, item 6): a value a server re-sends after a
reconnect restores its signal, and a gap blanks only the states its source feeds.

The worked-example factory has one station, line1/reflow, producing from 06:00 (T0). Times below are
seconds after T0; the figures are worked out by hand in each test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from factory_models import Sample, TsKind, load_factory
from twin.shadow.live_twin import LiveTwin
from twin.shadow.replay import parse_ts

DATA = Path(__file__).parents[1] / "data"
FACTORY = load_factory(DATA / "worked_example.yaml")
T0 = parse_ts("2026-03-02T06:00:00Z")
STATE = "line1/reflow/state"
POWER = "line1/reflow/power_kw"


class Clock:
    def __init__(self):
        self.t = T0

    def __call__(self) -> float:
        return self.t


def twin_with(feeds) -> tuple[LiveTwin, Clock]:
    clock = Clock()
    return LiveTwin(FACTORY, clock=clock, source_signals=feeds), clock


def at(twin: LiveTwin, clock: Clock, dt: float, sample: Sample) -> bool:
    clock.t = T0 + dt
    return twin.add(sample)


def conn(source: str, up: bool) -> Sample:
    return Sample(f"connection/{source}", "up" if up else "down", 0.0, ts_kind=TsKind.RECEIVE)


def report(twin: LiveTwin, clock: Clock, dt: float):
    clock.t = T0 + dt
    (st,) = twin.report(T0, T0 + dt).stations
    return st


def test_a_value_re_sent_after_a_reconnect_restores_the_state_from_the_reconnect():
    twin, clock = twin_with({"plc": [STATE]})
    at(twin, clock, 0, conn("plc", True))
    at(twin, clock, 0, Sample(STATE, "PRODUCING", T0))
    at(twin, clock, 1000, conn("plc", False))
    at(twin, clock, 1600, conn("plc", True))
    # the server re-sends what it holds: the same value with its original source time
    assert at(twin, clock, 1601, Sample(STATE, "PRODUCING", T0))
    st = report(twin, clock, 3600)
    # UNKNOWN only for the gap 1000..1600 (600 s), producing for the rest: 3600 - 600 = 3000 s
    assert st.unknown_s == pytest.approx(600)
    assert st.apt_s == pytest.approx(3000)
    assert twin.router.rejected == {}  # not a duplicate
    assert twin.restored == 1
    assert twin.snapshot(T0 + 3600).states == {"line1/reflow": "PRODUCING"}
    # a second copy of the same reading is a real duplicate again
    assert not at(twin, clock, 3600, Sample(STATE, "PRODUCING", T0))
    assert twin.router.rejected == {"duplicate": 1}


def test_a_change_the_twin_missed_before_the_loss_goes_in_at_its_own_time_too():
    twin, clock = twin_with({"plc": [STATE]})
    at(twin, clock, 0, conn("plc", True))
    at(twin, clock, 0, Sample(STATE, "PRODUCING", T0))
    # the station went DOWN at 900, but the notification was lost with the connection at 1000
    at(twin, clock, 1000, conn("plc", False))
    at(twin, clock, 1600, conn("plc", True))
    at(twin, clock, 1601, Sample(STATE, "DOWN", T0 + 900))
    st = report(twin, clock, 3600)
    # producing 0..900, DOWN 900..1000, UNKNOWN 1000..1600, DOWN again from the reconnect 1600..3600
    assert st.apt_s == pytest.approx(900)
    assert st.unknown_s == pytest.approx(600)
    assert twin.snapshot(T0 + 3600).states == {"line1/reflow": "DOWN"}
    assert twin.router.used == 3  # PRODUCING at 0, DOWN at 900, DOWN restored at 1600


def test_a_value_from_inside_the_gap_ends_it_at_its_own_time():
    twin, clock = twin_with({"plc": [STATE]})
    at(twin, clock, 0, Sample(STATE, "PRODUCING", T0))
    at(twin, clock, 1000, conn("plc", False))
    at(twin, clock, 1600, conn("plc", True))
    at(twin, clock, 1601, Sample(STATE, "PRODUCING", T0 + 1200))  # changed while we were away
    st = report(twin, clock, 3600)
    assert st.unknown_s == pytest.approx(200)  # 1000..1200
    assert st.apt_s == pytest.approx(3400)
    assert twin.restored == 0


def test_a_meter_outage_marks_its_energy_signals_and_leaves_the_plc_state_alone():
    twin, clock = twin_with({"plc": [STATE], "meters": [POWER, "site/grid/energy_kwh"]})
    at(twin, clock, 0, Sample(STATE, "PRODUCING", T0))
    at(twin, clock, 0, Sample(POWER, 10.0, T0))
    at(twin, clock, 1000, conn("meters", False))
    at(twin, clock, 1600, conn("meters", True))
    st = report(twin, clock, 3600)
    assert st.unknown_s == 0 and st.apt_s == pytest.approx(3600)  # the PLC delivered all along
    assert twin.gaps == [{"source": "meters", "start": T0 + 1000, "end": T0 + 1600, "stations": [],
                          "signals": [POWER, "site/grid/energy_kwh"]}]
    # the power gauge re-sent after the reconnect counts from the reconnect, not as a duplicate
    assert at(twin, clock, 1601, Sample(POWER, 10.0, T0))
    assert twin.router.rejected == {} and twin.restored == 1
    # while the PLC's loss blanks the station
    at(twin, clock, 3600, conn("plc", False))
    assert twin.gaps[-1]["stations"] == ["line1/reflow"] and twin.gaps[-1]["signals"] == []
    assert twin.snapshot(T0 + 3700).states == {"line1/reflow": "UNKNOWN"}


def test_what_a_template_source_feeds_is_read_when_it_goes_down():
    delivered: set[str] = set()
    twin, clock = twin_with({"meters": lambda: delivered})
    at(twin, clock, 0, Sample(STATE, "PRODUCING", T0))
    delivered.add(POWER)  # a meter pattern could feed every station signal; this one sent power only
    at(twin, clock, 100, conn("meters", False))
    assert twin.gaps[-1]["stations"] == [] and twin.gaps[-1]["signals"] == [POWER]
    at(twin, clock, 200, conn("meters", True))
    delivered.add(STATE)  # now it did feed the state
    at(twin, clock, 300, conn("meters", False))
    assert twin.gaps[-1]["stations"] == ["line1/reflow"]
    assert twin.snapshot(T0 + 400).states == {"line1/reflow": "UNKNOWN"}


def test_the_terminal_names_the_sources_that_are_down():
    from twin.runtime.terminal import progress_line, status_table

    twin, clock = twin_with({"plc": [STATE], "meters": [POWER]})
    at(twin, clock, 0, conn("plc", True))
    at(twin, clock, 0, conn("meters", True))
    at(twin, clock, 0, Sample(STATE, "PRODUCING", T0))
    at(twin, clock, 100, conn("meters", False))
    snap = twin.snapshot(T0 + 100)
    line = progress_line(snap, "UTC")
    assert line.endswith("; sources down: meters") and "down/unknown" not in line  # the station still PRODUCING
    assert "sources down: meters" in str(status_table(snap, "UTC").title)
