"""compute_kpis against the ISO 22400-2 worked example of docs/kpis.md, and its rules."""

from __future__ import annotations

import math

import numpy as np
import pytest

from factory_models.schema import Factory
from factory_models.states import State
from twin.kpi.eventlog import Channel, EventLog
from twin.kpi import compute_kpis

T0 = 1_772_431_200.0  # 2026-03-02T06:00:00Z
SHIFT_S = 8 * 3600.0
KW = {State.PRODUCING: 12.0, State.SETUP: 5.0, State.DOWN: 2.0, State.STARVED: 3.0, State.PLANNED_STOP: 1.0}
# (seconds from shift start, state): PLANNED_STOP 1,800 s; SETUP 1,200 s; DOWN 2,700 s; STARVED 900 s
SEQUENCE = [(0, State.SETUP), (1200, State.PRODUCING), (8400, State.DOWN), (9900, State.PRODUCING),
            (13500, State.PLANNED_STOP), (15300, State.PRODUCING), (20700, State.STARVED), (21600, State.DOWN),
            (22800, State.PRODUCING), (28800, State.NO_SHIFT)]
COUNTS = {8400: (227, 11), 13500: (341, 17), 20700: (511, 25), 28800: (700, 35)}  # produced, scrap


def station(name: str, cycle_s: float = 30.0, machines: int = 1) -> dict:
    return {"name": name, "machines": machines, "cycle_time_s": {"pcb-a": cycle_s},
            "power_kw": {"producing": 12, "setup": 5, "down": 2, "idle": 3, "planned_stop": 1, "no_shift": 0}}


def factory(lines: dict[str, list[dict]], meters=()) -> Factory:
    return Factory.model_validate({
        "site": {"name": "example-site"}, "products": [{"name": "pcb-a"}],
        "lines": [{"name": n, "stations": s} for n, s in lines.items()], "meters": list(meters)})


def new_log(f: Factory, span_s: float = SHIFT_S) -> EventLog:
    return EventLog(units=f.unit_names(), n_stations=len(f.station_units()), products=f.product_names(),
                    t_start=T0, t_end=T0 + span_s)


def worked_example(energy: str = "counter") -> tuple[EventLog, Factory]:
    f = factory({"line1": [station("reflow")]}, meters=[{"name": "grid", "kind": "grid_import"}])
    log = new_log(f)
    kwh = 0.0
    prev = None
    for t, s in SEQUENCE:
        if prev is not None:
            kwh += KW[prev[1]] * (t - prev[0]) / 3600.0
        log.state(T0 + t, 0, s)
        if energy == "counter":
            log.count(T0 + t, 0, Channel.ENERGY_KWH, kwh)
        else:  # a power gauge that steps at each state change: the old and the new value at the same instant
            if prev is not None:
                log.power(T0 + t, 0, KW[prev[1]])
            log.power(T0 + t, 0, KW.get(s, 0.0))
        if t == 0 or t in COUNTS:
            produced, scrap = COUNTS.get(t, (0, 0))
            log.count(T0 + t, 0, Channel.PRODUCED, produced)
            log.count(T0 + t, 0, Channel.SCRAP, scrap)
        prev = (t, s)
    return log, f


@pytest.mark.parametrize("energy", ["counter", "power"])
def test_worked_example(energy):
    log, f = worked_example(energy)
    report = compute_kpis(log.freeze(), f)
    (st,) = report.stations
    assert (st.line, st.station, st.start) == ("line1", "reflow", None)
    assert st.pot_s == pytest.approx(28_800, abs=1e-6)
    assert st.pbt_s == pytest.approx(27_000, abs=1e-6)
    assert st.apt_s == pytest.approx(22_200, abs=1e-6)
    assert (st.asut_s, st.adet_s, st.adot_s, st.unknown_s) == pytest.approx((1_200, 2_700, 900, 0), abs=1e-6)
    assert (st.produced, st.scrap, st.good, st.rework) == (700, 35, 665, 0)
    assert "good_derived" in st.flags
    assert st.availability == pytest.approx(0.822222, abs=1e-6)
    assert st.performance == pytest.approx(0.945946, abs=1e-6)
    assert st.quality == pytest.approx(0.95, abs=1e-12)
    assert st.oee == pytest.approx(0.738889, abs=1e-6)
    assert st.oee == pytest.approx(21_000 / 27_000 * 0.95, rel=1e-12)
    assert st.nee == pytest.approx(23_400 / 27_000 * (21_000 / 22_200) * 0.95, rel=1e-12)
    assert st.failures == 2
    assert (st.mtbf_s, st.mttr_s) == pytest.approx((23_400 / 2, 1_350), abs=1e-6)
    assert st.energy_kwh == pytest.approx(282_300 / 3600, abs=1e-6)
    assert st.kwh_per_good == pytest.approx(0.117920, abs=1e-6)
    assert ("energy_from_power" in st.flags) == (energy == "power")
    assert st.co2e_kg is None
    # one station: the line and the site are that station (the grid meter has no readings)
    for agg in (report.lines[0], report.site):
        for key in ("availability", "performance", "quality", "oee", "nee", "energy_kwh", "produced", "good"):
            assert getattr(agg, key) == pytest.approx(getattr(st, key), rel=1e-12), key
    assert report.diagnostics["meters"]["grid"]["energy_kwh"] is None
    assert report.windows == []


def test_worked_example_hourly_windows():
    log, f = worked_example()
    edges = T0 + np.arange(9) * 3600.0
    report = compute_kpis(log.freeze(), f, edges)
    stations = [w for w in report.windows if w.station is not None]
    assert len(report.windows) == 8 * 3 and len(stations) == 8
    assert math.fsum(w.apt_s for w in stations) == pytest.approx(22_200, abs=1e-6)
    assert math.fsum(w.produced for w in stations) == 700
    assert math.fsum(w.energy_kwh for w in stations) == pytest.approx(282_300 / 3600, abs=1e-6)
    # 09:00-10:00: production carried in from 08:45 until the planned stop at 09:45
    nine = stations[3]
    assert nine.start == T0 + 3 * 3600
    assert (nine.apt_s, nine.pbt_s, nine.pot_s) == pytest.approx((2_700, 2_700, 3_600), abs=1e-6)
    # 08:00-09:00: production carried in from 06:20, DOWN from 08:20 to 08:45
    eight = stations[2]
    assert eight.adet_s == pytest.approx(1_500, abs=1e-6) and eight.failures == 1
    # 06:00-07:00: setup and production but no counter reading: production ratios undefined
    first = stations[0]
    assert first.produced == 0
    assert (first.performance, first.quality, first.oee, first.nee, first.kwh_per_good) == (None,) * 5
    assert first.availability == pytest.approx(2_400 / 3_600, abs=1e-9)


def test_no_data_gives_none_ratios_and_unknown_time():
    f = factory({"line1": [station("a")]})
    report = compute_kpis(new_log(f, 600.0).freeze(), f)
    st = report.stations[0]
    assert st.unknown_s == 600.0 and st.pot_s == 0.0 and st.pbt_s == 0.0
    assert (st.availability, st.performance, st.quality, st.oee, st.mtbf_s, st.energy_kwh) == (None,) * 6


def test_counter_reset_and_16_bit_rollover_through_compute_kpis():
    f = factory({"line1": [station("a")]})
    log = new_log(f, 100.0)
    log.state(T0, 0, State.PRODUCING)
    for t, v in [(0, 65_000), (40, 65_530), (60, 20), (80, 5)]:  # +530, rollover +26, reset +5
        log.count(T0 + t, 0, Channel.PRODUCED, v)
    report = compute_kpis(log, f, counter_modulus={"produced": 65_536})
    assert report.stations[0].produced == 561
    assert report.diagnostics["counter_rollovers"] == {"line1/a/produced": 1}
    assert report.diagnostics["counter_resets"] == {"line1/a/produced": 1}
    # without a modulus, the drop at 60 s is a reset too: +530 +20 +5
    assert compute_kpis(log, f).stations[0].produced == 555


def test_line_and_site_use_sums_not_averages():
    # line1: a (100 s producing, 10 parts of 5 s) -> b, parallel 2 machines, b is the output station
    f = factory({"line1": [station("a", cycle_s=5.0), station("b", cycle_s=4.0, machines=2)],
                 "line2": [station("c", cycle_s=2.0)]},
                meters=[{"name": "grid", "kind": "grid_import"}, {"name": "pv", "kind": "pv", "peak_kw": 10}])
    log = new_log(f, 200.0)
    spec = {  # unit: (producing seconds, produced, good, scrap, kWh)
        0: (100.0, 10, 9, 1, 2.0), 1: (200.0, 4, 4, 0, 3.0), 2: (50.0, 5, 3, 2, 4.0), 3: (150.0, 30, 30, 0, 1.0)}
    for u, (apt, produced, good, scrap, kwh) in spec.items():
        log.state(T0, u, State.PRODUCING)
        log.state(T0 + apt, u, State.IDLE)
        for ch, v in ((Channel.PRODUCED, produced), (Channel.GOOD, good), (Channel.SCRAP, scrap),
                      (Channel.ENERGY_KWH, kwh)):
            log.count(T0, u, ch, 0.0)
            log.count(T0 + 200.0, u, ch, v)
    report = compute_kpis(log, f)
    line1, line2 = report.lines
    assert line1.apt_s == 350.0 and line1.pbt_s == 600.0
    assert line1.availability == pytest.approx(350 / 600, rel=1e-12)
    assert (line1.good, line1.scrap) == (7, 3)  # good of b-1 + b-2; scrap over a, b-1, b-2
    assert line1.produced == 10
    assert line1.quality == pytest.approx(0.7, rel=1e-12)
    assert line1.performance == pytest.approx((10 * 5 + 4 * 4 + 5 * 4) / 350, rel=1e-12)
    assert line1.energy_kwh == pytest.approx(9.0, rel=1e-12)
    averaged = np.mean([s.performance for s in report.stations[:3]])  # 0.327, not the line's 0.246
    assert line1.performance != pytest.approx(averaged, rel=1e-3)
    assert line2.performance == pytest.approx(60 / 150, rel=1e-12)
    site = report.site
    assert (site.good, site.produced, site.apt_s) == (37, 40, 500.0)
    assert site.energy_kwh == pytest.approx(10.0, rel=1e-12)  # no meter readings: the stations' sum

    # with grid import and PV metered, the site's energy is what it drew: grid + self-consumed PV
    log.count(T0, 4, Channel.ENERGY_KWH, 1000.0)
    log.count(T0 + 200.0, 4, Channel.ENERGY_KWH, 1008.0)
    log.count(T0, 5, Channel.ENERGY_KWH, 50.0)
    log.count(T0 + 200.0, 5, Channel.ENERGY_KWH, 53.0)
    report = compute_kpis(log, f)
    assert report.site.energy_kwh == pytest.approx(11.0, rel=1e-12)
    assert report.diagnostics["meters"]["grid"]["energy_kwh"] == pytest.approx(8.0, rel=1e-12)
    assert report.diagnostics["meters"]["pv"]["volume"] is None


def test_performance_above_one_is_reported_not_capped():
    f = factory({"line1": [station("a", cycle_s=30.0)]})
    log = new_log(f, 100.0)
    log.state(T0, 0, State.PRODUCING)
    log.count(T0, 0, Channel.PRODUCED, 0)
    log.count(T0 + 100.0, 0, Channel.PRODUCED, 5)  # 150 s of ideal time in 100 s
    st = compute_kpis(log, f).stations[0]
    assert st.performance == pytest.approx(1.5, rel=1e-12)
    assert "performance_above_1" in st.flags


def test_bad_input_is_rejected_with_a_message():
    f = factory({"line1": [station("a")]})
    log = new_log(f, 100.0)
    with pytest.raises(ValueError, match="strictly increasing"):
        compute_kpis(log, f, [T0, T0])
    with pytest.raises(ValueError, match="unknown channel"):
        compute_kpis(log, f, counter_modulus={"widgets": 10})
    other = factory({"line1": [station("a"), station("b")]})
    with pytest.raises(ValueError, match="do not match"):
        compute_kpis(log, other)
    log.count(T0, 0, Channel.GOOD, math.nan)
    assert compute_kpis(log, f).diagnostics["bad_counter_readings"] == {"line1/a/good": 1}


def two_product_factory() -> Factory:
    return Factory.model_validate({
        "site": {"name": "example-site"}, "products": [{"name": "pcb-a"}, {"name": "pcb-b"}],
        "lines": [{"name": "line1", "stations": [
            {"name": "printer", "machines": 1, "cycle_time_s": {"pcb-a": 18.0, "pcb-b": 22.0},
             "power_kw": {"producing": 1, "setup": 1, "down": 0, "idle": 0, "planned_stop": 0, "no_shift": 0}}]}]})


def test_product_change_logged_with_the_last_part_keeps_that_part_on_the_old_product():
    # the printer makes 5 a-parts (18 s) back to back, logs the product change to b in the same
    # instant as the fifth PRODUCED reading, then makes 2 b-parts (22 s): exactly 100 % performance
    f = two_product_factory()
    log = new_log(f, 5 * 18.0 + 2 * 22.0)
    log.state(T0, 0, State.PRODUCING)
    log.product(T0, 0, 0)
    log.count(T0, 0, Channel.PRODUCED, 0)
    t = T0
    for n in range(1, 6):
        t += 18.0
        log.count(t, 0, Channel.PRODUCED, n)
    log.product(t, 0, 1)  # the simulator logs the change after the reading, at the same timestamp
    for n in range(6, 8):
        t += 22.0
        log.count(t, 0, Channel.PRODUCED, n)
    st = compute_kpis(log, f).stations[0]
    assert st.apt_s == 134.0 and st.produced == 7
    assert st.performance == pytest.approx(1.0, rel=1e-12)
    assert "performance_above_1" not in st.flags and "unknown_product" not in st.flags


def test_zero_length_span_gives_an_empty_report():
    log, f = worked_example()
    log.t_start = log.t_end = T0 + 8400.0  # an instant with a state change and counter readings
    log.count(T0 + 8400.0, 0, Channel.GOOD, math.nan)  # rejected readings are still diagnosed
    report = compute_kpis(log.freeze(), f)
    for w in [*report.stations, *report.lines, report.site]:
        assert (w.pot_s, w.pbt_s, w.apt_s, w.asut_s, w.adet_s, w.adot_s, w.unknown_s) == (0.0,) * 7
        assert (w.produced, w.good, w.scrap, w.rework, w.failures) == (0, 0, 0, 0, 0)
        assert (w.availability, w.performance, w.quality, w.oee, w.nee, w.mtbf_s, w.mttr_s,
                w.kwh_per_good) == (None,) * 8
        assert w.energy_kwh == 0.0
    assert report.diagnostics["span"] == [T0 + 8400.0, T0 + 8400.0]
    assert report.diagnostics["bad_counter_readings"] == {"line1/reflow/good": 1}
    # with windows too, and from an empty log
    edges = T0 + np.array([0.0, 3600.0])
    assert len(compute_kpis(log.freeze(), f, edges).windows) == 3
    empty = new_log(f, 0.0)
    st = compute_kpis(empty, f).stations[0]
    assert (st.pot_s, st.unknown_s, st.availability, st.energy_kwh) == (0.0, 0.0, None, None)


@pytest.mark.parametrize("span", [(T0, T0 - 1.0), (T0, math.inf), (math.nan, T0), (-math.inf, T0)])
def test_reversed_or_non_finite_span_is_rejected(span):
    f = factory({"line1": [station("a")]})
    log = new_log(f)
    log.t_start, log.t_end = span
    with pytest.raises(ValueError, match="t_end >= t_start"):
        compute_kpis(log, f)
