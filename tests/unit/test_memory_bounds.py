"""What a long live run keeps in memory is bounded: the router's duplicate memory (constant time per
sample, too), the twin's latency figures; and the soak bench's arithmetic."""

from __future__ import annotations

import os
from pathlib import Path

from bench.soak import rss_mb, slope_per_min
from factory_models import Sample, load_factory
from twin.shadow.live_twin import LiveTwin
from twin.shadow.router import SampleRouter, new_log

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def energy_signal(factory) -> str:
    line, _, name = factory.station_units()[0]
    return f"{line.name}/{name}/energy_kwh"


def test_router_remembers_recent_samples_within_a_bound():
    factory = load_factory(CONFIGS / "demo_smt.yaml")
    router = SampleRouter(factory, new_log(factory, 0.0, 1.0), seen_limit=1000)
    sig = energy_signal(factory)
    for i in range(10_000):
        assert router.add(Sample(sig, float(i), 1.7e9 + i))
        assert len(router._seen) + len(router._seen_old) <= 2 * 1000
    # the latest seen_limit samples are always recognised when they come again
    for i in range(10_000 - 1000, 10_000):
        assert not router.add(Sample(sig, float(i), 1.7e9 + i))
    assert router.counts()["rejected_by_reason"] == {"duplicate": 1000}
    assert router.used == 10_000
    # by default a minute or two of a fast demo (~1000 samples/s), not 1e6 keys (~130 MB)
    assert SampleRouter(factory, new_log(factory, 0.0, 1.0))._seen_limit <= 50_000


def test_live_twin_latency_is_bounded():
    factory = load_factory(CONFIGS / "demo_smt.yaml")
    twin = LiveTwin(factory, clock=lambda: 1.7e9)
    assert twin.latency_s.maxlen is not None and twin.latency_s.maxlen <= 100_000


def test_soak_slope_and_rss():
    series = [(t, 250.0 + 0.5 * t / 60.0 + (3.0 if t < 120 else 0.0)) for t in range(0, 600, 5)]
    assert abs(slope_per_min(series, 120.0) - 0.5) < 1e-9  # the warm-up jump is left out
    assert slope_per_min(series[:2], 0.0) is None  # too few points for a slope
    assert rss_mb(os.getpid()) > 1.0
    assert rss_mb(2 ** 22 + 12345) is None  # beyond pid_max: no such process
