"""Standby and switch-off policies in the SimPy twin, against figures worked out by hand.

The scenario: one line, always on shift, one product, no setups. ``feed`` (10 s a part) fails after
exactly 3600 s of busy time and is repaired in exactly 1800 s; ``fill`` (10 s a part, the station
under test) takes its parts. By hand:

- feed finishes parts at 10, 20, ..., 3600 s (360 parts), is DOWN 3600-5400 s, then finishes parts at
  5410, 5420, ... until its next failure at 9000 s (busy time 7200 s).
- fill (no policy) makes parts 10-3610 s, is STARVED 3610-5410 s (1800 s), makes parts 5410-9010 s
  (720 parts in all), is STARVED again from 9010 s.
- fill with ``standby: {after_s: 600, power_kw: 0.3, wake_s: 60}``: dozes at 4210 s (1200 s of
  standby to 5410 s), wakes 5410-5470 s (SETUP), then is 60 s behind for good: parts 5470-9070 s,
  STARVED from 9070 s, dozing again at 9670 s.
"""

from __future__ import annotations

import pytest

from factory_models import State
from factory_models.schema import Factory
from twin.kpi.eventlog import Channel
from twin.model import FactorySim

IDLE_KW, STANDBY_KW, SETUP_KW, PRODUCING_KW = 2.0, 0.3, 4.0, 5.0
POWER = {"producing": PRODUCING_KW, "setup": SETUP_KW, "down": 1.0, "idle": IDLE_KW,
         "planned_stop": 1.5, "no_shift": 0.1}


def factory(standby: dict | None = None, *, shift_off: list | None = None, line_off: list | None = None,
            calendar: dict | None = None) -> Factory:
    fill = {"name": "fill", "cycle_time_s": {"p": 10}, "power_kw": POWER}
    if standby is not None:
        fill["standby"] = standby
    if shift_off is not None:
        fill["shift_off"] = shift_off
    line = {"name": "l", "release": {"batch_size": 5}, "stations": [
        {"name": "feed", "cycle_time_s": {"p": 10}, "power_kw": POWER, "buffer_after": 50,
         "failures": [{"name": "stop", "tbf": {"dist": "fixed", "value_s": 3600},
                       "ttr": {"dist": "fixed", "value_s": 1800}}]},
        fill]}
    if line_off is not None:
        line["shift_off"] = line_off
    doc = {"site": {"name": "s"}, "products": [{"name": "p"}], "lines": [line],
           "simulation": {"start": "2026-01-05T00:00:00+00:00"}}  # a Monday, UTC
    if calendar is not None:
        doc["calendar"] = calendar
    return Factory.model_validate(doc)


def run(f: Factory, seconds: float) -> FactorySim:
    sim = FactorySim(f, seed=3)
    sim.run(seconds)
    return sim


def seconds_in(sim: FactorySim, unit: int, state: State) -> float:
    """Time the event log shows ``unit`` in ``state`` up to the end of the run."""
    log = sim.log
    rows = [(t, c) for t, u, c in zip(log.state_t, log.state_unit, log.state_code) if u == unit]
    ends = [t for t, _ in rows[1:]] + [log.t_end]
    return sum(end - t for (t, c), end in zip(rows, ends) if c == int(state))


def last_energy_kwh(sim: FactorySim, unit: int) -> float:
    log = sim.log
    key = unit * len(Channel) + int(Channel.ENERGY_KWH)
    return [v for k, v in zip(log.count_key, log.count_value) if k == key][-1]


def test_standby_saves_idle_time_beyond_after_s_times_the_power_step_less_the_wake_up():
    end = 10_000.0  # both variants have made 720 parts by now and are starved
    plain = run(factory(), end)
    policy = run(factory({"after_s": 600, "power_kw": STANDBY_KW, "wake_s": 60}), end)
    fill_plain, fill_policy = plain.machines[1], policy.machines[1]
    assert fill_plain.produced == fill_policy.produced == 720

    # fill without the policy: 10 s idle at the start, 1800 s + 990 s starved, 7200 s producing
    assert fill_plain.energy_kws == pytest.approx(IDLE_KW * (10 + 1800 + 990) + PRODUCING_KW * 7200)  # 41600
    # idle beyond after_s: 1800 - 600 = 1200 s in the first spell, 930 - 600 = 330 s in the second
    beyond_s = 1200 + 330
    wake_kws = 60 * SETUP_KW  # no wake_kwh: the setup power for wake_s
    # the 60 s of wake-up would otherwise have been idle (the last spell is 60 s shorter): credit them
    saved = beyond_s * (IDLE_KW - STANDBY_KW) - (wake_kws - 60 * IDLE_KW)  # 2601 - 120 = 2481 kW s
    assert fill_plain.energy_kws - fill_policy.energy_kws == pytest.approx(saved, abs=1e-6)
    assert saved == pytest.approx(2481.0)
    # the log's cumulative energy reading says the same
    assert last_energy_kwh(plain, 1) - last_energy_kwh(policy, 1) == pytest.approx(saved / 3600, abs=1e-9)
    assert fill_policy.wakes == 2 - 1  # the second spell is still asleep at the end
    assert fill_policy.standby_s == pytest.approx(1200)
    # the wake-up is SETUP (ASUT); standby stays STARVED (ADOT) in the states the KPIs read
    assert seconds_in(policy, 1, State.SETUP) == pytest.approx(60)
    assert seconds_in(policy, 1, State.STARVED) == pytest.approx(10 + 1800 + 930)
    assert seconds_in(plain, 1, State.SETUP) == 0
    # the site sum of station power sees the same saving (it feeds the grid meter)
    assert plain.recorder.station_kws(end) - policy.recorder.station_kws(end) == pytest.approx(saved, abs=1e-6)


def test_wake_kwh_sets_the_wake_up_energy():
    end = 10_000.0
    plain = run(factory(), end)
    policy = run(factory({"after_s": 600, "power_kw": STANDBY_KW, "wake_s": 60, "wake_kwh": 0.05}), end)
    saved = (1200 + 330) * (IDLE_KW - STANDBY_KW) - (0.05 * 3600 - 60 * IDLE_KW)  # 2601 - 60 = 2541 kW s
    assert plain.machines[1].energy_kws - policy.machines[1].energy_kws == pytest.approx(saved, abs=1e-6)


def test_throughput_lost_equals_the_wake_delay():
    # at 7205 s feed is still working: fill without the policy finished parts at 5420..7200 s,
    # with it at 5480..7200 s: 60 s of wake-up = 6 parts of 10 s
    end = 7205.0
    plain = run(factory(), end).machines[1]
    policy = run(factory({"after_s": 600, "power_kw": STANDBY_KW, "wake_s": 60}), end).machines[1]
    assert plain.produced == 360 + 179
    assert (plain.produced - policy.produced) * 10 == 60


def test_idle_shorter_than_after_s_changes_nothing():
    end = 10_000.0
    plain = run(factory(), end)
    policy = run(factory({"after_s": 1800.0 + 990.0 + 1, "power_kw": STANDBY_KW, "wake_s": 60}), end)
    assert policy.machines[1].wakes == 0
    assert policy.machines[1].energy_kws == pytest.approx(plain.machines[1].energy_kws)
    assert policy.machines[1].produced == plain.machines[1].produced


def test_a_break_ends_standby_without_a_wake_up():
    # one shift 00:00-03:00 with a break 01:30-02:30. feed: DOWN 3600-5400 s, on break to 9000 s, its
    # next part at 9010 s. fill: starved from 3610 s, dozes at 4210 s, the break at 5400 s ends standby
    # (1190 s of it) and shows PLANNED_STOP; at 9000 s a new idle spell starts, 10 s long: no doze
    cal = {"timezone": "UTC", "workdays": ["mon"],
           "shifts": [{"name": "d", "start": "00:00", "end": "03:00", "breaks": [{"start": "01:30", "minutes": 60}]}]}
    end = 9605.0
    plain = run(factory(calendar=cal), end)
    policy = run(factory({"after_s": 600, "power_kw": STANDBY_KW, "wake_s": 60}, calendar=cal), end)
    fill = policy.machines[1]
    assert fill.wakes == 0 and fill.standby_s == pytest.approx(1190)
    assert seconds_in(policy, 1, State.PLANNED_STOP) == pytest.approx(3600)
    assert fill.produced == plain.machines[1].produced == 360 + 59  # 9020..9600 s after the break
    assert plain.machines[1].energy_kws - fill.energy_kws == pytest.approx(1190 * (IDLE_KW - STANDBY_KW))  # 2023


def test_shift_off_window_switches_a_station_off_inside_the_shift():
    # fill off 01:00-02:00 every day (site always on). fill: parts to 3600 s (359), part 360 paused
    # 3600-7200 s in NO_SHIFT and done at 7210 s, then never starved (feed filled the 50-part buffer
    # while fill was off): parts 7210..10800 s. feed: DOWN 3600-5400 s, 50 parts by 5900 s, the next
    # one waits BLOCKED 5910-7210 s
    f = factory(shift_off=[{"start": "01:00", "end": "02:00"}])
    sim = run(f, 10_805.0)
    fill = sim.machines[1]
    assert seconds_in(sim, 1, State.NO_SHIFT) == pytest.approx(3600)
    assert seconds_in(sim, 0, State.BLOCKED) == pytest.approx(7210 - 5910)
    assert fill.produced == 359 + 360
    # idle 10 s at 2 kW, producing 3590 + 3605 s at 5 kW, off 3600 s at 0.1 kW
    assert fill.energy_kws == pytest.approx(2.0 * 10 + 5.0 * (3590 + 3605) + 0.1 * 3600)  # 36355


def test_line_shift_off_on_weekend_days():
    f = factory(line_off=[{"days": ["mon"]}])  # the run starts on a Monday: off the whole day
    sim = run(f, 3600.0)
    assert seconds_in(sim, 0, State.NO_SHIFT) == pytest.approx(3600)
    assert seconds_in(sim, 1, State.NO_SHIFT) == pytest.approx(3600)
    assert sim.machines[0].produced == sim.machines[1].produced == 0


def test_wake_kwh_without_wake_time_is_rejected():
    with pytest.raises(ValueError, match="wake_kwh > 0 needs wake_s > 0"):
        factory({"after_s": 60, "power_kw": 0.1, "wake_s": 0, "wake_kwh": 0.2})


def test_an_experiment_plan_sets_standby_on_every_station_of_a_line(tmp_path):
    from twin.experiment.plan import load_plan
    from twin.model.standby import StandbyMachine

    base = tmp_path / "f.yaml"
    base.write_text(factory().model_dump_json())  # JSON is YAML
    plan = tmp_path / "plan.yaml"
    plan.write_text("base: f.yaml\nhours: 1\nwarmup_hours: 0\nreplications: 2\nseed: 1\nscenarios:\n"
                    "  - name: base\n"
                    "  - name: standby\n"
                    '    set: {"lines.l.stations.*.standby": {after_s: 600, power_kw: 0.3, wake_s: 60}}\n')
    scenario = load_plan(plan).scenarios[1]
    sim = FactorySim(Factory.model_validate(scenario.factory_doc), seed=3)
    assert all(isinstance(m, StandbyMachine) for m in sim.machines)
    assert [m.spec.standby.wake_s for m in sim.machines] == [60, 60]


def test_standby_on_the_demo_line_keeps_parts_and_energy_consistent():
    # every station of demo_smt with standby, 3 days from Monday: parts are conserved, energy counters
    # never fall, and each station's energy is its power per state over the state log less
    # (idle - standby power) over the time it spent in standby
    from pathlib import Path

    import numpy as np

    from factory_models import load_factory

    smt = load_factory(Path(__file__).resolve().parents[2] / "configs" / "demo_smt.yaml")
    doc = smt.model_dump(mode="json")
    for st in doc["lines"][0]["stations"]:
        st["standby"] = {"after_s": 300, "power_kw": 0.05, "wake_s": 45}
    f = Factory.model_validate(doc)
    sim = FactorySim(f, seed=4)
    end = 3 * 86400.0
    sim.run(end)
    (flow,) = sim.balance().values()
    assert flow["released"] == flow["shipped"] + flow["scrapped"] + flow["wip"]
    frozen = sim.log.freeze()
    assert sum(m.wakes for m in sim.machines) > 0
    for u, m in enumerate(sim.machines):
        s = frozen.states
        codes = s.value[s.offsets[u]:s.offsets[u + 1]]
        t = s.t[s.offsets[u]:s.offsets[u + 1]]
        d = np.diff(np.append(t, frozen.t_end))
        kw = np.array(m.spec.power_kw.as_list())[codes]
        asleep = m.standby_s + (end - m._asleep_at if m.asleep else 0.0)
        expected = (kw * d).sum() - (m.spec.power_kw.idle - 0.05) * asleep
        c = frozen.counters
        key = u * len(Channel) + int(Channel.ENERGY_KWH)
        energy = c.value[c.offsets[key]:c.offsets[key + 1]]
        assert np.all(np.diff(energy) >= 0)
        assert energy[-1] * 3600 == pytest.approx(expected, rel=1e-9), m.spec.name


def test_switch_off_windows_overlap_and_run_past_midnight():
    from datetime import datetime

    from factory_models.policies import ShiftOff
    from factory_models.schema import Calendar
    from twin.model.calendar import OFF, ON, ShiftCalendar, SwitchedOffCalendar

    start = datetime.fromisoformat("2026-01-05T00:00:00+00:00")  # Monday, UTC
    site_cal = Calendar()  # no shifts: on around the clock
    windows = [ShiftOff(days=["mon"], start="22:00", end="06:00"), ShiftOff(start="05:00", end="07:00")]
    cal = SwitchedOffCalendar(ShiftCalendar(site_cal, start), site_cal, windows, start)
    h = 3600.0
    assert cal.at(4 * h) == (ON, 5 * h)  # Monday 04:00: next change at the 05:00 window
    assert cal.at(5.5 * h) == (OFF, 7 * h)  # Monday's own 05:00-07:00 window
    assert cal.at(21 * h) == (ON, 22 * h)
    assert cal.at(23 * h) == (OFF, 30 * h)  # Monday 22:00 to Tuesday 06:00 ...
    assert cal.at(30 * h) == (OFF, 31 * h)  # ... runs on into Tuesday's 05:00-07:00 window
    assert cal.at(31 * h) == (ON, 53 * h)  # Tuesday 07:00 on until Wednesday 05:00
