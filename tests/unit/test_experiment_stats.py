"""The experiment's statistics on plain replication dicts: the t quantile against published table
values, an interval of five numbers worked by hand, paired differences and their verdicts, and the
bottleneck's share."""

from __future__ import annotations

import math

import pytest

from twin.experiment import stats

# Two-sided critical values of Student's t as printed in the usual tables (three decimals), e.g.
# NIST/SEMATECH e-Handbook of Statistical Methods, section 1.3.6.7.2 (upper critical values: the
# 0.975 and 0.995 columns are the two-sided 95 % and 99 % multipliers).
TABLE_95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
            10: 2.228, 15: 2.131, 19: 2.093, 20: 2.086, 29: 2.045, 30: 2.042, 40: 2.021, 60: 2.000, 100: 1.984}
TABLE_99 = {1: 63.657, 2: 9.925, 4: 4.604, 9: 3.250, 19: 2.861, 30: 2.750, 100: 2.626}


@pytest.mark.parametrize("df,value", sorted(TABLE_95.items()))
def test_t_quantile_95_matches_the_table(df, value):
    assert stats.t_quantile(0.95, df) == pytest.approx(value, abs=5e-4)


@pytest.mark.parametrize("df,value", sorted(TABLE_99.items()))
def test_t_quantile_99_matches_the_table(df, value):
    assert stats.t_quantile(0.99, df) == pytest.approx(value, abs=5e-4)


def test_t_closed_forms_for_one_and_two_degrees_of_freedom():
    # df 1 is the Cauchy distribution: P(|T| <= t) = 2 atan(t) / pi, so t = tan(0.95 pi / 2)
    assert stats.t_quantile(0.95, 1) == pytest.approx(math.tan(0.95 * math.pi / 2), rel=1e-12)
    # df 2: P(|T| <= t) = t / sqrt(t^2 + 2), so t = sqrt(2 p^2 / (1 - p^2))
    assert stats.t_quantile(0.95, 2) == pytest.approx(math.sqrt(2 * 0.95**2 / (1 - 0.95**2)), rel=1e-12)


def test_t_tends_to_the_normal_quantile():
    # for many degrees of freedom t ~ z + (z^3 + z) / (4 df), z = 1.959964 the normal 97.5 % point
    z, df = 1.959964, 100_000
    assert stats.t_quantile(0.95, df) == pytest.approx(z + (z**3 + z) / (4 * df), abs=1e-6)


def test_t_rejects_nonsense():
    with pytest.raises(ValueError):
        stats.t_quantile(1.0, 4)
    with pytest.raises(ValueError):
        stats.t_two_sided_probability(1.0, 0)


def test_interval_of_five_numbers_worked_by_hand():
    # 10, 12, 9, 11, 13: mean 55 / 5 = 11; squared deviations 1 + 1 + 4 + 0 + 4 = 10; s^2 = 10 / 4 = 2.5,
    # s = 1.58114; standard error s / sqrt(5) = 0.707107; t(95 %, 4 df) = 2.77645 -> half-width 1.96324
    s = stats.summarize([10, 12, 9, 11, 13])
    assert s["mean"] == 11.0
    assert s["std"] == pytest.approx(math.sqrt(2.5), rel=1e-12)
    assert s["ci95_low"] == pytest.approx(11 - 1.96324, abs=1e-5)
    assert s["ci95_high"] == pytest.approx(11 + 1.96324, abs=1e-5)
    assert s["n"] == 5


def test_missing_values_are_counted_not_guessed():
    # kWh per good is None in a replication without good output: left out, n says so
    s = stats.summarize([2.0, None, 4.0, float("nan")])
    assert (s["mean"], s["n"]) == (3.0, 2)
    one = stats.summarize([5.0])
    assert one["mean"] == 5.0 and one["std"] is None and one["ci95_low"] is None
    assert stats.summarize([None])["n"] == 0


def test_paired_difference_worked_by_hand():
    # base 100, 110, 90, 105, 95 and scenario 103, 112, 94, 106, 100 (same seeds): differences 3, 2, 4, 1, 5
    # mean 3; squared deviations 0 + 1 + 1 + 4 + 4 = 10 -> s = sqrt(2.5); half-width 2.77645 * 0.707107 = 1.96324
    base = [100, 110, 90, 105, 95]
    scen = [103, 112, 94, 106, 100]
    up = stats.paired(scen, base, +1)
    assert up["diff_mean"] == pytest.approx(3.0)
    assert up["ci95_low"] == pytest.approx(3 - 1.96324, abs=1e-5)
    assert up["ci95_high"] == pytest.approx(3 + 1.96324, abs=1e-5)
    assert up["verdict"] == "better"  # higher is better (throughput) and the interval excludes 0
    assert stats.paired(scen, base, -1)["verdict"] == "worse"  # lower is better (kWh per good)
    # unpaired, the two samples' intervals overlap (base 100 +- 9.8): pairing is what makes it significant
    assert stats.summarize(base)["ci95_high"] > stats.summarize(scen)["ci95_low"]


def test_no_significant_difference_when_the_interval_holds_zero():
    d = stats.paired([1.0, 3.0, 2.0], [2.0, 2.0, 2.0], +1)  # differences -1, 1, 0
    assert d["diff_mean"] == 0.0 and d["ci95_low"] < 0 < d["ci95_high"]
    assert d["verdict"] == "no significant difference"
    same = stats.paired([4.0, 5.0], [4.0, 5.0], -1)  # identical: an interval of width 0 at 0
    assert same["verdict"] == "no significant difference"


def test_paired_needs_the_same_replications():
    with pytest.raises(ValueError):
        stats.paired([1.0, 2.0], [1.0], +1)


def test_bottleneck_is_the_station_named_most_often_with_its_share():
    b = stats.bottleneck(["placer-chip", "ict", "placer-chip", "placer-chip", "ict"])
    assert b == {"station": "placer-chip", "share": 0.6, "counts": {"ict": 2, "placer-chip": 3}}
    assert stats.bottleneck(["b", "a"])["station"] == "a"  # a tie: the first name, whatever the order


def test_scenario_statistics_direction_per_kpi():
    base = [{"throughput_per_h": 10.0 + i, "kwh_per_good": 2.0 + i, "bottleneck": "x"} for i in range(4)]
    # one more unit per hour and 0.1 kWh less per good in every paired replication
    scen = [{"throughput_per_h": 11.0 + i, "kwh_per_good": 1.9 + i, "bottleneck": "y"} for i in range(4)]
    out = stats.scenario_statistics(scen, base)
    assert out["vs_base"]["throughput_per_h"]["diff_mean"] == pytest.approx(1.0)
    assert out["vs_base"]["throughput_per_h"]["verdict"] == "better"
    assert out["vs_base"]["kwh_per_good"]["diff_mean"] == pytest.approx(-0.1)
    assert out["vs_base"]["kwh_per_good"]["verdict"] == "better"
    assert out["kpis"]["bottleneck"]["station"] == "y"
    assert out["kpis"]["oee"]["n"] == 0  # not in these dicts: reported as absent, not as 0
    assert stats.scenario_statistics(base, None)["vs_base"] == {}


def test_halfwidth_shrinks_with_more_replications():
    few = stats.halfwidth([1.0, 3.0, 2.0, 4.0])
    many = stats.halfwidth([1.0, 3.0, 2.0, 4.0] * 4)
    assert many < few
    assert stats.halfwidth([1.0]) is None


def test_tradeoff_energy_saved_against_good_lost_worked_by_hand():
    base = [{"energy_kwh": 100.0, "good": 50, "scope1_co2e_kg": 5.0, "scope2_location_co2e_kg": 50.0},
            {"energy_kwh": 110.0, "good": 52, "scope1_co2e_kg": 5.0, "scope2_location_co2e_kg": 55.0},
            {"energy_kwh": 90.0, "good": 48, "scope1_co2e_kg": 5.0, "scope2_location_co2e_kg": 45.0}]
    scen = [{"energy_kwh": 90.0, "good": 49, "scope1_co2e_kg": 5.0, "scope2_location_co2e_kg": 45.0},
            {"energy_kwh": 101.0, "good": 52, "scope1_co2e_kg": 5.0, "scope2_location_co2e_kg": 50.5},
            {"energy_kwh": 82.0, "good": 46, "scope1_co2e_kg": 5.0, "scope2_location_co2e_kg": 41.0}]
    t = stats.scenario_statistics(scen, base)["tradeoff"]
    # energy saved 10, 9, 8: mean 9, s = 1, half-width t(95 %, 2 df) 4.30265 x 1 / sqrt(3) = 2.48414
    assert t["energy_saved_kwh"]["mean"] == pytest.approx(9.0)
    assert t["energy_saved_kwh"]["ci95_low"] == pytest.approx(9 - 2.48414, abs=1e-5)
    assert t["energy_saved_kwh"]["significant"] is True
    # CO2e saved 5, 4.5, 4 (Scope 1 unchanged): mean 4.5, s = 0.5, half-width 1.24207
    assert t["co2e_saved_kg"]["mean"] == pytest.approx(4.5)
    assert t["co2e_saved_kg"]["ci95_high"] == pytest.approx(4.5 + 1.24207, abs=1e-5)
    # good lost 1, 0, 2: mean 1, s = 1, interval [-1.48, 3.48] holds 0: not significant
    assert t["good_lost"]["mean"] == pytest.approx(1.0)
    assert t["good_lost"]["ci95_low"] == pytest.approx(1 - 2.48414, abs=1e-5)
    assert t["good_lost"]["significant"] is False
