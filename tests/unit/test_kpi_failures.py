"""Failures for MTBF and MTTR (issue 11, item 8): micro-stops stay in ADET but are no failure, and a
repair that a planned stop, a shift end or a gap interrupts is one failure. Figures worked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from factory_models.schema import Factory
from factory_models.states import State
from twin.kpi import compute_kpis, kernels, reference
from twin.kpi.eventlog import EventLog

P, D, PS, NS, UNK, ST = State.PRODUCING, State.DOWN, State.PLANNED_STOP, State.NO_SHIFT, State.UNKNOWN, State.STARVED
T0 = 1_772_431_200.0  # 2026-03-02T06:00:00Z


def factory(micro_stop_s: float | None = None) -> Factory:
    site = {"name": "s"} if micro_stop_s is None else {"name": "s", "micro_stop_s": micro_stop_s}
    return Factory.model_validate({
        "site": site, "products": [{"name": "p"}],
        "lines": [{"name": "l", "stations": [{"name": "m", "cycle_time_s": {"p": 30}, "power_kw": {
            "producing": 1, "setup": 1, "down": 1, "idle": 1, "planned_stop": 1, "no_shift": 0}}]}]})


def log_of(f: Factory, seq, span_s: float) -> EventLog:
    log = EventLog(units=f.unit_names(), n_stations=1, products=f.product_names(), t_start=T0, t_end=T0 + span_s)
    for t, s in seq:
        log.state(T0 + t, 0, int(s))
    return log


def both(log: EventLog, edges, micro_stop_s):
    """The kernel's answer, checked against the reference's on the same log."""
    f = log.freeze()
    got = kernels.failure_spells(f.states, np.asarray(edges, float), f.t_end, micro_stop_s)
    want = reference.failure_spells(log.state_t, log.state_unit, log.state_code, log.n_units, list(edges), log.t_end,
                                    micro_stop_s)
    assert [g.tolist() for g in got] == [list(w) for w in want]
    return got


# DOWN 60 s (a micro-stop), DOWN exactly 120 s (a failure: not shorter than the threshold), DOWN 119.5 s
# (a micro-stop), DOWN 900 s (a failure); PRODUCING in between; data ends at 3,600 s.
SHORT_AND_LONG = [(0, P), (100, D), (160, P), (400, D), (520, P), (1000, D), (1119.5, P), (2000, D), (2900, P)]


def test_micro_stops_stay_in_adet_but_are_no_failures():
    f = factory()  # micro_stop_s defaults to 120
    assert f.site.micro_stop_s == 120.0
    st = compute_kpis(log_of(f, SHORT_AND_LONG, 3600.0), f).stations[0]
    # ADET = 60 + 120 + 119.5 + 900 = 1,199.5 s: every DOWN second, micro-stops included
    assert st.adet_s == pytest.approx(1199.5)
    # failures: the 120 s and the 900 s spells; MTTR = (120 + 900) / 2 = 510 s, not 1,199.5 / 4
    assert st.failures == 2
    assert st.mttr_s == pytest.approx(510.0)
    # MTBF = AUPT / failures: APT = 3,600 - 1,199.5 = 2,400.5 s, / 2 = 1,200.25 s
    assert st.mtbf_s == pytest.approx(1200.25)


def test_threshold_is_a_site_setting():
    f = factory(micro_stop_s=0)  # every spell is a failure again: 4 of them, MTTR = 1,199.5 / 4
    st = compute_kpis(log_of(f, SHORT_AND_LONG, 3600.0), f).stations[0]
    assert (st.failures, st.mttr_s) == (4, pytest.approx(299.875))
    f = factory(micro_stop_s=1000)  # the longest spell, 900 s, is shorter than 1,000: no failure left
    st = compute_kpis(log_of(f, SHORT_AND_LONG, 3600.0), f).stations[0]
    assert (st.failures, st.mttr_s, st.mtbf_s, st.adet_s) == (0, None, None, pytest.approx(1199.5))


def test_micro_stops_are_counted_in_the_diagnostics():
    f = factory()
    report = compute_kpis(log_of(f, SHORT_AND_LONG, 3600.0), f)
    assert report.diagnostics["micro_stops"] == {"l/m": 2}
    assert report.diagnostics["micro_stop_s"] == 120.0


def test_a_repair_split_by_a_break_counts_once():
    # DOWN 600 s, a 1,800 s break (PLANNED_STOP), DOWN again 300 s: one failure, repair 900 s;
    # then a DOWN of 100 s, the shift ends (NO_SHIFT) and the next shift starts DOWN for 50 s: one
    # spell of 150 s, more than 120: a second failure; the break and the night are not repair time
    seq = [(0, P), (1000, D), (1600, PS), (3400, D), (3700, P), (5000, D), (5100, NS), (9000, D), (9050, P)]
    f = factory()
    st = compute_kpis(log_of(f, seq, 10_000.0), f).stations[0]
    assert st.failures == 2
    assert st.mttr_s == pytest.approx((900 + 150) / 2)
    assert st.adet_s == pytest.approx(600 + 300 + 100 + 50)
    # before the fix: four entries into DOWN, MTTR = 1,050 / 4
    _, stops, _ = kernels.state_durations(log_of(f, seq, 10_000.0).freeze().states, np.array([T0, T0 + 10_000]),
                                          T0 + 10_000)
    assert stops.sum() == 4


def test_a_gap_does_not_end_a_spell_but_another_state_does():
    # DOWN 50 s, connection lost 600 s (UNKNOWN), DOWN 100 s: one spell of 150 s (a failure), the gap
    # not counted as repair; then DOWN 50 s, STARVED, DOWN 50 s: two micro-stops
    seq = [(0, D), (50, UNK), (650, D), (750, P), (1000, D), (1050, ST), (1100, D), (1150, P)]
    f = factory()
    fail, repair, micro = both(log_of(f, seq, 2000.0), [T0, T0 + 2000.0], 120.0)
    assert (fail.tolist(), repair.tolist(), micro.tolist()) == ([[1]], [[150.0]], [[2]])


def test_failure_and_its_whole_repair_go_to_the_window_where_it_began():
    # windows of 1,000 s; a DOWN from 900 to 1,300 (400 s) begins in the first; one from 1,990 to 2,050
    # (60 s) is a micro-stop of the second; a DOWN from 2,900 still open at the end of the data
    # (3,100) has 200 s so far: a failure of the third window
    seq = [(0, P), (900, D), (1300, P), (1990, D), (2050, P), (2900, D)]
    f = factory()
    edges = [T0, T0 + 1000, T0 + 2000, T0 + 3000, T0 + 4000]
    fail, repair, micro = both(log_of(f, seq, 3100.0), edges, 120.0)
    assert fail.tolist() == [[1, 0, 1, 0]]
    assert repair.tolist() == [[400.0, 0.0, 200.0, 0.0]]
    assert micro.tolist() == [[0, 1, 0, 0]]
    # per window through compute_kpis: MTTR 400 s in the first window although only 100 s of it are there
    report = compute_kpis(log_of(f, seq, 3100.0), f, edges=np.array(edges))
    first = report.windows[0]
    assert (first.failures, first.adet_s, first.mttr_s) == (1, pytest.approx(100.0), pytest.approx(400.0))


def test_down_at_or_after_the_end_of_data_is_no_failure():
    f = factory()
    fail, repair, micro = both(log_of(f, [(0, P), (500, D), (700, D)], 500.0), [T0, T0 + 1000], 0.0)
    assert (fail.sum(), micro.sum(), repair.sum()) == (0, 0, 0.0)


def test_negative_threshold_is_refused():
    f = factory()
    with pytest.raises(ValueError, match="micro_stop_s must be a number >= 0"):
        kernels.failure_spells(log_of(f, [], 10.0).freeze().states, np.array([T0, T0 + 10]), T0 + 10, -1.0)
    with pytest.raises(ValueError, match="micro_stop_s"):
        factory(micro_stop_s=-5)
