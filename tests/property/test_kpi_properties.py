"""Property tests: the Numba kernels agree with the plain-Python reference on random event logs.

The logs are built to hit the edge cases: repeated timestamps, samples before the first window and
after the last (and after the end of data), invalid state codes, NaN / negative / infinite
readings, resets and rollovers, unknown products, and units without any sample.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factory_models.states import N_STATES, State
from twin.kpi import kernels, reference
from twin.kpi.eventlog import CONTINUOUS, N_CHANNELS, Channel, EventLog

RTOL = 1e-9
MODULUS = 100.0
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# quarter seconds on [-20, 120], often on a 10 s grid so that timestamps repeat and hit window edges
times = st.one_of(st.integers(-2, 12).map(lambda q: q * 10.0), st.integers(-80, 480).map(lambda q: q / 4.0))
counter_values = st.one_of(
    st.integers(0, 4).map(lambda q: q * MODULUS / 4),  # drops of exactly M/2 and M
    st.integers(0, 100).map(float),
    st.sampled_from([math.nan, -1.0, math.inf, 99.5]),
)
power_values = st.one_of(st.floats(-50, 500, allow_nan=False), st.sampled_from([math.nan, math.inf, 0.0]))


@st.composite
def windows(draw):
    """Strictly increasing edges inside [-10, 110] (data runs from -20 to 120)."""
    cuts = draw(st.lists(st.one_of(st.integers(-1, 11).map(lambda q: q * 40), st.integers(-40, 440)),
                         min_size=2, max_size=7, unique=True))
    return np.array(sorted(cuts), dtype=np.float64) / 4.0


@st.composite
def event_logs(draw):
    n_units = draw(st.integers(1, 3))
    n_products = draw(st.integers(1, 3))
    t_end = draw(times)
    log = EventLog(units=[f"l/u{i}" for i in range(n_units)], n_stations=n_units,
                   products=[f"p{i}" for i in range(n_products)], t_start=-20.0, t_end=t_end)
    unit = st.integers(0, n_units - 1)
    codes = st.one_of(st.just(int(State.DOWN)), st.integers(-1, N_STATES + 1))  # DOWN often: failures
    for t, u, c in draw(st.lists(st.tuples(times, unit, codes), max_size=40)):
        log.state(t, u, c)
    # PRODUCED (discrete) and ENERGY_KWH (continuous) often, so that keys see many consecutive readings
    channels = st.one_of(st.sampled_from([int(Channel.PRODUCED), int(Channel.ENERGY_KWH)]),
                         st.integers(0, N_CHANNELS - 1))
    for t, u, ch, v in draw(st.lists(st.tuples(times, unit, channels, counter_values), max_size=60)):
        log.count(t, u, ch, v)
    for t, u, p in draw(st.lists(st.tuples(times, unit, power_values), max_size=40)):
        log.power(t, u, p)
    for t, u, c in draw(st.lists(st.tuples(times, unit, st.integers(-1, n_products)), max_size=20)):
        log.product(t, u, c)
    return log


def close(kernel_out, reference_out):
    a = np.asarray(kernel_out, dtype=np.float64)
    b = np.asarray(reference_out, dtype=np.float64)
    assert a.shape == b.shape
    scale = max(1.0, float(np.abs(b).max())) if b.size else 1.0
    np.testing.assert_allclose(a, b, rtol=RTOL, atol=RTOL * scale)


@SETTINGS
@given(event_logs(), windows())
def test_state_durations_match_reference(log, edges):
    f = log.freeze()
    sec, fail, invalid = kernels.state_durations(f.states, edges, f.t_end)
    r_sec, r_fail, r_invalid = reference.state_durations(log.state_t, log.state_unit, log.state_code, log.n_units,
                                                         edges.tolist(), log.t_end)
    close(sec, r_sec)
    assert fail.tolist() == r_fail
    assert invalid.tolist() == r_invalid
    # a unit is in exactly one state at every instant: each window's states add up to its length
    close(sec.sum(axis=2), np.broadcast_to(np.diff(edges), sec.shape[:2]))


@st.composite
def spell_logs(draw):
    """State logs rich in DOWN spells broken by planned stops, shift ends and gaps, whose DOWN time
    often lands exactly on the micro-stop thresholds drawn below (10 s steps)."""
    log = draw(event_logs())
    n = log.n_units
    interlude = st.sampled_from([int(State.DOWN), int(State.PLANNED_STOP), int(State.NO_SHIFT), int(State.UNKNOWN),
                                 int(State.PRODUCING), int(State.IDLE), -3, N_STATES])
    for t, u, c in draw(st.lists(st.tuples(times, st.integers(0, n - 1), interlude), max_size=30)):
        log.state(t, u, c)
    return log


@SETTINGS
@given(spell_logs(), windows(), st.sampled_from([0.0, 10.0, 20.0, 35.5, 1e9]))
def test_failure_spells_match_reference(log, edges, micro_stop_s):
    f = log.freeze()
    fail, repair, micro = kernels.failure_spells(f.states, edges, f.t_end, micro_stop_s)
    r_fail, r_repair, r_micro = reference.failure_spells(log.state_t, log.state_unit, log.state_code, log.n_units,
                                                         edges.tolist(), log.t_end, micro_stop_s)
    assert fail.tolist() == r_fail
    assert micro.tolist() == r_micro
    close(repair, r_repair)
    # every failure lasted at least the threshold; a spell is a failure or a micro-stop, never both
    assert (repair >= fail * micro_stop_s).all()
    spells = kernels.failure_spells(f.states, edges, f.t_end, 0.0)[0]  # threshold 0: every spell fails
    assert (fail + micro == spells).all()
    # a spell begins with an entry into DOWN: never more spells than entries into DOWN
    _, entries, _ = kernels.state_durations(f.states, edges, f.t_end)
    assert (fail + micro <= entries).all()


@SETTINGS
@given(event_logs(), windows(), st.sampled_from([0.0, MODULUS]))
def test_counter_deltas_match_reference(log, edges, modulus):
    f = log.freeze()
    mod = np.full(N_CHANNELS, modulus)
    got = kernels.counter_deltas(f.counters, edges, mod, CONTINUOUS)
    want = reference.counter_deltas(log.count_t, log.count_key, log.count_value, log.n_units * N_CHANNELS,
                                    edges.tolist(), mod.tolist(), CONTINUOUS.tolist())
    close(got[0], want[0])
    for g, w in zip(got[1:], want[1:]):
        assert g.tolist() == w
    assert (got[0] >= 0).all()  # never negative production


@SETTINGS
@given(event_logs(), windows())
def test_trapezoid_energy_matches_reference(log, edges):
    f = log.freeze()
    kwh, covered, bad = kernels.trapezoid_energy(f.power, edges)
    r_kwh, r_covered, r_bad = reference.trapezoid_energy(log.power_t, log.power_unit, log.power_kw, log.n_units,
                                                         edges.tolist())
    close(kwh, r_kwh)
    close(covered, r_covered)
    assert bad.tolist() == r_bad


@SETTINGS
@given(event_logs(), windows(), st.sampled_from([0.0, MODULUS]), st.data())
def test_ideal_time_matches_reference(log, edges, modulus, data):
    f = log.freeze()
    n_products = len(log.products)
    ideal_cycle_s = np.array(data.draw(st.lists(st.lists(st.floats(0.5, 120), min_size=n_products,
                                                         max_size=n_products),
                                                min_size=log.n_stations, max_size=log.n_stations)))
    default = np.array(data.draw(st.lists(st.integers(-1, n_products - 1), min_size=log.n_stations,
                                          max_size=log.n_stations)), dtype=np.int64)
    ideal, unknown = kernels.ideal_time(f.counters, kernels.product_mix(f.products_stream, default, ideal_cycle_s),
                                        edges, modulus)
    r_ideal, r_unknown = reference.ideal_time(log.count_t, log.count_key, log.count_value, log.product_t,
                                              log.product_unit, log.product_code, default.tolist(),
                                              ideal_cycle_s.tolist(), edges.tolist(), modulus)
    close(ideal, r_ideal)
    close(unknown, r_unknown)


@SETTINGS
@given(event_logs(), windows(), st.sampled_from([0.0, MODULUS]), st.data())
def test_ideal_time_with_product_changes_at_reading_times_matches_reference(log, edges, modulus, data):
    """Product samples at exactly the PRODUCED readings' timestamps: they take effect after the reading."""
    n_products = len(log.products)
    produced = [(t, k // N_CHANNELS) for t, k in zip(log.count_t, log.count_key) if k % N_CHANNELS == Channel.PRODUCED]
    if produced:
        for t, u in data.draw(st.lists(st.sampled_from(produced), max_size=10)):
            log.product(t, u, data.draw(st.integers(-1, n_products)))
    f = log.freeze()
    ideal_cycle_s = np.arange(1.0, 1.0 + log.n_stations * n_products).reshape(log.n_stations, n_products)
    default = np.array(data.draw(st.lists(st.integers(-1, n_products - 1), min_size=log.n_stations,
                                          max_size=log.n_stations)), dtype=np.int64)
    ideal, unknown = kernels.ideal_time(f.counters, kernels.product_mix(f.products_stream, default, ideal_cycle_s),
                                        edges, modulus)
    r_ideal, r_unknown = reference.ideal_time(log.count_t, log.count_key, log.count_value, log.product_t,
                                              log.product_unit, log.product_code, default.tolist(),
                                              ideal_cycle_s.tolist(), edges.tolist(), modulus)
    close(ideal, r_ideal)
    close(unknown, r_unknown)


@SETTINGS
@given(spell_logs(), windows(), st.sampled_from([0.0, MODULUS]), st.data())
def test_gap_parts_match_reference(log, edges, modulus, data):
    n_products = len(log.products)
    f = log.freeze()
    ideal_cycle_s = np.arange(1.0, 1.0 + log.n_stations * n_products).reshape(log.n_stations, n_products)
    default = np.array(data.draw(st.lists(st.integers(-1, n_products - 1), min_size=log.n_stations,
                                          max_size=log.n_stations)), dtype=np.int64)
    mix = kernels.product_mix(f.products_stream, default, ideal_cycle_s)
    in_gap, ideal_gap, apt_gap = kernels.gap_parts(f.counters, f.states, mix, edges, f.t_end, modulus)
    want = reference.gap_parts(log.count_t, log.count_key, log.count_value, log.state_t, log.state_unit,
                               log.state_code, log.product_t, log.product_unit, log.product_code, default.tolist(),
                               ideal_cycle_s.tolist(), edges.tolist(), f.t_end, modulus)
    close(in_gap, want[0])
    close(ideal_gap, want[1])
    close(apt_gap, want[2])
    # what is set aside is part of what was counted: never more parts, ideal time or APT than in total
    ideal, _ = kernels.ideal_time(f.counters, mix, edges, modulus)
    delta = kernels.counter_deltas(f.counters, edges, np.full(N_CHANNELS, modulus), CONTINUOUS)[0]
    produced = delta.reshape(log.n_units, N_CHANNELS, -1)[:, Channel.PRODUCED]
    sec = kernels.state_durations(f.states, edges, f.t_end)[0]
    tol = 1e-9 * max(1.0, float(np.abs(produced).max(initial=0)), float(np.abs(ideal).max(initial=0)))
    assert (in_gap <= produced[:log.n_stations] + tol).all()
    assert (ideal_gap <= ideal + tol).all()
    assert (apt_gap <= sec[:log.n_stations, :, State.PRODUCING] + 1e-9).all()
