"""The Numba KPI kernels on small hand-built logs whose answers are worked out in the comments."""

from __future__ import annotations

import math

import numpy as np
import pytest

from factory_models.states import N_STATES, State
from twin.kpi.eventlog import CONTINUOUS, N_CHANNELS, Channel, EventLog
from twin.kpi import kernels

P, SU, D, ST, PS, UNK = State.PRODUCING, State.SETUP, State.DOWN, State.STARVED, State.PLANNED_STOP, State.UNKNOWN


def make_log(n_units=1, t_end=100.0, products=("p",)) -> EventLog:
    return EventLog(units=[f"l/s{i}" for i in range(n_units)], n_stations=n_units, products=list(products),
                    t_start=0.0, t_end=t_end)


def states(log: EventLog, edges):
    f = log.freeze()
    return kernels.state_durations(f.states, np.asarray(edges, float), f.t_end)


def counters(log: EventLog, edges, modulus=0.0):
    f = log.freeze()
    mod = np.full(N_CHANNELS, float(modulus))
    delta, resets, rollovers, bad, readings = kernels.counter_deltas(
        f.counters, np.asarray(edges, float), mod, CONTINUOUS)
    return delta.reshape(log.n_units, N_CHANNELS, -1), resets, rollovers, bad, readings


def test_state_carried_into_window_and_clipped():
    log = make_log()
    log.state(-50.0, 0, SU)  # before the first window: carried in
    log.state(30.0, 0, P)
    log.state(70.0, 0, D)
    sec, fail, invalid = states(log, [0.0, 50.0, 100.0])
    assert sec[0, 0, SU] == 30.0 and sec[0, 0, P] == 20.0
    assert sec[0, 1, P] == 20.0 and sec[0, 1, D] == 30.0
    assert fail[0].tolist() == [0, 1]  # the DOWN at 70 starts in the second window
    assert invalid[0] == 0


def test_unknown_before_first_sample_and_after_t_end():
    log = make_log(n_units=2, t_end=80.0)
    log.state(25.0, 0, P)
    log.state(25.0, 0, P)  # a repeat is a no-op
    sec, fail, _ = states(log, [0.0, 50.0, 100.0])
    assert sec[0, 0, UNK] == 25.0 and sec[0, 0, P] == 25.0
    assert sec[0, 1, P] == 30.0 and sec[0, 1, UNK] == 20.0  # data ends at 80
    # a unit without any state sample is UNKNOWN throughout
    assert sec[1, :, UNK].tolist() == [50.0, 50.0]
    # every window's states add up to its length
    assert np.allclose(sec.sum(axis=2), 50.0)
    assert fail.sum() == 0


def test_failures_are_entries_into_down_and_invalid_codes_are_unknown():
    log = make_log()
    log.state(0.0, 0, D)  # from UNKNOWN: a failure
    log.state(10.0, 0, D)  # still down: not a new one
    log.state(20.0, 0, P)
    log.state(40.0, 0, 42)  # not a state: a gap
    log.state(60.0, 0, D)
    sec, fail, invalid = states(log, [0.0, 100.0])
    assert fail[0, 0] == 2
    assert invalid[0] == 1
    assert sec[0, 0, D] == 20.0 + 40.0 and sec[0, 0, UNK] == 20.0 and sec[0, 0, P] == 20.0


def test_counter_baseline_reset_and_16_bit_rollover():
    log = make_log()
    produced = Channel.PRODUCED
    for t, v in [(5.0, 65_530.0), (20.0, 65_535.0), (40.0, 4.0), (60.0, 10.0), (70.0, 3.0), (90.0, 7.0)]:
        log.count(t, 0, produced, v)
    delta, resets, rollovers, bad, readings = counters(log, [0.0, 50.0, 100.0], modulus=65_536)
    # 5 (to 65535) + 5 (rollover: 4 + 65536 - 65535) in the first window; 6 + 3 (reset to 3) + 4 in the second
    assert delta[0, produced].tolist() == [10.0, 13.0]
    assert rollovers[produced] == 1 and resets[produced] == 1
    assert readings[produced] == 6 and bad[produced] == 0


def test_counter_decrease_without_modulus_is_a_reset_never_negative():
    log = make_log()
    log.count(0.0, 0, Channel.SCRAP, 100.0)
    log.count(10.0, 0, Channel.SCRAP, 2.0)
    delta, resets, rollovers, _, _ = counters(log, [0.0, 100.0])
    assert delta[0, Channel.SCRAP, 0] == 2.0
    assert resets[Channel.SCRAP] == 1 and rollovers[Channel.SCRAP] == 0


def test_bad_counter_readings_are_skipped_and_counted():
    log = make_log()
    for t, v in [(0.0, 1.0), (10.0, math.nan), (20.0, -5.0), (30.0, math.inf), (40.0, 4.0)]:
        log.count(t, 0, Channel.GOOD, v)
    delta, resets, _, bad, readings = counters(log, [0.0, 100.0])
    assert delta[0, Channel.GOOD, 0] == 3.0
    assert bad[Channel.GOOD] == 3 and readings[Channel.GOOD] == 2 and resets[Channel.GOOD] == 0


def test_discrete_reading_on_the_closing_edge_counts_in_the_last_window():
    log = make_log()
    log.count(0.0, 0, Channel.PRODUCED, 0.0)
    log.count(50.0, 0, Channel.PRODUCED, 5.0)  # on an inner edge: the window it opens
    log.count(100.0, 0, Channel.PRODUCED, 7.0)  # on the closing edge: the last window
    delta, *_ = counters(log, [0.0, 50.0, 100.0])
    assert delta[0, Channel.PRODUCED].tolist() == [0.0, 7.0]


def test_continuous_counter_is_spread_over_the_interval():
    log = make_log()
    log.count(-20.0, 0, Channel.ENERGY_KWH, 10.0)
    log.count(80.0, 0, Channel.ENERGY_KWH, 20.0)  # 10 kWh over 100 s: 0.1 kWh/s
    log.count(80.0, 0, Channel.ENERGY_KWH, 21.0)  # same instant: booked at the reading
    log.count(120.0, 0, Channel.ENERGY_KWH, 25.0)  # 4 kWh over 40 s, half of it after the span
    delta, *_ = counters(log, [0.0, 50.0, 100.0])
    assert delta[0, Channel.ENERGY_KWH, 0] == pytest.approx(5.0, rel=1e-12)
    assert delta[0, Channel.ENERGY_KWH, 1] == pytest.approx(3.0 + 1.0 + 2.0, rel=1e-12)


def test_trapezoid_interpolates_at_window_edges():
    log = make_log()
    log.power(0.0, 0, 0.0)
    log.power(100.0, 0, 36.0)  # a ramp: p(50) = 18 kW
    log.power(150.0, 0, math.nan)  # skipped, counted
    kwh, covered, bad = kernels.trapezoid_energy(log.freeze().power, np.array([0.0, 50.0, 100.0, 200.0]))
    # 0..50 s: mean 9 kW -> 0.125 kWh; 50..100 s: mean 27 kW -> 0.375 kWh; nothing after the last sample
    assert kwh[0].tolist() == pytest.approx([0.125, 0.375, 0.0], rel=1e-12)
    assert covered[0].tolist() == [50.0, 50.0, 0.0]
    assert bad[0] == 1


def test_ideal_time_follows_the_product_mix():
    log = make_log(n_units=2, products=("a", "b"))
    for t, v in [(0.0, 0.0), (10.0, 4.0), (60.0, 10.0), (90.0, 12.0)]:
        log.count(t, 0, Channel.PRODUCED, v)
        log.count(t, 1, Channel.PRODUCED, v)
    log.product(50.0, 0, 1)  # station 0 switches to b at 50
    log.product(80.0, 0, -1)  # and then to an unknown product
    f = log.freeze()
    ideal_cycle_s = np.array([[10.0, 30.0], [10.0, 30.0]])
    default = np.array([0, -1])  # station 1 has no product stream and no default
    ideal, unknown = kernels.ideal_time(f.counters, kernels.product_mix(f.products_stream, default, ideal_cycle_s),
                                        np.array([0.0, 50.0, 100.0]), 0.0)
    assert ideal[0].tolist() == [4 * 10.0, 6 * 30.0]
    assert unknown[0].tolist() == [0.0, 2.0]
    assert ideal[1].tolist() == [0.0, 0.0] and unknown[1].tolist() == [4.0, 8.0]


def test_state_kernel_output_shape():
    log = make_log(n_units=3)
    sec, fail, invalid = states(log, [0.0, 10.0, 20.0, 30.0])
    assert sec.shape == (3, 3, N_STATES) and fail.shape == (3, 3) and invalid.shape == (3,)


def test_rollover_bounds_agree_with_reference():
    from twin.kpi import reference

    log = make_log()
    # drops of exactly M (a rollover: 0 + 100 - 100 = 0), exactly M/2 (a reset) and just above M/2 (a rollover)
    for t, v in [(0.0, 100.0), (10.0, 0.0), (20.0, 60.0), (30.0, 10.0), (40.0, 60.0), (50.0, 9.5)]:
        log.count(t, 0, Channel.PRODUCED, v)
    delta, resets, rollovers, bad, readings = counters(log, [0.0, 100.0], modulus=100)
    assert rollovers[Channel.PRODUCED] == 2 and resets[Channel.PRODUCED] == 1
    assert delta[0, Channel.PRODUCED, 0] == 0.0 + 60.0 + 10.0 + 50.0 + 49.5
    want = reference.counter_deltas(log.count_t, log.count_key, log.count_value, N_CHANNELS, [0.0, 100.0],
                                    [100.0] * N_CHANNELS, CONTINUOUS.tolist())
    assert delta.reshape(N_CHANNELS, 1).tolist() == want[0]
    assert (resets.tolist(), rollovers.tolist()) == (want[1], want[2])


def _ideal(log: EventLog, ideal_cycle_s, default, edges, modulus=0.0):
    f = log.freeze()
    mix = kernels.product_mix(f.products_stream, np.asarray(default, dtype=np.int64),
                              np.asarray(ideal_cycle_s, dtype=np.float64))
    return kernels.ideal_time(f.counters, mix, np.asarray(edges, float), modulus)


@pytest.mark.parametrize("product_first", [False, True])
def test_product_change_at_a_produced_reading_takes_effect_after_it(product_first):
    from twin.kpi import reference

    # product a (10 s) until the machine finishes its last a-part at 40 s and switches to b (30 s) at
    # that same instant; arrival order at the shared timestamp does not matter, only time does
    log = make_log(products=("a", "b"))
    log.product(0.0, 0, 0)
    log.count(0.0, 0, Channel.PRODUCED, 0.0)
    if product_first:
        log.product(40.0, 0, 1)
    log.count(40.0, 0, Channel.PRODUCED, 4.0)  # 4 a-parts: 40 s of ideal time, not 120 s
    if not product_first:
        log.product(40.0, 0, 1)
    log.count(100.0, 0, Channel.PRODUCED, 6.0)  # 2 b-parts: 60 s
    ideal, unknown = _ideal(log, [[10.0, 30.0]], [-1], [0.0, 50.0, 100.0])
    assert ideal[0].tolist() == [40.0, 60.0]
    assert unknown[0].tolist() == [0.0, 0.0]
    r_ideal, r_unknown = reference.ideal_time(log.count_t, log.count_key, log.count_value, log.product_t,
                                              log.product_unit, log.product_code, [-1], [[10.0, 30.0]],
                                              [0.0, 50.0, 100.0], 0.0)
    assert (r_ideal, r_unknown) == ([[40.0, 60.0]], [[0.0, 0.0]])


def test_reading_with_only_a_simultaneous_product_sample_uses_the_default():
    log = make_log(products=("a", "b"))
    log.count(0.0, 0, Channel.PRODUCED, 0.0)
    log.count(20.0, 0, Channel.PRODUCED, 2.0)
    log.product(20.0, 0, 1)  # not in effect yet at the 20 s reading
    log.count(60.0, 0, Channel.PRODUCED, 3.0)
    ideal, unknown = _ideal(log, [[10.0, 30.0]], [0], [0.0, 100.0])
    assert ideal[0, 0] == 2 * 10.0 + 1 * 30.0 and unknown[0, 0] == 0.0
    ideal, unknown = _ideal(log, [[10.0, 30.0]], [-1], [0.0, 100.0])  # no default: unknown product
    assert ideal[0, 0] == 30.0 and unknown[0, 0] == 2.0


def test_kernels_accept_a_zero_length_span():
    log = make_log(t_end=50.0)
    log.state(10.0, 0, D)
    log.state(50.0, 0, P)
    log.count(0.0, 0, Channel.PRODUCED, 0.0)
    log.count(50.0, 0, Channel.PRODUCED, 3.0)
    log.count(0.0, 0, Channel.ENERGY_KWH, 0.0)
    log.count(50.0, 0, Channel.ENERGY_KWH, 3.0)
    log.power(0.0, 0, 1.0)
    log.power(50.0, 0, 1.0)
    sec, fail, _ = states(log, [50.0, 50.0])
    assert sec.shape == (1, 1, N_STATES) and sec.sum() == 0.0 and fail.sum() == 0
    delta, *_ = counters(log, [50.0, 50.0])
    assert delta[0, Channel.ENERGY_KWH, 0] == 0.0  # no time, no continuous flow
    f = log.freeze()
    kwh, covered, _ = kernels.trapezoid_energy(f.power, np.array([50.0, 50.0]))
    assert kwh.sum() == 0.0 and covered.sum() == 0.0
