"""The model's ground-truth log in bounded memory (``FactorySim(retain_s=...)``, the live demo's truth):
its row count stays bounded over a long run, and every figure the demo compares with the twin is the
same as an unbounded model's over any span the bounded one still covers."""

from __future__ import annotations

from pathlib import Path

import pytest

from factory_models import load_factory
from twin.kpi import compute_kpis
from twin.model import FactorySim

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
HOUR = 3600.0
RETAIN_S = 12 * HOUR
RUN_S = 4 * 24 * HOUR
STEP_S = 600.0  # the demo flushes every few simulated seconds; coarser here to keep the test quick
COMPARED = ("apt_s", "produced", "good", "availability", "oee", "energy_kwh")  # live_summary.compare


@pytest.fixture(scope="module")
def runs():
    """A bounded and an unbounded model of the same factory and seed, stepped alike to RUN_S; the
    bounded one's row counts after each step."""
    factory = load_factory(CONFIGS / "demo_smt.yaml")
    bounded = FactorySim(factory, 3, meter_interval_s=10.0, retain_s=RETAIN_S)
    full = FactorySim(factory, 3, meter_interval_s=10.0)
    rows = []
    t = 0.0
    while t < RUN_S:
        t += STEP_S
        bounded.run(t)
        full.run(t)
        rows.append(len(bounded.log))
    return factory, bounded, full, rows


def figures(factory, frozen) -> list[dict]:
    report = compute_kpis(frozen, factory, None)
    return [{"station": s.station, **{k: getattr(s, k) for k in COMPARED}} for s in report.stations]


def test_row_count_stays_bounded(runs):
    _, bounded, full, rows = runs
    per_step = len(full.log) / len(rows)
    kept_at_most = (RETAIN_S * 1.05 + STEP_S) / STEP_S * per_step * 1.5  # some hours run busier
    assert max(rows[len(rows) // 2:]) < kept_at_most
    assert len(full.log) > 4 * max(rows)  # the unbounded log keeps growing: the bound is real
    assert bounded.retained_from >= bounded.now_epoch - RETAIN_S * 1.05


def test_figures_equal_the_unbounded_models(runs):
    factory, bounded, full, _ = runs
    t1 = bounded.now_epoch
    assert t1 == full.now_epoch
    for t0 in (bounded.retained_from, bounded.retained_from + 5 * HOUR + 17.0, t1 - HOUR):
        want = full.log.freeze()
        want.t_start, want.t_end = t0, t1
        got = figures(factory, bounded.truth(t0, t1))
        assert got == figures(factory, want)
        assert sum(s["produced"] for s in got) > 0  # a span with work in it, not two empty reports


def test_truth_refuses_a_span_it_no_longer_holds(runs):
    _, bounded, _, _ = runs
    with pytest.raises(ValueError, match="kept from"):
        bounded.truth(bounded.retained_from - 1.0)


def test_unbounded_model_keeps_everything():
    factory = load_factory(CONFIGS / "demo_smt.yaml")
    sim = FactorySim(factory, 0)
    sim.run(2 * 24 * HOUR)
    assert sim.retained_from == sim.t0
    assert not sim.log.incremental
    with pytest.raises(ValueError, match="retain_s"):
        sim.forget_before(sim.now_epoch - HOUR)
    with pytest.raises(ValueError, match="retain_s"):
        FactorySim(factory, 0, retain_s=0.0)
