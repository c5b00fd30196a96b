"""The carbon worked example of docs/carbon.md, through ``replay`` and ``report``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from twin.cli import app

DATA = Path(__file__).parents[1] / "data"
CONFIG = str(DATA / "carbon_example.yaml")
SAMPLES = str(DATA / "carbon_example.csv")
runner = CliRunner()


def invoke_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def by(doc, source, method):
    return [b for b in doc["emissions"]["by_source"] if b["source"] == source and b["method"] == method]


def test_worked_example_through_replay():
    doc = invoke_json("replay", CONFIG, SAMPLES, "--no-store")
    em = doc["emissions"]
    assert em["scope1_co2e_kg"] == pytest.approx(17_489.21, abs=0.005)
    assert em["scope2_location_co2e_kg"] == pytest.approx(64_392.0, abs=1e-6)
    # market-based figures are made by `report` (certificates claimed once per period), not by runs
    assert "scope2_market_co2e_kg" not in em and by(doc, "grid", "market") == []
    assert em["origin"] == ["measured"] and em["hours"] > 0
    (gas,) = by(doc, "boiler", "direct")
    assert gas["activity"] == 8_000 and gas["activity_unit"] == "Nm3"
    assert gas["co2_kg"] == pytest.approx(17_472.23, abs=0.005)
    assert gas["ch4_kg"] == pytest.approx(0.311448, abs=1e-6)
    assert gas["n2o_kg"] == pytest.approx(0.0311448, abs=1e-6)
    (pv,) = by(doc, "rooftop-pv", "onsite")
    assert (pv["activity"], pv["co2e_kg"]) == (15_000, 0)
    assert doc["site"]["co2e_kg"] == pytest.approx(17_489.21 + 64_392.0, abs=0.005)


def test_ets_factor_and_ndrc_method():
    doc = invoke_json("replay", CONFIG, SAMPLES, "--no-store", "--carbon", str(DATA / "carbon_example_ets_ndrc.yaml"))
    em = doc["emissions"]
    assert em["scope2_location_co2e_kg"] == pytest.approx(68_436.0, abs=1e-6)
    (gas,) = by(doc, "boiler", "direct")
    assert gas["co2_kg"] == pytest.approx(17_297.51, abs=0.005)


def test_station_co2e_uses_the_configured_grid_factor():
    doc = invoke_json("replay", str(DATA / "worked_example.yaml"), str(DATA / "worked_example.csv"), "--no-store")
    assert doc["stations"][0]["co2e_kg"] == pytest.approx(44.7210, abs=1e-4)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("store") / "twin.sqlite"
    invoke_json("replay", CONFIG, SAMPLES, "--store", str(path))
    return path


def report(store, fmt, out):
    return invoke_json("report", "--store", str(store), "--from", "2022-06-01", "--to", "2022-07-01",
                       "--format", fmt, "--out", str(out), "--config", CONFIG)


def test_report_json_totals(store, tmp_path):
    summary = report(store, "json", tmp_path / "r.json")
    inv = json.loads((tmp_path / "r.json").read_text())
    t = inv["totals"]
    assert t["scope1_co2e_kg"] == pytest.approx(17_489.21, abs=0.005)
    assert t["scope2_location_co2e_kg"] == pytest.approx(64_392.0)
    assert t["scope2_market_co2e_kg"] == pytest.approx(52_704.0)
    assert t["onsite_renewable_kwh"] == pytest.approx(15_000.0)
    assert len(inv["inputs_sha256"]) == 64 and summary["inputs_sha256"] == inv["inputs_sha256"]
    # the same store and period give the same digest: a report can be reproduced and checked
    again = report(store, "json", tmp_path / "r2.json")
    assert again["inputs_sha256"] == summary["inputs_sha256"]


def test_report_xlsx_totals(store, tmp_path):
    report(store, "xlsx", tmp_path / "r.xlsx")
    wb = openpyxl.load_workbook(tmp_path / "r.xlsx", read_only=True)
    cells = [c for ws in wb.worksheets for row in ws.iter_rows(values_only=True) for c in row if c is not None]
    numbers = {round(c, 2) for c in cells if isinstance(c, float | int)}
    assert {17_489.21, 64_392.0, 52_704.0} <= numbers


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils not installed (scripts/setup.sh installs it)")
def test_report_pdf_shows_the_totals(store, tmp_path):
    report(store, "pdf", tmp_path / "r.pdf")
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], capture_output=True, text=True,
                          check=True).stdout
    for figure in ("17,489.21", "64,392.00", "52,704.00"):
        assert figure in text, figure
    subprocess.run(["pdftoppm", "-png", "-r", "50", "-f", "1", "-l", "1", str(tmp_path / "r.pdf"), str(tmp_path / "page")],
                   check=True)
    assert list(tmp_path.glob("page*.png"))


def test_unknown_factor_id_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("carbon:\n  grid_factor: cn-mee-1999-imaginary\n")
    result = runner.invoke(app, ["replay", CONFIG, SAMPLES, "--no-store", "--carbon", str(bad), "--json"])
    assert result.exit_code == 2
    assert "cn-mee-1999-imaginary" in result.output


def test_report_pact_validates_and_csv_carries_the_digest(tmp_path):
    from carbon.reports.pact import validate_pact

    store, carbon_file = tmp_path / "s.sqlite", tmp_path / "carbon.yaml"
    carbon_file.write_text("carbon:\n  pact:\n    exempted_emissions_percent: 70\n    products:\n"
                           "      ctrl-board: {fossil_carbon_content_kg: 0.012}\n"
                           "      power-board: {fossil_carbon_content_kg: 0.03}\n")
    invoke_json("simulate", str(Path(__file__).resolve().parents[2] / "configs" / "demo_smt.yaml"),
                "--hours", "24", "--store", str(store))
    args = ["--store", str(store), "--origin", "simulated", "--from", "2026-01-01", "--to", "2026-01-10",
            "--config", str(Path(__file__).resolve().parents[2] / "configs" / "demo_smt.yaml"), "--carbon", str(carbon_file)]
    summary = invoke_json("report", *args, "--format", "pact", "--out", str(tmp_path / "pcf.json"))
    doc = json.loads((tmp_path / "pcf.json").read_text())
    validate_pact(doc)  # the v3 schema, carbon/schemas/pact_v3_product_footprint.json
    footprints = [item["pcf"] for item in doc["data"]]
    assert len(footprints) == 2
    for pcf in footprints:
        assert {"declaredUnitOfMeasurement", "referencePeriodStart", "referencePeriodEnd",
                "pcfExcludingBiogenicUptake", "ipccCharacterizationFactors"} <= set(pcf)
    csv_summary = invoke_json("report", *args, "--format", "csv", "--out", str(tmp_path / "r.csv"))
    assert csv_summary["inputs_sha256"] == summary["inputs_sha256"]
    assert summary["inputs_sha256"] in (tmp_path / "r.csv").read_text()
