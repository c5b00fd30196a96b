"""One experiment replication (twin.experiment.replication): figures worked by hand on a line with
deterministic times, the warm-up left out, the bottleneck rule, determinism and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from factory_models import ConfigError
from twin.experiment.replication import bottleneck_of, run_replication

ROOT = Path(__file__).resolve().parents[2]
POWER = {"producing": 2, "setup": 1, "down": 1, "idle": 1, "planned_stop": 1, "no_shift": 0}
#: the default carbon config of a CN site without grid region: the national grid factor, kg CO2/kWh
CN_NATIONAL = 0.5306


def two_stations() -> dict:
    """a (30 s) feeds b (60 s) through 2 buffer places; no failures, no scrap, around the clock."""
    return {"site": {"name": "one"}, "products": [{"name": "p"}],
            "lines": [{"name": "l", "stations": [
                {"name": "a", "cycle_time_s": {"p": 30}, "power_kw": POWER, "buffer_after": 2},
                {"name": "b", "cycle_time_s": {"p": 60}, "power_kw": POWER}]}]}


def test_deterministic_line_after_warm_up_matches_hand_figures():
    r = run_replication(two_stations(), hours=2, warmup_hours=1, seed=5)
    # after the hour of warm-up the buffer is full: b produces all the time, one part a minute;
    # a works 30 s of each minute and waits (blocked) the other 30 s
    assert r["time"] == {"pot_s": 2 * 7200.0, "pbt_s": 2 * 7200.0, "apt_s": 7200.0 + 3600.0, "asut_s": 0.0,
                         "adet_s": 0.0, "adot_s": 3600.0, "unknown_s": 0.0}
    assert (r["produced"], r["good"], r["scrap"], r["failures"]) == (120.0, 120.0, 0.0, 0)
    assert r["throughput_per_h"] == 60.0
    assert r["availability"] == pytest.approx(10800 / 14400)
    # ideal time: 120 parts x 60 s at b + 120 x 30 s at a, over APT 10,800 s
    assert r["performance"] == pytest.approx((120 * 60 + 120 * 30) / 10800)
    assert r["quality"] == 1.0 and r["oee"] == pytest.approx(0.75)
    # energy: b 2 kW x 2 h; a 2 kW x 1 h producing + 1 kW x 1 h blocked = 7 kWh, 3.5 in each hour
    assert r["energy_kwh"] == pytest.approx(7.0)
    assert r["hourly_kwh"] == pytest.approx([3.5, 3.5])
    assert r["kwh_per_good"] == pytest.approx(7.0 / 120)
    # no grid meter: the station sum stands in for the import, at the national factor; no fuel
    assert r["scope2_location_co2e_kg"] == pytest.approx(7.0 * CN_NATIONAL)
    assert r["scope1_co2e_kg"] == 0.0
    assert r["co2e_kg_per_good"] == pytest.approx(7.0 * CN_NATIONAL / 120)
    assert r["active_share"] == {"l/a": pytest.approx(0.5), "l/b": pytest.approx(1.0)}
    assert r["bottleneck"] == "l/b"
    assert (r["seed"], r["hours"], r["warmup_hours"]) == (5, 2.0, 1.0)


def test_warm_up_is_left_out():
    # without warm-up the first part leaves b at 90 s and then one a minute: 179 by 3 h (10,800 s),
    # of which the 59 finished by 3,600 s belong to a one-hour warm-up: 120 are left
    cold = run_replication(two_stations(), hours=3, warmup_hours=0, seed=5)
    warm = run_replication(two_stations(), hours=2, warmup_hours=1, seed=5)
    assert cold["good"] == 179.0 and warm["good"] == 120.0
    # while the buffer fills, a produces without waiting: more than half of its time is active
    assert cold["active_share"]["l/a"] > 0.5
    assert len(cold["hourly_kwh"]) == 3 and len(warm["hourly_kwh"]) == 2


def test_same_seed_same_numbers_other_seed_other_numbers():
    doc = yaml.safe_load((ROOT / "configs/demo_smt.yaml").read_text())
    a = run_replication(doc, 6, 9, 3)
    b = run_replication(yaml.safe_load((ROOT / "configs/demo_smt.yaml").read_text()), 6, 9, 3)
    c = run_replication(doc, 6, 9, 4)  # 09:00-15:00 on a Monday: on shift
    assert a == b and json.dumps(a) == json.dumps(b)
    assert a["good"] != c["good"] or a["energy_kwh"] != c["energy_kwh"]
    json.dumps(a)  # plain numbers only: it serialises
    assert len(json.dumps(a)) < 4000  # small: no event log
    assert a["bottleneck"] in a["active_share"]
    assert sum(a["hourly_kwh"]) == pytest.approx(a["energy_kwh"], rel=1e-9)
    assert a["co2e_kg_per_good"] == pytest.approx((a["scope1_co2e_kg"] + a["scope2_location_co2e_kg"]) / a["good"])


def test_bottleneck_rule_ties_and_undefined_shares():
    assert bottleneck_of({"l/a": 0.5, "l/b": 0.5}) == "l/a"  # a tie: the first declared
    assert bottleneck_of({"l/a": 0.5, "l/b": 0.5 + 1e-9}) == "l/b"
    assert bottleneck_of({"l/a": None, "l/b": 0.1}) == "l/b"
    assert bottleneck_of({"l/a": None}) is None


def test_bad_model_names_the_field():
    doc = two_stations()
    doc["lines"][0]["stations"][1]["cycle_time_s"] = {"p": -5}
    with pytest.raises(ConfigError, match=r"lines\[0\]\.stations\[1\]\.cycle_time_s"):
        run_replication(doc, 1, 0, 1)


@pytest.mark.parametrize("hours, warmup, seed, word", [(0, 0, 1, "hours"), (1, -1, 1, "warmup_hours"),
                                                        (1, 0, 1.5, "seed"), (float("nan"), 0, 1, "hours")])
def test_bad_arguments(hours, warmup, seed, word):
    with pytest.raises(ValueError, match=word):
        run_replication(two_stations(), hours, warmup, seed)
