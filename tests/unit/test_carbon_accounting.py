"""Scope 1 and 2 accounting: carbon.md's worked example, hourly factors, instruments, gaps, bad input."""

import csv
from datetime import datetime, timezone

import numpy as np
import pytest

from carbon import (
    CarbonConfig,
    Instrument,
    InstrumentError,
    InstrumentLedger,
    MeterDataError,
    MeterSeries,
    Registry,
    SeriesCoverageError,
    UnitError,
    UnknownFactorError,
    account,
    emissions_summary,
    load_carbon_config,
    series_from_cumulative,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
T1 = datetime(2026, 2, 1, tzinfo=timezone.utc).timestamp()
HOURS = np.arange(T0, T1, 3600.0)
GEC = Instrument(id="GEC-2026-001", kind="gec", kwh=30000, vintage=2026, market="CN", retired=True)
EXAMPLE = CarbonConfig(grid_factor="cn-mee-2022-national", residual_factor="cn-mee-2022-excl-nonfossil",
                       scope1_method="ipcc", gwp_set="ar5", instruments=[GEC])


@pytest.fixture(scope="module")
def reg():
    return Registry.default()


def profile(total, seed):
    """Hourly activity summing exactly to ``total``: a shift pattern with noise, as meters see it."""
    rng = np.random.default_rng(seed)
    local_h = (np.arange(len(HOURS)) + 8) % 24
    w = np.where((local_h >= 8) & (local_h < 20), 1.0, 0.3) * rng.uniform(0.8, 1.2, len(HOURS))
    return total * w / w.sum()


def example_meters():
    return [
        MeterSeries("boiler", "natural_gas", "Nm3", HOURS, HOURS + 3600, profile(8000.0, 1), ncv_mj_per_nm3=38.931),
        MeterSeries("grid", "grid_import", "kWh", HOURS, HOURS + 3600, profile(120000.0, 2)),
        MeterSeries("pv", "pv", "kWh", HOURS, HOURS + 3600, profile(15000.0, 3)),
    ]


def by(summary, source, method, factor_prefix=""):
    items = [s for s in summary["by_source"] if s["source"] == source and s["method"] == method
             and s["factor_id"].startswith(factor_prefix)]
    assert len(items) == 1, items
    return items[0]


def test_worked_example(reg):
    recs = account(example_meters(), EXAMPLE, reg, T0, T1, windows=86400.0, site="example")
    s = emissions_summary(recs)
    assert round(s["scope1_co2e_kg"], 2) == 17489.21
    assert round(s["scope2_location_co2e_kg"], 1) == 64392.0
    assert round(s["scope2_market_co2e_kg"], 1) == 52704.0
    gas = by(s, "boiler", "direct")
    assert round(gas["co2_kg"], 2) == 17472.23
    assert gas["ch4_kg"] == pytest.approx(0.311448, abs=1e-9)
    assert gas["n2o_kg"] == pytest.approx(0.0311448, abs=1e-6)
    assert gas["activity"] == pytest.approx(8000.0) and gas["activity_unit"] == "Nm3"
    assert "ipcc2006-t2.3-natural_gas-co2" in gas["factor_id"] and gas["factor_id"].endswith("gwp-ar5")
    assert by(s, "grid", "market", "cn-mee-2022-excl-nonfossil")["activity"] == pytest.approx(90000.0)
    assert by(s, "grid", "market", "ghgp-renewable-instrument#GEC-2026-001")["activity"] == pytest.approx(30000.0)
    pv = by(s, "pv", "onsite")
    assert pv["activity"] == pytest.approx(15000.0) and pv["co2e_kg"] == 0.0
    assert set(s) == {"scope1_co2e_kg", "scope2_location_co2e_kg", "scope2_market_co2e_kg", "by_source"}
    assert set(gas) == {"source", "scope", "method", "activity", "activity_unit", "co2e_kg", "co2_kg", "ch4_kg",
                        "n2o_kg", "factor_id"}
    assert all(r.factor_version == reg.version and r.data_quality == "measured" for r in recs)
    assert len({(r.start, r.end) for r in recs}) == 31


def test_worked_example_ndrc_and_ets_factor(reg):
    cfg = EXAMPLE.model_copy(update={"scope1_method": "ndrc", "grid_factor": "cn-mee-ets-2022"})
    s = emissions_summary(account(example_meters(), cfg, reg, T0, T1))
    gas = by(s, "boiler", "direct")
    assert round(gas["co2_kg"], 2) == 17297.51 and gas["ch4_kg"] == 0.0
    assert round(s["scope2_location_co2e_kg"], 1) == 68436.0


def test_worked_example_from_meter_samples_csv(tmp_path, reg):
    """The replay route: cumulative register samples in a CSV (signal,value,ts) to records."""
    path = tmp_path / "meters.csv"
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["signal", "value", "ts"])
        for meter, signal, total, seed in (("boiler", "volume_nm3", 8000.0, 1), ("grid", "energy_kwh", 120000.0, 2),
                                           ("pv", "energy_kwh", 15000.0, 3)):
            register = np.concatenate(([1000.0], 1000.0 + np.cumsum(profile(total, seed))))
            for t, v in zip(np.append(HOURS, T1), register):
                w.writerow([f"site/{meter}/{signal}", repr(float(v)), repr(float(t))])
    rows = list(csv.DictReader(path.open()))
    kinds = {"boiler": ("natural_gas", "Nm3"), "grid": ("grid_import", "kWh"), "pv": ("pv", "kWh")}
    series = []
    for meter, (kind, unit) in kinds.items():
        mine = [r for r in rows if r["signal"].split("/")[1] == meter]
        series.append(series_from_cumulative(meter, kind, unit, [float(r["ts"]) for r in mine],
                                             [float(r["value"]) for r in mine]))
    s = emissions_summary(account(series, EXAMPLE, reg, T0, T1, windows=3600.0))
    assert (round(s["scope1_co2e_kg"], 2), round(s["scope2_location_co2e_kg"], 1), round(s["scope2_market_co2e_kg"], 1)) \
        == (17489.21, 64392.0, 52704.0)


def test_windows_partition_the_totals(reg):
    one = emissions_summary(account(example_meters(), EXAMPLE, reg, T0, T1))
    # 7-hour windows do not line up with the hourly meter windows: activity is split pro rata
    many = emissions_summary(account(example_meters(), EXAMPLE, reg, T0, T1, windows=7 * 3600.0))
    for k in ("scope1_co2e_kg", "scope2_location_co2e_kg", "scope2_market_co2e_kg"):
        assert many[k] == pytest.approx(one[k], rel=1e-12)


def test_chunked_accounting_claims_each_certificate_once(reg):
    ledger = InstrumentLedger(EXAMPLE.instruments, T0, T1)
    mid = T0 + 10 * 86400
    recs = account(example_meters(), EXAMPLE, reg, T0, mid, ledger=ledger) + \
        account(example_meters(), EXAMPLE, reg, mid, T1, ledger=ledger)
    s = emissions_summary(recs)
    assert round(s["scope2_market_co2e_kg"], 1) == 52704.0
    assert ledger.unclaimed() == {}


def test_hourly_series_is_time_aligned(reg):
    cfg, reg2 = load_carbon_config({"grid_factor": "example-east-hourly-2026q1", "factor_files": ["configs/factors_custom.yaml"]})
    kwh = profile(120000.0, 2)
    recs = account([MeterSeries("grid", "grid_import", "kWh", HOURS, HOURS + 3600, kwh)], cfg, reg2, T0, T1)
    series = np.loadtxt("configs/grid_hourly_example.csv", delimiter=",", comments="#", skiprows=3,
                        usecols=1, max_rows=len(HOURS))
    loc = [r for r in recs if r.method == "location"]
    assert loc[0].factor_id == "example-east-hourly-2026q1"
    assert loc[0].co2e_kg == pytest.approx(float(np.dot(kwh, series)), rel=1e-12)
    # half-hour meter windows: each takes its hour's factor
    half = np.arange(T0, T0 + 4 * 3600, 1800.0)
    recs = account([MeterSeries("grid", "grid_import", "kWh", half, half + 1800, np.full(8, 10.0))], cfg, reg2,
                   T0, T0 + 4 * 3600, windows=3600.0)
    loc = [r.co2e_kg for r in recs if r.method == "location"]
    assert loc == pytest.approx(list(20.0 * series[:4]), rel=1e-12)


def test_hourly_series_outside_coverage_is_an_error(reg):
    cfg, reg2 = load_carbon_config({"grid_factor": "example-east-hourly-2026q1", "factor_files": ["configs/factors_custom.yaml"]})
    t0 = datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp()
    with pytest.raises(SeriesCoverageError, match="covers 2026-01-01"):
        account([MeterSeries("grid", "grid_import", "kWh", [t0], [t0 + 3600], [5.0])], cfg, reg2, t0, t0 + 3600)


def test_meter_gap_is_filled_flagged_and_counted(reg):
    kwh = np.full(len(HOURS), 100.0)
    kwh[10] = np.nan  # a missing reading
    keep = np.ones(len(HOURS), bool)
    keep[100:106] = False  # six missing windows
    m = MeterSeries("grid", "grid_import", "kWh", HOURS[keep], HOURS[keep] + 3600, kwh[keep])
    recs = account([m], EXAMPLE, reg, T0, T1, windows=86400.0)
    loc = [r for r in recs if r.method == "location"]
    gaps = [r for r in loc if r.data_quality == "gap_filled"]
    assert len(gaps) == 2  # two days hold a gap
    assert sum(r.activity for r in gaps) == pytest.approx(700.0)
    assert sum(r.activity for r in loc) == pytest.approx(100.0 * len(HOURS))


def test_no_readings_at_all_is_an_error_not_zero(reg):
    m = MeterSeries("grid", "grid_import", "kWh", HOURS[:5], HOURS[:5] + 3600, np.full(5, np.nan))
    with pytest.raises(MeterDataError, match="no readings"):
        account([m], EXAMPLE, reg, T0, T1)


def test_certificate_outside_vintage_is_an_error(reg):
    old = Instrument(id="GEC-2024-9", kind="gec", mwh=30, vintage=2024, market="CN", retired=True)
    with pytest.raises(InstrumentError, match="vintage 2024, outside the reporting period"):
        account(example_meters(), EXAMPLE.model_copy(update={"instruments": [old]}), reg, T0, T1)


def test_unretired_or_foreign_certificate_is_an_error(reg):
    from factory_models import ConfigError

    bad = [Instrument(id="A", kind="gec", kwh=1, vintage=2026, market="CN", retired=False),
           Instrument(id="B", kind="ppa", kwh=1, vintage=2026, market="DE", retired=True)]
    with pytest.raises(ConfigError) as e:
        account(example_meters(), EXAMPLE.model_copy(update={"instruments": bad}), reg, T0, T1)
    assert "not retired" in str(e.value) and "market DE" in str(e.value)


def test_unit_that_does_not_fit_is_an_error(reg):
    with pytest.raises(UnitError, match="expected energy"):
        account([MeterSeries("grid", "grid_import", "Nm3", HOURS, HOURS + 3600, np.ones(len(HOURS)))], EXAMPLE, reg, T0, T1)


def test_unknown_factor_id_is_an_error(reg):
    from factory_models import ConfigError

    with pytest.raises(ConfigError, match="unknown emission factor id"):
        account(example_meters(), EXAMPLE.model_copy(update={"grid_factor": "cn-grid-typo"}), reg, T0, T1)
    # a method whose factors are missing for a fuel names the missing id
    diesel = MeterSeries("genset", "diesel", "kg", HOURS[:1], HOURS[:1] + 3600, [100.0])
    with pytest.raises(UnknownFactorError, match="cn-ndrc-ncv-diesel"):
        account([diesel], EXAMPLE.model_copy(update={"scope1_method": "ndrc"}), reg, T0, T0 + 3600)


def test_overlapping_or_negative_windows_are_errors(reg):
    with pytest.raises(MeterDataError, match="overlap"):
        account([MeterSeries("grid", "grid_import", "kWh", [T0, T0 + 1800], [T0 + 3600, T0 + 5400], [1.0, 1.0])],
                EXAMPLE, reg, T0, T0 + 5400)
    with pytest.raises(MeterDataError, match="negative"):
        account([MeterSeries("grid", "grid_import", "kWh", [T0], [T0 + 3600], [-1.0])], EXAMPLE, reg, T0, T0 + 3600)


def test_counter_reset_is_flagged_estimated(reg):
    s = series_from_cumulative("grid", "grid_import", "kWh", [T0, T0 + 3600, T0 + 7200], [500.0, 600.0, 40.0])
    assert list(s.value) == [100.0, 40.0] and list(s.estimated) == [False, True]
    recs = account([s], EXAMPLE.model_copy(update={"instruments": []}), reg, T0, T0 + 7200)
    assert {r.data_quality for r in recs if r.method == "location"} == {"measured", "estimated"}


def test_compressed_air_is_not_counted_twice(reg):
    air = MeterSeries("air", "compressed_air", "m3", HOURS, HOURS + 3600, np.full(len(HOURS), 50.0))
    with_air = emissions_summary(account(example_meters() + [air], EXAMPLE, reg, T0, T1))
    assert with_air == emissions_summary(account(example_meters(), EXAMPLE, reg, T0, T1))


def test_gwp_sets_change_co2e_not_gas_masses(reg):
    out = {}
    for g in ("ar4", "ar5", "ar6"):
        s = emissions_summary(account(example_meters()[:1], EXAMPLE.model_copy(update={"gwp_set": g}), reg, T0, T1))
        out[g] = by(s, "boiler", "direct")
    assert out["ar4"]["co2_kg"] == out["ar6"]["co2_kg"]
    assert out["ar6"]["co2e_kg"] == pytest.approx(17472.2328 + 0.311448 * 27.9 + 0.0311448 * 273, abs=1e-6)
    assert out["ar4"]["co2e_kg"] == pytest.approx(17472.2328 + 0.311448 * 25 + 0.0311448 * 298, abs=1e-6)
