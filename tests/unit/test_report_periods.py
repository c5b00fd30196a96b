"""Report periods read in the site's time zone, coverage said on the first page of every format,
origins never mixed, and the same figures from the store's SQL as from records in memory."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
from datetime import datetime, timezone

import openpyxl
import pytest
from support.ledger_rows import hours_of

from carbon import CarbonConfig, Registry
from carbon.inventory import build_inventory
from carbon.periods import parse_site_time
from twin.emissions.report import parse_period, write_period_report
from twin.store import Store

SH = "Asia/Shanghai"
MAR1 = datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp()  # 08:00 on 1 March in Shanghai
CFG = CarbonConfig(grid_factor="cn-mee-2023-national")


def three_days(origin="measured", scale=1.0):
    """72 hours from 2026-03-01T00:00Z; hour i imports (i + 1) kWh at 0.5 kg/kWh."""
    return hours_of("sz", "grid", "2", "location", "kWh", MAR1, 72, [scale * (i + 1) for i in range(72)], 0.5,
                    origin=origin, factor_id="cn-mee-2023-national")


def store_with(tmp_path, *batches):
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        for b in batches:
            st.write_emissions(b)
    return path


def report(path, date_from, date_to, tmp_path, fmt="json", origin="measured", tz=SH, cfg=CFG):
    t0, t1 = parse_period(date_from, date_to, tz)
    return write_period_report(path, t0, t1, fmt, tmp_path / f"out.{fmt}", factory=None, carbon_cfg=cfg,
                               registry=Registry.default(), origin=origin, tz=tz)


def test_a_shanghai_day_starts_at_16_utc(tmp_path):
    assert parse_site_time("2026-03-02", SH) == datetime(2026, 3, 1, 16, tzinfo=timezone.utc).timestamp()
    path = store_with(tmp_path, three_days())
    inv = report(path, "2026-03-02", "2026-03-03", tmp_path)
    # the local day 2 March is hours 16..39 of the data: (17 + ... + 40) kWh = 684 kWh, at 0.5 kg/kWh
    assert inv["totals"]["grid_import_kwh"] == pytest.approx(684.0, abs=1e-9)
    assert inv["totals"]["scope2_location_co2e_kg"] == pytest.approx(342.0, abs=1e-9)
    cov = inv["coverage"]
    assert (cov["hours_in_period"], cov["hours_with_data"], cov["complete"]) == (24, 24, True)
    assert cov["first_reading"]["utc"] == "2026-03-01T16:01:00.000Z"
    assert cov["first_reading"]["local"] == "2026-03-02 00:01 Asia/Shanghai"
    assert inv["hours"][0]["start"] == "2026-03-01T16:00:00.000Z" and len(inv["hours"]) == 24
    assert not any(d.startswith("PARTIAL") for d in inv["disclosures"])
    # the same bound as a local time, and with an explicit offset, is the same hour
    assert parse_period("2026-03-02T00:00", "2026-03-02T08:00+08:00", SH) == (parse_site_time("2026-03-02", SH),
                                                                             parse_site_time("2026-03-02T08:00", SH))


def test_bounds_off_the_clock_hour_or_reversed_are_refused():
    with pytest.raises(ValueError, match="not on a clock hour of Asia/Kolkata"):
        parse_period("2026-03-02T08:00Z", "2026-03-03", "Asia/Kolkata")  # India's hours start at :30 UTC
    assert parse_period("2026-03-02T08:30Z", "2026-03-03", "Asia/Kolkata")[0] == parse_site_time("2026-03-02T14:00", "Asia/Kolkata")
    with pytest.raises(ValueError, match="must be after"):
        parse_period("2026-03-03", "2026-03-02", SH)
    with pytest.raises(ValueError, match="is not a date"):
        parse_period("March 2", "2026-03-03", SH)


def _partial(tmp_path, fmt):
    path = store_with(tmp_path, three_days())
    # the local day 1 March began at 16:00Z on 28 February: the data starts 8 hours into it
    return report(path, "2026-03-01", "2026-03-02", tmp_path, fmt=fmt)


def test_partial_coverage_is_said_first_in_json_and_csv(tmp_path):
    inv = _partial(tmp_path, "json")
    doc = json.loads((tmp_path / "out.json").read_text())
    assert list(doc)[:5] == ["report", "site", "origin", "period", "disclosures"]
    assert doc["disclosures"][0].startswith("PARTIAL COVERAGE: 16 of the 24 hours of the period have data (8 without")
    assert doc["coverage"]["hours_with_data"] == 16 and doc["coverage"]["complete"] is False
    assert inv["totals"]["grid_import_kwh"] == pytest.approx(sum(range(1, 17)), abs=1e-9)  # hours 0..15: 136 kWh
    _partial(tmp_path, "csv")
    rows = list(csv.DictReader((tmp_path / "out.csv").open()))
    first = [r for r in rows if r["section"] == "Report"]
    assert rows[0]["section"] == "Report"
    values = [r["value"] for r in first]
    assert "PARTIAL" in values and any(v.startswith("PARTIAL COVERAGE") for v in values)


def test_partial_coverage_is_on_the_first_sheet_and_the_first_pdf_page(tmp_path):
    _partial(tmp_path, "xlsx")
    wb = openpyxl.load_workbook(tmp_path / "out.xlsx")
    assert wb.sheetnames[0] == "Report"
    meta = list(wb["Report"].iter_rows(min_row=2, values_only=True))
    assert ("coverage", "PARTIAL") in meta and any(str(v).startswith("PARTIAL COVERAGE") for _, v in meta)
    hours = list(wb["Hours"].iter_rows(min_row=2, values_only=True))
    assert len(hours) == 24 and sum(1 for h in hours if h[-2]) == 16  # the 'data' column
    if not shutil.which("pdftotext"):
        pytest.fail("poppler-utils (pdftotext) is required")
    _partial(tmp_path, "pdf")
    page1 = subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(tmp_path / "out.pdf"), "-"], check=True,
                           capture_output=True, text=True).stdout
    assert "PARTIAL COVERAGE: 16 of the 24 hours" in " ".join(page1.split())


def test_origins_are_never_mixed_and_rewrites_are_counted(tmp_path):
    path = store_with(tmp_path, three_days("measured"), three_days("simulated", scale=10.0),
                      three_days("simulated", scale=10.0)[:5])  # five simulated hours written twice
    m = report(path, "2026-03-02", "2026-03-03", tmp_path)
    s = report(path, "2026-03-02", "2026-03-03", tmp_path, origin="simulated")
    assert m["totals"]["grid_import_kwh"] == pytest.approx(684.0) and m["origin"] == "measured"
    assert s["totals"]["grid_import_kwh"] == pytest.approx(6840.0) and s["origin"] == "simulated"
    assert m["coverage"]["hours_written_more_than_once"] == 0
    # the twice-written hours are 00:00-05:00Z on 1 March: in the local day 1 March, not 2 March
    s1 = report(path, "2026-03-01", "2026-03-02", tmp_path, origin="simulated")
    assert s1["coverage"]["hours_written_more_than_once"] == 5
    with Store(path) as st:  # the report's count is the store's
        t0, t1 = parse_period("2026-03-01", "2026-03-02", SH)
        assert st.emission_rewrites(t0, t1, site="sz", origin="simulated") == 5
        assert st.emission_rewrites(t0, t1, site="sz", origin="measured") == 0
    assert any("5 hour(s) of the period were written more than once" in d for d in s1["disclosures"])


def test_an_origin_with_no_records_names_the_other(tmp_path):
    path = store_with(tmp_path, three_days("simulated"))
    with pytest.raises(ValueError, match="no measured emissions records .* use --origin simulated"):
        report(path, "2026-03-02", "2026-03-03", tmp_path)


def test_site_energy_counts_self_consumed_generation_and_not_exports(tmp_path):
    recs = (hours_of("sz", "grid", "2", "location", "kWh", MAR1, 2, 100.0, 0.5)
            + hours_of("sz", "pv", "2", "onsite", "kWh", MAR1, 2, 50.0, 0.0)
            + hours_of("sz", "export", "2", "export", "kWh", MAR1, 2, 20.0, 0.0))
    path = store_with(tmp_path, recs)
    inv = report(path, "2026-03-01T00:00Z", "2026-03-01T02:00Z", tmp_path)
    t = inv["totals"]
    assert (t["grid_import_kwh"], t["self_consumed_kwh"], t["exported_kwh"], t["site_energy_kwh"]) == (200, 100, 40, 300)
    assert t["scope2_location_co2e_kg"] == 100.0  # only imports carry Scope 2


def test_the_store_gives_the_figures_of_the_records(tmp_path):
    recs = (three_days() + hours_of("sz", "boiler", "1", "direct", "Nm3", MAR1, 72, 3.0, 2.0, estimated=(4, 30))
            + hours_of("sz", "pv", "2", "onsite", "kWh", MAR1 + 3600 * 20, 10, 7.0, 0.0))
    path = store_with(tmp_path, recs)
    t0, t1 = parse_period("2026-03-02", "2026-03-04", SH)
    from_store = report(path, "2026-03-02", "2026-03-04", tmp_path)
    in_memory = build_inventory(recs, Registry.default(), (t0, t1), "sz", config=CFG, tz=SH)
    for key in ("totals", "coverage", "by_source", "by_gas", "data_quality", "hours"):
        assert from_store[key] == in_memory[key], key
    assert from_store["inputs_sha256"] == in_memory["inputs_sha256"]
    boiler = next(m for m in from_store["coverage"]["meters"] if m["source"] == "boiler")
    assert (boiler["hours"], boiler["estimated_hours"], boiler["readings"]) == (48, 1, 47 * 6)  # hour 30 of 16..63


def test_a_migrated_old_store_reports_without_its_market_rows(tmp_path):
    import sqlite3

    from twin.store import MIGRATIONS

    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        db.executescript(script)
    db.execute("PRAGMA user_version=2")
    old = "INSERT INTO emissions VALUES ('sz', '2', 'grid', ?, ?, ?, 1200.0, 'kWh', ?, ?, 0, 0, ?, 'v', 'ar5', 'measured')"
    db.execute(old, ("location", MAR1, MAR1 + 3 * 86400, 600.0, 600.0, "cn-mee-2023-national"))  # a whole-run row
    db.execute(old, ("market", MAR1, MAR1 + 3 * 86400, 999.0, 999.0, "residual"))  # market, made by the old ledger
    db.commit()
    db.close()
    inv = report(path, "2026-03-01T00:00Z", "2026-03-04T00:00Z", tmp_path, tz="UTC")
    assert inv["totals"]["scope2_location_co2e_kg"] == 600.0
    # the market figure is claimed now, not read: 1,200 kWh at the residual 0.6096, not the stored 999 kg
    assert inv["totals"]["scope2_market_co2e_kg"] == pytest.approx(1200 * 0.6096, abs=1e-9)
    assert inv["coverage"]["hours_with_data"] == 72 and inv["coverage"]["complete"]
    assert any("longer than an hour" in n for n in inv["notes"])


def test_a_summer_time_day_has_23_hours(tmp_path):
    berlin = "Europe/Berlin"
    t0, t1 = parse_period("2026-03-29", "2026-03-30", berlin)
    assert (t1 - t0) / 3600 == 23  # clocks go from 02:00 to 03:00
    path = store_with(tmp_path, hours_of("de", "grid", "2", "location", "kWh", t0, 23, 10.0, 0.4))
    inv = report(path, "2026-03-29", "2026-03-30", tmp_path, tz=berlin)
    assert inv["coverage"]["hours_in_period"] == 23 and inv["coverage"]["complete"]
    assert inv["totals"]["grid_import_kwh"] == 230.0
    assert inv["period"]["end_local"] == "2026-03-30 00:00 Europe/Berlin"
