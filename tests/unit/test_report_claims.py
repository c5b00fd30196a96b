"""Certificates claimed once, at report time: vintages in the site's time zone, quantity and
consumption limits, refusals with reasons, and market-based figures that add up over periods."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import numpy as np
import pytest
from support.ledger_rows import hours_of

from carbon import CarbonConfig, Instrument, Registry
from carbon.claims import claim
from carbon.inventory import build_inventory
from carbon.periods import parse_site_time

SH = "Asia/Shanghai"
# 2025-12-31T12:00Z is 20:00 on 31 December in Shanghai; 16:00Z is midnight of 1 January 2026 there
T = datetime(2025, 12, 31, 12, tzinfo=timezone.utc).timestamp()
HOURS = T + 3600.0 * np.arange(8)


def gec(id, vintage, kwh, **kw):
    return Instrument(**{"id": id, "kind": "gec", "kwh": kwh, "vintage": vintage, "market": "CN", "retired": True, **kw})


def test_two_vintages_over_the_year_boundary_in_the_site_zone():
    # 10 kWh an hour; the 2026 certificate is listed first and still covers only the 2026 (local) hours
    c = claim([gec("B-2026", 2026, 15), gec("A-2025", 2025, 25)], "CN", SH, HOURS, np.full(8, 10.0))
    assert list(c.covered["A-2025"]) == [10, 10, 5, 0, 0, 0, 0, 0]  # 20:00-23:00 local, 31 Dec 2025
    assert list(c.covered["B-2026"]) == [0, 0, 0, 0, 10, 5, 0, 0]  # from local midnight, 1 Jan 2026
    # read in UTC every hour would be 2025: the 2026 certificate would cover nothing
    utc = claim([gec("B-2026", 2026, 15), gec("A-2025", 2025, 25)], "CN", "UTC", HOURS, np.full(8, 10.0))
    assert utc.covered["B-2026"].sum() == 0 and list(utc.covered["A-2025"]) == [10, 10, 5, 0, 0, 0, 0, 0]


def test_never_beyond_the_quantity_or_the_consumption():
    kwh = np.array([4.0, 0.0, 3.0, 8.0])
    c = claim([gec("X", 2025, 100), gec("Y", 2025, 5)], "CN", "UTC", HOURS[:4], kwh)
    assert list(c.covered["X"]) == [4, 0, 3, 8]  # 15 of its 100 kWh: only what was imported
    assert c.covered["Y"].sum() == 0  # nothing left uncovered for the second one
    c = claim([gec("Z", 2025, 9)], "CN", "UTC", HOURS[:4], kwh)
    assert list(c.covered["Z"]) == [4, 0, 3, 2]


def test_validity_dates_narrow_the_vintage_year():
    hours = datetime(2026, 3, 9, 16, tzinfo=timezone.utc).timestamp() + 3600.0 * np.arange(48)  # 10-11 March local
    c = claim([gec("PPA", 2026, 1000, kind="green_ppa", valid_from="2026-03-11")], "CN", SH, hours, np.ones(48))
    assert list(c.covered["PPA"]) == [0] * 24 + [1] * 24


def test_another_market_or_not_retired_is_refused_with_the_reason_and_counted(tmp_path):
    reg = Registry.default()
    bad = [Instrument(id="DE-1", kind="i-rec", mwh=1, vintage=2026, market="DE", retired=True),
           Instrument(id="CN-open", kind="gec", kwh=500, vintage=2026, market="CN", retired=False),
           gec("CN-ok", 2026, 30)]
    cfg = CarbonConfig(grid_factor="cn-mee-2023-national", residual_factor="cn-mee-2023-excl-nonfossil", instruments=bad)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
    recs = hours_of("s", "grid", "2", "location", "kWh", t0, 10, 10.0, 0.5)
    inv = build_inventory(recs, reg, (t0, t0 + 36000), "s", config=cfg)
    refused = {x["id"]: x["reason"] for x in inv["instruments_refused"]}
    assert set(refused) == {"DE-1", "CN-open"}
    assert "market DE is not the site's market CN" in refused["DE-1"]
    assert "not retired" in refused["CN-open"]
    assert [x["id"] for x in inv["instruments"]] == ["CN-ok"]
    assert inv["totals"]["certificates_claimed_kwh"] == 30.0
    # 100 kWh imported, 30 covered at 0 kg, 70 at the residual 0.6096 kg/kWh
    assert inv["totals"]["scope2_market_co2e_kg"] == pytest.approx(70 * 0.6096, abs=1e-9)
    assert sum("refused" in d for d in inv["disclosures"]) == 2


def _store(tmp_path, records):
    from twin.store import Store

    path = tmp_path / "ledger.sqlite"
    with Store(path) as st:
        st.write_emissions(records)
    return path


def _report(path, t0, t1, cfg, tmp_path, tz=SH, origin="measured", fmt="json"):
    from twin.emissions.report import write_period_report

    out = tmp_path / f"r-{t0:.0f}-{t1:.0f}.{fmt}"
    return write_period_report(path, t0, t1, fmt, out, factory=None, carbon_cfg=cfg, registry=Registry.default(),
                               origin=origin, tz=tz)


def test_january_february_march_add_up_to_the_quarter(tmp_path):
    q0, q1 = parse_site_time("2026-01-01", SH), parse_site_time("2026-04-01", SH)
    n = int((q1 - q0) / 3600)
    assert n == 90 * 24
    rng = np.random.default_rng(3)
    grid = list(np.round(rng.uniform(20, 80, n), 3))
    gas = list(np.round(rng.uniform(1, 5, n), 3))
    recs = (hours_of("s", "grid", "2", "location", "kWh", q0, n, grid, 0.5703)
            + hours_of("s", "boiler", "1", "direct", "Nm3", q0, n, gas, 2.1622))
    # and hours outside the quarter, on either side: never in it
    recs += hours_of("s", "grid", "2", "location", "kWh", q0 - 5 * 3600, 5, 1000.0, 0.5703)
    recs += hours_of("s", "grid", "2", "location", "kWh", q1, 5, 1000.0, 0.5703)
    cfg = CarbonConfig(grid_factor="cn-mee-2023-national", residual_factor="cn-mee-2023-excl-nonfossil",
                       instruments=[gec("GEC-a", 2026, 40000), gec("GEC-b", 2026, 5000, valid_from="2026-03-10"),
                                    gec("GEC-old", 2025, 3000)])
    path = _store(tmp_path, recs)
    bounds = [parse_site_time(d, SH) for d in ("2026-01-01", "2026-02-01", "2026-03-01", "2026-04-01")]
    months = [_report(path, a, b, cfg, tmp_path) for a, b in zip(bounds, bounds[1:])]
    quarter = _report(path, q0, q1, cfg, tmp_path)
    for key in ("scope1_co2e_kg", "scope2_location_co2e_kg", "scope2_market_co2e_kg", "certificates_claimed_kwh"):
        assert sum(m["totals"][key] for m in months) == pytest.approx(quarter["totals"][key], abs=1e-6), key
    # by hand: 45,000 kWh of 2026 certificates all claimed (the quarter imports more); the 2025 one covers
    # the five hours before the quarter only, so nothing inside it; the rest at the residual mix
    total_grid = sum(grid)
    assert quarter["totals"]["certificates_claimed_kwh"] == pytest.approx(45000.0, abs=1e-6)
    assert quarter["totals"]["scope2_market_co2e_kg"] == pytest.approx((total_grid - 45000) * 0.6096, abs=1e-6)
    assert quarter["totals"]["scope2_location_co2e_kg"] == pytest.approx(total_grid * 0.5703, abs=1e-6)
    assert quarter["totals"]["scope1_co2e_kg"] == pytest.approx(sum(gas) * 2.1622, abs=1e-6)
    jan = months[0]["instruments"]
    a = next(x for x in jan if x["id"] == "GEC-a")
    jan_grid = sum(grid[: 31 * 24])
    assert a["claimed_kwh"] == pytest.approx(jan_grid, abs=1e-6)  # January is smaller than 40,000 kWh
    assert a["remaining_kwh"] == pytest.approx(40000 - jan_grid, abs=1e-6)
    feb_a = next(x for x in months[1]["instruments"] if x["id"] == "GEC-a")
    assert feb_a["claimed_before_kwh"] == pytest.approx(jan_grid, abs=1e-6)
    assert quarter["coverage"]["complete"] and quarter["coverage"]["hours_in_period"] == 2160


def test_reports_claim_the_same_kwh_however_often_they_are_made(tmp_path):
    t0 = datetime(2026, 5, 1, tzinfo=timezone.utc).timestamp()
    path = _store(tmp_path, hours_of("s", "grid", "2", "location", "kWh", t0, 48, 100.0, 0.5))
    cfg = CarbonConfig(grid_factor="cn-mee-2023-national", instruments=[gec("G", 2026, 3000)])
    first = [_report(path, t0, t0 + 86400, cfg, tmp_path, tz="UTC") for _ in range(3)]
    second = _report(path, t0 + 86400, t0 + 2 * 86400, cfg, tmp_path, tz="UTC")
    assert {m["totals"]["certificates_claimed_kwh"] for m in first} == {2400.0}  # the whole first day
    assert second["totals"]["certificates_claimed_kwh"] == 600.0  # what is left: 3000 - 2400, never again
    assert second["instruments"][0]["remaining_kwh"] == 0.0


def test_no_residual_mix_names_the_fallback(tmp_path):
    t0 = datetime(2026, 5, 1, tzinfo=timezone.utc).timestamp()
    recs = hours_of("s", "grid", "2", "location", "kWh", t0, 2, [10.0, 30.0], 0.5)
    recs[1] = recs[1].__class__(**{**{f: getattr(recs[1], f) for f in recs[1].__dataclass_fields__}, "co2e_kg": 30 * 0.7})
    cfg = CarbonConfig(grid_factor="cn-mee-2023-national", residual_factor=None, instruments=[gec("G", 2026, 5)])
    inv = build_inventory(recs, Registry.default(), (t0, t0 + 7200), "s", config=cfg)
    # hour 1: 5 of 10 kWh uncovered at its own location factor 0.5; hour 2: 30 kWh at 0.7
    assert inv["totals"]["scope2_market_co2e_kg"] == pytest.approx(5 * 0.5 + 30 * 0.7, abs=1e-9)
    assert any("No residual mix factor" in d and "cn-mee-2023-national" in d for d in inv["disclosures"])
    assert "fallback" in inv["method_statement"]
    json.dumps(inv)  # JSON-ready throughout


def test_new_year_reports_in_shanghai_use_each_vintage_on_its_own_side(tmp_path):
    # 31 Dec 2025 and 1 Jan 2026, local days: 48 hours of 10 kWh from 2025-12-30T16:00Z
    start = parse_site_time("2025-12-31", SH)
    path = _store(tmp_path, hours_of("s", "grid", "2", "location", "kWh", start, 48, 10.0, 0.5))
    cfg = CarbonConfig(grid_factor="cn-mee-2023-national", residual_factor="cn-mee-2023-excl-nonfossil",
                       instruments=[gec("V2026", 2026, 100), gec("V2025", 2025, 300)])
    dec31 = _report(path, start, start + 86400, cfg, tmp_path)
    jan1 = _report(path, start + 86400, start + 2 * 86400, cfg, tmp_path)
    claimed = {d: {x["id"]: x["claimed_kwh"] for x in r["instruments"]} for d, r in (("dec31", dec31), ("jan1", jan1))}
    # 240 kWh each local day: the 2025 certificate covers all of 31 Dec (240 of its 300), nothing of 1 Jan;
    # the 2026 one covers the first 100 kWh of 1 Jan
    assert claimed == {"dec31": {"V2026": 0.0, "V2025": 240.0}, "jan1": {"V2026": 100.0, "V2025": 0.0}}
    assert dec31["totals"]["scope2_market_co2e_kg"] == 0.0
    assert jan1["totals"]["scope2_market_co2e_kg"] == pytest.approx(140 * 0.6096, abs=1e-9)
    v2025 = next(x for x in jan1["instruments"] if x["id"] == "V2025")
    assert (v2025["claimed_before_kwh"], v2025["remaining_kwh"]) == (240.0, 60.0)
