"""Report files: the worked example's totals in JSON, CSV, XLSX, PDF (rendered and read back) and PACT."""

import csv
import json
import shutil
import subprocess
from datetime import datetime, timezone

import openpyxl
import pytest
from support.ledger_rows import hours_of

from carbon import (
    CarbonConfig,
    Instrument,
    ProductOutput,
    Registry,
    SharedLoad,
    StationUse,
    allocate,
    inputs_digest,
    write_report,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp()
T1 = datetime(2026, 2, 1, tzinfo=timezone.utc).timestamp()
N = 31 * 24
CFG = CarbonConfig(grid_factor="cn-mee-2022-national", residual_factor="cn-mee-2022-excl-nonfossil",
                   instruments=[Instrument(id="GEC-1", kind="gec", kwh=30000, vintage=2026, market="CN", retired=True)])


@pytest.fixture(scope="module")
def inputs():
    """January 2026 by hand: 8,000 Nm3 of gas at 2.1861 kg CO2e/Nm3, 120,000 kWh imported at 0.5366
    kg/kWh (one hour estimated), 15,000 kWh of PV self-consumed."""
    reg = Registry.default()
    recs = (hours_of("example", "boiler", "1", "direct", "Nm3", T0, N, 8000.0 / N, 2.1861,
                     factor_id="ipcc2006-t2.3-natural_gas-co2+gwp-ar5")
            + hours_of("example", "grid", "2", "location", "kWh", T0, N, 120000.0 / N, 0.5366,
                       factor_id="cn-mee-2022-national", estimated=(50,))
            + hours_of("example", "pv", "2", "onsite", "kWh", T0, N, 15000.0 / N, 0.0, factor_id="ghgp-onsite-renewable"))
    s1 = 8000 * 2.1861
    # grid at the site's effective intensity: 64,392 kg over 120,000 + 15,000 kWh consumed
    eff = 64392.0 / 135000.0
    al = allocate([StationUse("smt/printer", 40000.0, machine_time_s={"board-a": 2e6, "board-b": 1e6}),
                   StationUse("smt/reflow", 60000.0, machine_time_s={"board-a": 1.5e6, "board-b": 1.5e6})],
                  [ProductOutput("board-a", 20000, 0.25), ProductOutput("board-b", 10000, None)],
                  [SharedLoad("boiler", "fuel", s1), SharedLoad("lighting", "electricity", 35000 * eff, 35000.0)], eff)
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
    assert (round(t["scope1_co2e_kg"], 6), round(t["scope2_location_co2e_kg"], 6), round(t["scope2_market_co2e_kg"], 6)) \
        == (17488.8, 64392.0, 52704.0)  # market: (120,000 - 30,000 kWh) x 0.5856
    assert t["onsite_renewable_kwh"] == pytest.approx(15000.0)
    assert doc["inputs_sha256"] == inputs_digest(inputs[0], inputs[2], inputs[1], CFG)
    assert doc["gap_filled_records"] == 1  # the one estimated grid hour
    grid_dq = next(d for d in doc["data_quality"] if d["source"] == "grid")
    assert grid_dq["gap_filled_records"] == 1 and 0 < grid_dq["gap_filled_share"] < 0.01
    assert {f["id"] for f in doc["factor_appendix"]} >= {"cn-mee-2022-national", "cn-mee-2022-excl-nonfossil",
                                                         "ipcc2006-t2.3-natural_gas-co2", "ghgp-onsite-renewable"}
    assert doc["instruments"][0]["claimed_kwh"] == pytest.approx(30000.0)
    cats = {c["category"]: c for c in doc["iso14064_categories"]}
    assert cats["2"]["market_co2e_kg"] == t["scope2_market_co2e_kg"] and cats["3"]["quantified"] is False
    products = doc["products"]
    total = sum(p["total_co2e_kg"] for p in products["products"])
    assert total == pytest.approx(t["scope1_co2e_kg"] + 64392.0, rel=1e-9)
    assert products["cbam"][0]["product"] == "board-a" and "ISO 14067" in products["method"]


def test_digest_is_reproducible_and_input_sensitive(inputs):
    recs, al, reg = inputs
    assert inputs_digest(recs, reg, al, CFG) == inputs_digest(list(reversed(recs)), reg, al, CFG)
    assert inputs_digest(recs[1:], reg, al, CFG) != inputs_digest(recs, reg, al, CFG)


def test_csv_report(inputs, tmp_path):
    inv, out = write(inputs, "csv", tmp_path, "csv")
    rows = list(csv.DictReader(out.open()))
    totals = {(r["row"], r["field"]): r["value"] for r in rows if r["section"] == "Totals"}
    assert round(float(totals[("0", "location_based")]), 2) == 17488.8
    assert round(float(totals[("1", "market_based")]), 1) == 52704.0
    report = [r for r in rows if r["section"] == "Report"]
    meta = {k["value"]: v["value"] for k, v in zip(report[0::2], report[1::2])}
    assert meta["inputs_sha256"] == inv["inputs_sha256"]


def test_xlsx_report_opens_and_totals_match(inputs, tmp_path):
    inv, out = write(inputs, "xlsx", tmp_path, "xlsx")
    wb = openpyxl.load_workbook(out)
    rows = list(wb["Totals"].iter_rows(values_only=True))
    assert rows[0] == ("figure", "location_based", "market_based", "unit")
    assert round(rows[1][1], 2) == 17488.8 and round(rows[2][1], 1) == 64392.0 and round(rows[2][2], 1) == 52704.0
    meta = dict(wb["Report"].iter_rows(min_row=2, values_only=True))
    assert meta["inputs_sha256"] == inv["inputs_sha256"]
    assert wb["Hours"].max_row == 31 * 24 + 1  # every clock hour of January, one row each
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
    assert "17,488.80" in text and "64,392.00" in text and "52,704.00" in text
    assert inv["inputs_sha256"] in text.replace("\n", " ")
    assert "Method statement" in text and "Factor appendix" in text


def test_report_refuses_empty_records_and_unknown_format(inputs, tmp_path):
    recs, al, reg = inputs
    with pytest.raises(ValueError, match="unknown report format"):
        write_report(recs, al, reg, "docx", tmp_path / "x", (T0, T1), "example", CFG)
    with pytest.raises(ValueError, match="no emissions records"):
        write_report([], al, reg, "json", tmp_path / "x", (T0, T1), "example", CFG)
