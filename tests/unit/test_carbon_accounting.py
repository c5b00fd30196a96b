"""Scope 1 and 2 accounting: carbon.md's worked example, hourly factors, instruments, gaps, bad input."""

from datetime import UTC, datetime

import numpy as np
import pytest

from carbon import (
    CarbonConfig,
    Registry,
    SeriesCoverageError,
    UnitError,
    UnknownFactorError,
    emissions_summary,
    hour_edges,
    hourly_activity,
    ledger_records,
    load_carbon_config,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
T1 = datetime(2026, 2, 1, tzinfo=UTC).timestamp()
HOURS = np.arange(T0, T1, 3600.0)
EDGES = hour_edges(T0, T1)
EXAMPLE = CarbonConfig(grid_factor="cn-mee-2022-national", residual_factor="cn-mee-2022-excl-nonfossil",
                       scope1_method="ipcc", gwp_set="ar5")


@pytest.fixture(scope="module")
def reg():
    return Registry.default()


def profile(total, seed):
    """Hourly activity summing exactly to ``total``: a shift pattern with noise, as meters see it."""
    rng = np.random.default_rng(seed)
    local_h = (np.arange(len(HOURS)) + 8) % 24
    w = np.where((local_h >= 8) & (local_h < 20), 1.0, 0.3) * rng.uniform(0.8, 1.2, len(HOURS))
    return total * w / w.sum()


def meter(name, kind, unit, hourly, edges=EDGES, base=1000.0):
    """A cumulative register read on every hour edge, holding ``hourly`` activity per hour."""
    register = np.concatenate(([base], base + np.cumsum(hourly)))
    return hourly_activity(name, kind, unit, edges[: len(register)], register, edges)


def example_meters():
    return [
        meter("boiler", "natural_gas", "Nm3", profile(8000.0, 1)),
        meter("grid", "grid_import", "kWh", profile(120000.0, 2)),
        meter("pv", "pv", "kWh", profile(15000.0, 3)),
    ]


def account(meters, cfg, reg, **kw):
    return ledger_records(meters, cfg, reg, site=kw.pop("site", "example"), **kw).records


def by(summary, source, method, factor_prefix=""):
    items = [s for s in summary["by_source"] if s["source"] == source and s["method"] == method
             and s["factor_id"].startswith(factor_prefix)]
    assert len(items) == 1, items
    return items[0]


def test_worked_example(reg):
    recs = account(example_meters(), EXAMPLE, reg, site="example")
    s = emissions_summary(recs)
    assert round(s["scope1_co2e_kg"], 2) == 17489.21
    assert round(s["scope2_location_co2e_kg"], 1) == 64392.0
    assert "scope2_market_co2e_kg" not in s  # the ledger holds no market records: `report` claims instruments
    gas = by(s, "boiler", "direct")
    assert round(gas["co2_kg"], 2) == 17472.23
    assert gas["ch4_kg"] == pytest.approx(0.311448, abs=1e-9)
    assert gas["n2o_kg"] == pytest.approx(0.0311448, abs=1e-6)
    assert gas["activity"] == pytest.approx(8000.0) and gas["activity_unit"] == "Nm3"
    assert "ipcc2006-t2.3-natural_gas-co2" in gas["factor_id"] and gas["factor_id"].endswith("gwp-ar5")
    pv = by(s, "pv", "onsite")
    assert pv["activity"] == pytest.approx(15000.0) and pv["co2e_kg"] == 0.0
    assert s["onsite_kwh"] == pytest.approx(15000.0) and s["export_kwh"] == 0.0
    assert (s["hours"], s["first_hour"], s["last_hour"], s["origin"]) == (744, "2026-01-01T00:00:00.000Z",
                                                                          "2026-01-31T23:00:00.000Z", ["measured"])
    assert all(r.factor_version == reg.version and r.data_quality == "measured" for r in recs)
    # one record per source and clock hour, each an hour long, each with its two readings
    assert len(recs) == 3 * 744 and {r.end - r.start for r in recs} == {3600.0}
    assert {r.readings for r in recs} == {1} and {r.first_reading for r in recs if r.source == "grid"} == set(HOURS)


def test_worked_example_ndrc_and_ets_factor(reg):
    cfg = EXAMPLE.model_copy(update={"scope1_method": "ndrc", "grid_factor": "cn-mee-ets-2022"})
    s = emissions_summary(account(example_meters(), cfg, reg))
    gas = by(s, "boiler", "direct")
    assert round(gas["co2_kg"], 2) == 17297.51 and gas["ch4_kg"] == 0.0
    assert round(s["scope2_location_co2e_kg"], 1) == 68436.0


def test_readings_off_the_hour_are_placed_pro_rata(reg):
    """Registers read every 7 hours (not on clock hours): the hours still sum to the month exactly."""
    t = np.append(np.arange(T0, T1, 7 * 3600.0), T1)
    one = emissions_summary(account(example_meters(), EXAMPLE, reg))
    acts = []
    for name, kind, unit, total in (("boiler", "natural_gas", "Nm3", 8000.0), ("grid", "grid_import", "kWh", 120000.0),
                                    ("pv", "pv", "kWh", 15000.0)):
        register = 1000.0 + total * (t - T0) / (T1 - T0)
        acts.append(hourly_activity(name, kind, unit, t, register, EDGES))
    many = emissions_summary(account(acts, EXAMPLE, reg))
    for k in ("scope1_co2e_kg", "scope2_location_co2e_kg"):
        assert many[k] == pytest.approx(one[k], rel=1e-9)


def test_hourly_series_is_time_aligned(reg):
    cfg, reg2 = load_carbon_config({"grid_factor": "example-east-hourly-2026q1", "factor_files": ["configs/factors_custom.yaml"]})
    kwh = profile(120000.0, 2)
    recs = account([meter("grid", "grid_import", "kWh", kwh)], cfg, reg2)
    series = np.loadtxt("configs/grid_hourly_example.csv", delimiter=",", comments="#", skiprows=3,
                        usecols=1, max_rows=len(HOURS))
    loc = [r for r in recs if r.method == "location"]
    assert loc[0].factor_id == "example-east-hourly-2026q1"
    assert sum(r.co2e_kg for r in loc) == pytest.approx(float(np.dot(kwh, series)), rel=1e-12)
    # half-hour readings: each hour takes its own hour's factor
    half = np.arange(T0, T0 + 4 * 3600 + 1, 1800.0)
    edges = hour_edges(T0, T0 + 4 * 3600)
    grid = hourly_activity("grid", "grid_import", "kWh", half, 10.0 * np.arange(len(half)), edges)
    loc = [r.co2e_kg for r in account([grid], cfg, reg2) if r.method == "location"]
    assert loc == pytest.approx(list(20.0 * series[:4]), rel=1e-12)


def test_hourly_series_outside_coverage_is_an_error(reg):
    cfg, reg2 = load_carbon_config({"grid_factor": "example-east-hourly-2026q1", "factor_files": ["configs/factors_custom.yaml"]})
    t0 = datetime(2026, 6, 1, tzinfo=UTC).timestamp()
    g = hourly_activity("grid", "grid_import", "kWh", [t0, t0 + 3600], [0.0, 5.0], hour_edges(t0, t0 + 3600))
    with pytest.raises(SeriesCoverageError, match="covers 2026-01-01"):
        account([g], cfg, reg2)


def test_a_meter_without_readings_has_no_records_never_zero(reg):
    silent = hourly_activity("grid", "grid_import", "kWh", [], [], EDGES)
    book = ledger_records([silent], EXAMPLE, reg, site="example")
    assert book.records == [] and book.meters[0]["hours"] == 0


def test_unit_that_does_not_fit_is_an_error(reg):
    with pytest.raises(UnitError, match="expected energy"):
        account([meter("grid", "grid_import", "Nm3", np.ones(len(HOURS)))], EXAMPLE, reg)


def test_unknown_factor_id_is_an_error(reg):
    from factory_models import ConfigError

    with pytest.raises(ConfigError, match="unknown emission factor id"):
        account(example_meters(), EXAMPLE.model_copy(update={"grid_factor": "cn-grid-typo"}), reg)
    # a method whose factors are missing for a fuel names the missing id
    diesel = meter("genset", "diesel", "kg", np.full(1, 100.0), edges=EDGES[:2])
    with pytest.raises(UnknownFactorError, match="cn-ndrc-ncv-diesel"):
        account([diesel], EXAMPLE.model_copy(update={"scope1_method": "ndrc"}), reg)


def test_compressed_air_is_not_counted_twice(reg):
    air = meter("air", "compressed_air", "m3", np.full(len(HOURS), 50.0))
    with_air = emissions_summary(account(example_meters() + [air], EXAMPLE, reg))
    assert with_air == emissions_summary(account(example_meters(), EXAMPLE, reg))


def test_gwp_sets_change_co2e_not_gas_masses(reg):
    out = {}
    for g in ("ar4", "ar5", "ar6"):
        s = emissions_summary(account(example_meters()[:1], EXAMPLE.model_copy(update={"gwp_set": g}), reg))
        out[g] = by(s, "boiler", "direct")
    assert out["ar4"]["co2_kg"] == out["ar6"]["co2_kg"]
    assert out["ar4"]["co2e_kg"] == pytest.approx(17472.2328 + 0.311448 * 25 + 0.0311448 * 298, abs=1e-6)
    # AR6 CH4 for combustion: whichever the registry holds (fossil 29.8 or 27.9), applied to the same mass
    ch4 = Registry.default().gwp("ar6").gwp("CH4")
    assert out["ar6"]["co2e_kg"] == pytest.approx(17472.2328 + 0.311448 * ch4 + 0.0311448 * 273, abs=1e-6)


def test_keep_records_only_the_hours_asked_for(reg):
    recs = account(example_meters(), EXAMPLE, reg, keep=(T0 + 3600.0, T0 + 3 * 3600.0))
    assert sorted({r.start for r in recs}) == [T0 + 3600.0, T0 + 7200.0] and len(recs) == 6
