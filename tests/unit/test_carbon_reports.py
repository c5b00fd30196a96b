"""Report files: the worked example's totals in JSON, CSV, XLSX, PDF (rendered and read back) and PACT."""

import csv
import json
import shutil
import subprocess
from datetime import datetime, timezone

import numpy as np
import openpyxl
import pytest

from carbon import (
    CarbonConfig, Instrument, MeterSeries, ProductOutput, Registry, SharedLoad, StationUse, account, allocate,
    grid_intensity_kg_per_kwh, inputs_digest, write_report,
)
from carbon.reports.pact import pact_document, validate_pact

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
T1 = datetime(2026, 2, 1, tzinfo=timezone.utc).timestamp()
H = np.arange(T0, T1, 3600.0)
CFG = CarbonConfig(grid_factor="cn-mee-2022-national", residual_factor="cn-mee-2022-excl-nonfossil",
                   instruments=[Instrument(id="GEC-1", kind="gec", kwh=30000, vintage=2026, market="CN", retired=True)])


@pytest.fixture(scope="module")
def inputs():
    reg = Registry.default()
    n = len(H)
    grid = np.full(n, 120000.0 / n)
    grid[50] = np.nan  # one missing reading: gap-filled and counted in the report
    meters = [MeterSeries("boiler", "natural_gas", "Nm3", H, H + 3600, np.full(n, 8000.0 / n)),
              MeterSeries("grid", "grid_import", "kWh", H, H + 3600, grid),
              MeterSeries("pv", "pv", "kWh", H, H + 3600, np.full(n, 15000.0 / n))]
    recs = account(meters, CFG, reg, T0, T1, windows=86400.0, site="example")
    s1 = sum(r.co2e_kg for r in recs if r.scope == "1")
    al = allocate([StationUse("smt/printer", 40000.0, machine_time_s={"board-a": 2e6, "board-b": 1e6}),
                   StationUse("smt/reflow", 60000.0, machine_time_s={"board-a": 1.5e6, "board-b": 1.5e6})],
                  [ProductOutput("board-a", 20000, 0.25), ProductOutput("board-b", 10000, None)],
                  [SharedLoad("boiler", "fuel", s1), SharedLoad("lighting", "electricity", 20000 * 0.5366, 20000.0)],
                  grid_intensity_kg_per_kwh(recs))
    return recs, al, reg


def write(inputs, fmt, tmp_path, ext):
    recs, al, reg = inputs
    out = tmp_path / f"report.{ext}"
    inv = write_report(recs, al, reg, fmt, out, (T0, T1), "example", CFG)
    return inv, out


def test_json_report(inputs, tmp_path):
    inv, out = write(inputs, "json", tmp_path, "json")
    doc = json.loads(out.read_text())
    t = doc["totals"]
    assert (round(t["scope1_co2e_kg"], 2), round(t["scope2_location_co2e_kg"], 1), round(t["scope2_market_co2e_kg"], 1)) \
        == (17489.21, 64392.0, 52704.0)
    assert t["onsite_renewable_kwh"] == pytest.approx(15000.0)
    assert doc["inputs_sha256"] == inputs_digest(inputs[0], inputs[2], inputs[1], CFG)
    assert doc["gap_filled_records"] == 1  # counted once per source (market records repeat the same activity)
    grid_dq = next(d for d in doc["data_quality"] if d["source"] == "grid")
    assert grid_dq["gap_filled_records"] == 1 and 0 < grid_dq["gap_filled_share"] < 0.01
    assert {f["id"] for f in doc["factor_appendix"]} >= {"cn-mee-2022-national", "cn-mee-2022-excl-nonfossil",
                                                         "ipcc2006-t2.3-natural_gas-co2", "ghgp-onsite-renewable"}
    assert doc["instruments"][0]["claimed_kwh"] == pytest.approx(30000.0)
    cats = {c["category"]: c for c in doc["iso14064_categories"]}
    assert cats["2"]["market_co2e_kg"] == t["scope2_market_co2e_kg"] and cats["3"]["quantified"] is False
    products = doc["products"]
    total = sum(p["total_co2e_kg"] for p in products["products"])
    assert total == pytest.approx(t["scope1_co2e_kg"] + 100000 * 0.5366 + 20000 * 0.5366, rel=1e-9)
    assert products["cbam"][0]["product"] == "board-a" and "ISO 14067" in products["method"]


def test_digest_is_reproducible_and_input_sensitive(inputs):
    recs, al, reg = inputs
    assert inputs_digest(recs, reg, al, CFG) == inputs_digest(list(reversed(recs)), reg, al, CFG)
    assert inputs_digest(recs[1:], reg, al, CFG) != inputs_digest(recs, reg, al, CFG)


def test_csv_report(inputs, tmp_path):
    inv, out = write(inputs, "csv", tmp_path, "csv")
    rows = list(csv.DictReader(out.open()))
    totals = {(r["row"], r["field"]): r["value"] for r in rows if r["section"] == "Totals"}
    assert round(float(totals[("0", "location_based")]), 2) == 17489.21
    assert round(float(totals[("1", "market_based")]), 1) == 52704.0
    report = [r for r in rows if r["section"] == "Report"]
    meta = {k["value"]: v["value"] for k, v in zip(report[0::2], report[1::2])}
    assert meta["inputs_sha256"] == inv["inputs_sha256"]


def test_xlsx_report_opens_and_totals_match(inputs, tmp_path):
    inv, out = write(inputs, "xlsx", tmp_path, "xlsx")
    wb = openpyxl.load_workbook(out)
    rows = list(wb["Totals"].iter_rows(values_only=True))
    assert rows[0] == ("figure", "location_based", "market_based", "unit")
    assert round(rows[1][1], 2) == 17489.21 and round(rows[2][1], 1) == 64392.0 and round(rows[2][2], 1) == 52704.0
    meta = dict(wb["Report"].iter_rows(min_row=2, values_only=True))
    assert meta["inputs_sha256"] == inv["inputs_sha256"]
    assert wb["Records"].max_row == len(inputs[0]) + 1
    assert "CBAM" in wb.sheetnames and "Factor appendix" in wb.sheetnames


@pytest.mark.skipif(not shutil.which("pdftoppm"), reason="poppler-utils not installed")
def test_pdf_report_renders_and_shows_the_json_totals(inputs, tmp_path):
    inv, out = write(inputs, "pdf", tmp_path, "pdf")
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-f", "1", "-l", "1", str(out), str(tmp_path / "page")], check=True)
    png = tmp_path / "page-1.png"
    assert png.exists() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
    text = subprocess.run(["pdftotext", "-layout", str(out), "-"], check=True, capture_output=True, text=True).stdout
    t = inv["totals"]
    for v in (t["scope1_co2e_kg"], t["scope2_location_co2e_kg"], t["scope2_market_co2e_kg"]):
        assert f"{v:,.2f}" in text
    assert "17,489.21" in text and "64,392.00" in text and "52,704.00" in text
    assert inv["inputs_sha256"] in text.replace("\n", " ")
    assert "Method statement" in text and "Factor appendix" in text


def test_pact_output_validates(inputs, tmp_path):
    import jsonschema

    inv, out = write(inputs, "pact", tmp_path, "json")
    doc = json.loads(out.read_text())
    validate_pact(doc)
    a = next(p for p in doc["data"] if p["productNameCompany"] == "board-a")
    per_unit = next(p for p in inv["products"]["products"] if p["product"] == "board-a")["co2e_kg_per_unit"]
    assert float(a["pcf"]["pcfExcludingBiogenicUptake"]) == pytest.approx(per_unit, abs=1e-6)
    assert a["pcf"]["ipccCharacterizationFactors"] == ["AR5"] and a["pcf"]["productMassPerDeclaredUnit"] == "0.25"
    assert inv["inputs_sha256"] in a["comment"]
    bad = pact_document(inv, "CN")
    bad["data"][0]["pcf"]["pcfExcludingBiogenicUptake"] = 1.5  # a number, not a decimal string
    with pytest.raises(jsonschema.ValidationError):
        validate_pact(bad)


def test_report_refuses_empty_records_and_unknown_format(inputs, tmp_path):
    recs, al, reg = inputs
    with pytest.raises(ValueError, match="unknown report format"):
        write_report(recs, al, reg, "docx", tmp_path / "x", (T0, T1), "example", CFG)
    with pytest.raises(ValueError, match="no emissions records"):
        write_report([], al, reg, "json", tmp_path / "x", (T0, T1), "example", CFG)
