"""The SimPy offline twin: reproducibility, conservation of parts, state accounting, calendar, energy."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from factory_models import State, load_factory
from factory_models.schema import Factory
from twin.kpi.eventlog import N_CHANNELS, Channel
from twin.model import FactorySim, ShiftCalendar, simulate

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
HOUR = 3600.0
POWER = {"producing": 6.0, "setup": 3.0, "down": 1.5, "idle": 2.0, "planned_stop": 1.0, "no_shift": 0.25}


@pytest.fixture(scope="module")
def smt() -> Factory:
    return load_factory(CONFIGS / "demo_smt.yaml")


@pytest.fixture(scope="module")
def machining() -> Factory:
    return load_factory(CONFIGS / "demo_machining.yaml")


def small_factory(**calendar) -> Factory:
    """Three stations (one inspecting with scrap and rework, one with two machines), a day shift with
    a break, Shanghai time, starting Friday 2026-01-02 with Tuesday 2026-01-06 a holiday."""
    cal = {"timezone": "Asia/Shanghai", "holidays": ["2026-01-06"],
           "shifts": [{"name": "day", "start": "08:00", "end": "16:00",
                       "breaks": [{"start": "12:00", "minutes": 30}]}]}
    cal.update(calendar)
    return Factory.model_validate({
        "site": {"name": "test-site"},
        "products": [{"name": "a", "share": 0.5}, {"name": "b", "share": 0.5}],
        "calendar": cal,
        "lines": [{"name": "l", "release": {"batch_size": 7}, "stations": [
            {"name": "cut", "cycle_time_s": {"a": 50, "b": 70}, "setup_s": 120, "power_kw": POWER,
             "buffer_after": 3, "slowdown": 1.2,
             "failures": [{"name": "jam", "tbf": {"dist": "exponential", "mean_s": 3000},
                           "ttr": {"dist": "lognormal", "mean_s": 300, "sigma": 0.5}}],
             "micro_stop": {"name": "blip", "tbf": {"dist": "weibull", "scale_s": 600, "shape": 1.5},
                            "ttr": {"dist": "fixed", "value_s": 20}}},
            {"name": "check", "cycle_time_s": {"a": 40, "b": 40}, "scrap_rate": 0.05,
             "rework": {"rate": 0.1, "to": "cut"}, "power_kw": POWER, "buffer_after": 2},
            {"name": "pack", "machines": 2, "cycle_time_s": {"a": 90, "b": 90}, "power_kw": POWER},
        ]}],
        "meters": [
            {"name": "grid", "kind": "grid_import", "base_load": {"on_shift_kw": 10.0, "off_shift_kw": 2.0}},
            {"name": "gas", "kind": "natural_gas", "on_shift_nm3_per_h": 5.0, "off_shift_nm3_per_h": 1.0},
            {"name": "air", "kind": "compressed_air", "compressor_kw": 7.5, "on_shift_load": 0.5,
             "off_shift_load": 0.1},
        ],
        "simulation": {"start": "2026-01-02T00:00:00+08:00"},
    })


def without_failures(factory: Factory) -> Factory:
    data = factory.model_dump()
    for line in data["lines"]:
        for st in line["stations"]:
            st["failures"], st["micro_stop"] = [], None
    return Factory.model_validate(data)


def unit_states(frozen, u):
    """(start times, codes, durations) of unit u's states up to the end of the run."""
    s = frozen.states
    a, b = s.offsets[u], s.offsets[u + 1]
    t = s.t[a:b]
    return t, s.value[a:b], np.diff(np.append(t, frozen.t_end))


def counter(frozen, u, channel):
    c = frozen.counters
    k = u * N_CHANNELS + channel
    return c.t[c.offsets[k]:c.offsets[k + 1]], c.value[c.offsets[k]:c.offsets[k + 1]]


def frozen_arrays(log):
    f = log.freeze()
    return [getattr(f, name).__dict__[col] for name in ("states", "counters", "power", "products_stream")
            for col in ("t", "key", "value")]


# --- reproducibility --------------------------------------------------------------------------


def test_same_seed_gives_identical_log_and_other_seeds_differ(smt):
    a = frozen_arrays(simulate(smt, 30, seed=3))
    b = frozen_arrays(simulate(smt, 30, seed=3))
    c = frozen_arrays(simulate(smt, 30, seed=4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(len(x) == len(z) and np.array_equal(x, z) for x, z in zip(a, c))


def test_stepping_in_chunks_gives_the_same_states_as_one_run(machining):
    whole = FactorySim(machining, seed=5)
    whole.run(30 * HOUR)
    stepped = FactorySim(machining, seed=5)
    for until in (1 * HOUR, 7.5 * HOUR, 13 * HOUR, 30 * HOUR):
        stepped.run(until)
    for col in ("state_t", "state_unit", "state_code", "product_t", "product_code"):
        assert getattr(whole.log, col) == getattr(stepped.log, col)


# --- conservation and state accounting -----------------------------------------------------------


@pytest.mark.parametrize("which", ["smt", "machining"])
def test_parts_are_conserved(which, request):
    factory = request.getfixturevalue(which)
    sim = FactorySim(factory, seed=11)
    sim.run(40 * HOUR)
    (flow,) = sim.balance().values()
    assert flow["released"] > 100
    assert flow["released"] == flow["shipped"] + flow["scrapped"] + flow["wip"]
    frozen = sim.log.freeze()
    last = len(sim.machines) - 1
    assert counter(frozen, last, Channel.GOOD)[1][-1] == flow["shipped"]
    scrap = sum(counter(frozen, u, Channel.SCRAP)[1][-1] for u in range(frozen.n_stations))
    assert scrap == flow["scrapped"]
    rework = sum(counter(frozen, u, Channel.REWORK)[1][-1] for u in range(frozen.n_stations))
    assert rework > 0  # both demos rework some parts within 40 h


@pytest.mark.parametrize("which", ["smt", "machining"])
def test_each_station_is_in_exactly_one_state_for_the_whole_run(which, request):
    factory = request.getfixturevalue(which)
    log = simulate(factory, 36, seed=2)
    frozen = log.freeze()
    assert frozen.t_end - frozen.t_start == 36 * HOUR
    for u in range(frozen.n_stations):
        t, codes, d = unit_states(frozen, u)
        assert t[0] == frozen.t_start
        assert np.all(d >= 0)
        assert d.sum() == pytest.approx(36 * HOUR, abs=1e-6)
        assert set(codes.tolist()) <= {int(s) for s in State if s != State.UNKNOWN}


@pytest.mark.parametrize("which", ["smt", "machining"])
def test_energy_and_volume_counters_are_monotone_and_exact(which, request):
    factory = request.getfixturevalue(which)
    sim = FactorySim(factory, seed=9)
    sim.run(30 * HOUR)
    frozen = sim.log.freeze()
    for u in range(len(frozen.units)):
        for ch in (Channel.ENERGY_KWH, Channel.VOLUME):
            _, v = counter(frozen, u, ch)
            assert np.all(np.diff(v) >= 0), (frozen.units[u], ch.name)
    # a station's energy counter equals its power per state integrated over the state log
    for u, (_, spec, _) in enumerate(factory.station_units()):
        _, codes, d = unit_states(frozen, u)
        kw = np.array(spec.power_kw.as_list())[codes]
        assert counter(frozen, u, Channel.ENERGY_KWH)[1][-1] == pytest.approx((kw * d).sum() / 3600, rel=1e-9)


def test_no_down_time_without_failures(smt):
    factory = without_failures(smt)
    frozen = simulate(factory, 30, seed=1).freeze()
    assert not np.any(frozen.states.value == State.DOWN)
    # the same run with failures does go down, so the check above can fail
    assert np.any(simulate(smt, 30, seed=1).freeze().states.value == State.DOWN)


# --- calendar ----------------------------------------------------------------------------------


def _work_windows(tz: ZoneInfo, days: list[str]) -> list[tuple[float, float]]:
    out = []
    for day in days:
        d = datetime.fromisoformat(day)
        for a, b in (("08:00", "12:00"), ("12:30", "16:00")):
            out.append((datetime.fromisoformat(f"{day}T{a}").replace(tzinfo=tz).timestamp(),
                        datetime.fromisoformat(f"{day}T{b}").replace(tzinfo=tz).timestamp()))
        assert d.weekday() < 5
    return out


def test_no_work_outside_shifts_breaks_weekends_or_holidays():
    factory = small_factory()
    tz = ZoneInfo("Asia/Shanghai")
    # Friday Jan 2 to Tuesday Jan 6 (a holiday): only Friday and Monday are worked
    windows = _work_windows(tz, ["2026-01-02", "2026-01-05"])
    frozen = simulate(factory, 5 * 24, seed=4).freeze()
    for u in range(frozen.n_stations):
        t, codes, d = unit_states(frozen, u)
        for a, code, dur in zip(t, codes, d):
            if code in (State.PRODUCING, State.SETUP, State.DOWN) and dur > 0:
                assert any(w0 <= a and a + dur <= w1 + 1e-6 for w0, w1 in windows), (u, State(code).name, a)
        times, values = counter(frozen, u, Channel.PRODUCED)
        made = times[1:][np.diff(values) > 0]
        assert len(made) > 0
        assert all(any(w0 < x <= w1 + 1e-6 for w0, w1 in windows) for x in made)

    def state_at(u, local):
        t, codes, _ = unit_states(frozen, u)
        x = datetime.fromisoformat(local).replace(tzinfo=tz).timestamp()
        return State(codes[np.searchsorted(t, x, side="right") - 1])

    for u in range(frozen.n_stations):
        assert state_at(u, "2026-01-02T12:10") == State.PLANNED_STOP
        assert state_at(u, "2026-01-02T20:00") == State.NO_SHIFT
        assert state_at(u, "2026-01-03T10:00") == State.NO_SHIFT  # Saturday
        assert state_at(u, "2026-01-06T10:00") == State.NO_SHIFT  # holiday
    assert state_at(0, "2026-01-05T09:00") != State.NO_SHIFT


def test_shifts_follow_local_time_across_daylight_saving():
    # Berlin springs forward on Sunday 2026-03-29: the 06:00 shift moves from 05:00 to 04:00 UTC
    factory = small_factory(timezone="Europe/Berlin", holidays=[], workdays=["mon", "tue", "wed", "thu", "fri", "sat", "sun"])
    data = factory.model_dump()
    data["calendar"]["shifts"] = [{"name": "early", "start": "06:00", "end": "14:00", "breaks": []}]
    data["simulation"]["start"] = datetime.fromisoformat("2026-03-27T00:00:00+01:00")
    factory = Factory.model_validate(data)
    frozen = simulate(factory, 4 * 24, seed=0).freeze()
    t, codes, _ = unit_states(frozen, 0)
    tz = ZoneInfo("Europe/Berlin")
    starts = [datetime.fromtimestamp(x, tz) for x, prev, cur in zip(t[1:], codes[:-1], codes[1:])
              if prev == State.NO_SHIFT and cur != State.NO_SHIFT]
    assert [s.strftime("%m-%d %H:%M") for s in starts] == ["03-27 06:00", "03-28 06:00", "03-29 06:00", "03-30 06:00"]
    assert starts[2].utcoffset() == timedelta(hours=2)


def test_calendar_night_shift_belongs_to_its_start_day(smt):
    cal = ShiftCalendar(smt.calendar, smt.simulation.start)
    tz = ZoneInfo("Asia/Shanghai")
    t0 = smt.simulation.start.timestamp()

    def mode(local):
        return cal.at(datetime.fromisoformat(local).replace(tzinfo=tz).timestamp() - t0)[0]

    on, brk, off = 0, 1, 2
    assert mode("2026-01-05T03:00") == off      # Sunday's night shift is not worked
    assert mode("2026-01-05T08:00") == on
    assert mode("2026-01-05T11:45") == brk
    assert mode("2026-01-06T00:30") == brk      # Monday's night shift, midnight meal on Tuesday
    assert mode("2026-01-10T07:59") == on       # Friday's night shift runs into Saturday
    assert mode("2026-01-10T08:00") == off
    # seconds per mode over the first week: 5 x 24 h of shifts, of which 5 x 3 h are breaks
    week = cal.seconds_by_mode(0.0, 7 * 24 * HOUR)
    assert week == pytest.approx([5 * 21 * HOUR, 5 * 3 * HOUR, 48 * HOUR])


# --- meters ------------------------------------------------------------------------------------


def test_site_meters_integrate_exactly():
    factory = small_factory()
    sim = FactorySim(factory, seed=6, meter_interval_s=90.0)
    sim.run(5 * 24 * HOUR)
    frozen = sim.log.freeze()
    on_h, off_h = 16.0, 5 * 24 - 16.0  # two worked days of 8 h (breaks count as on shift)
    grid, gas, air = (frozen.units.index(f"site/{n}") for n in ("grid", "gas", "air"))
    assert counter(frozen, gas, Channel.VOLUME)[1][-1] == pytest.approx(5.0 * on_h + 1.0 * off_h)
    load_h = 0.5 * on_h + 0.1 * off_h
    assert counter(frozen, air, Channel.VOLUME)[1][-1] == pytest.approx(7.5 / 6.5 * load_h * 60)
    stations_kwh = sum(counter(frozen, u, Channel.ENERGY_KWH)[1][-1] for u in range(frozen.n_stations))
    expected = stations_kwh + 10.0 * on_h + 2.0 * off_h + 7.5 * load_h
    assert counter(frozen, grid, Channel.ENERGY_KWH)[1][-1] == pytest.approx(expected, rel=1e-9)
    times, _ = counter(frozen, grid, Channel.ENERGY_KWH)
    assert times[0] == frozen.t_start and times[-1] == frozen.t_end
    assert np.allclose(np.diff(times)[:-1], 90.0)


def test_pv_follows_the_sun_and_nets_against_import(smt):
    sim = FactorySim(smt, seed=2, power_gauges=True)
    sim.run(48 * HOUR)
    frozen = sim.log.freeze()
    pv = frozen.units.index("site/pv")
    p = frozen.power
    t, kw = p.t[p.offsets[pv]:p.offsets[pv + 1]], p.value[p.offsets[pv]:p.offsets[pv + 1]]
    local_h = np.array([datetime.fromtimestamp(x, ZoneInfo("Asia/Shanghai")).hour for x in t])
    assert np.all(kw[(local_h < 7) | (local_h >= 18)] == 0)
    assert kw.max() > 0 and kw.max() <= 400.0
    # import never exceeds the load, and PV lowers it
    grid = frozen.units.index("site/grid")
    imported = counter(frozen, grid, Channel.ENERGY_KWH)[1][-1]
    stations = sum(counter(frozen, u, Channel.ENERGY_KWH)[1][-1] for u in range(frozen.n_stations))
    assert 0 < imported < stations + 85.0 * 48 + 37.0 * 48


# --- live control ----------------------------------------------------------------------------


def test_force_down_stops_a_machine_for_the_given_working_time():
    factory = without_failures(small_factory(shifts=[]))  # no shifts: around the clock
    sim = FactorySim(factory, seed=1)
    sim.run(1000.0)
    sim.force_down("l/cut", 300.0)
    sim.run(3000.0)
    frozen = sim.log.freeze()
    t, codes, d = unit_states(frozen, 0)
    i = int(np.flatnonzero((t == frozen.t_start + 1000.0) & (codes == State.DOWN))[0])
    assert d[i] == pytest.approx(300.0)
    assert sim.station_state("l/cut") != State.DOWN


def test_force_down_while_waiting_keeps_parts_conserved():
    factory = small_factory(shifts=[])
    sim = FactorySim(factory, seed=8)
    sim.run(2000.0)
    for u in range(len(sim.machines)):
        sim.force_down(u, 100.0 + 50 * u)
    sim.run(2000.5)
    assert all(sim.station_state(u) == State.DOWN for u in range(len(sim.machines)))
    sim.run(6 * HOUR)
    (flow,) = sim.balance().values()
    assert flow["released"] == flow["shipped"] + flow["scrapped"] + flow["wip"]
    with pytest.raises(KeyError, match="site meter"):
        sim.force_down("site/grid", 10.0)


def test_on_event_sees_every_reading():
    seen = []
    log = simulate(small_factory(), 30, seed=3, on_event=lambda kind, unit, t, value: seen.append(kind))
    assert seen.count("state") == len(log.state_t)
    assert seen.count("product") == len(log.product_t)
    counts = sum(seen.count(k) for k in ("produced", "good", "scrap", "rework", "energy_kwh", "volume"))
    assert counts == len(log.count_t)


def test_realtime_environment_drives_the_same_model(machining):
    # the live demo runs the model on a RealtimeEnvironment; at a tiny time factor it must give the
    # same history as the plain environment (no wall-clock assertion: strict=False)
    import simpy.rt

    plain = FactorySim(machining, seed=7)
    plain.run(2 * HOUR)
    live = FactorySim(machining, seed=7, env=simpy.rt.RealtimeEnvironment(factor=1e-6, strict=False))
    live.run(2 * HOUR)
    assert live.log.state_t == plain.log.state_t and live.log.state_code == plain.log.state_code
    with pytest.raises(ValueError, match="back in time"):
        live.run(HOUR)
