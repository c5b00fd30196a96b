"""CBAM report contents per good (Implementing Regulation (EU) 2023/1773, Annex I) on the worked quarter
of tests/support/carbon_exchange.py, every figure computed by hand below."""

import json

import pytest

from carbon.exchange_config import CbamGood, CbamInstallation, CbamSettings
from carbon.reports.cbam import cbam_document, reporting_quarter, table_rows, write_cbam
from factory_models import ConfigError
from tests.support.carbon_exchange import inventory

CBAM = CbamSettings(
    installation=CbamInstallation(id="CN-SH-0001", name="Plant 1", country="CN", address="1 Example Road",
                                  city="Shanghai", unlocode="CNSHA", latitude=31.23, longitude=121.47),
    goods={"board-a": CbamGood(cn_code="85340011", production_route="SMT assembly, reflow"),
           "board-b": CbamGood(cn_code="85340019", production_route="SMT assembly, reflow",
                               direct_default_t_per_t=0.9, direct_default_source="Commission default values, Q1 2026"),
           "spare": CbamGood(cn_code="85340090", production_route="SMT assembly")})


@pytest.fixture(scope="module")
def doc():
    return cbam_document(inventory("measured"), CBAM)


def test_site_electricity_counts_self_generated_power_without_the_grid_factor(doc):
    e = doc["electricity"]
    # grid 216 MWh at 0.55 t/MWh = 118.8 t; PV self-consumed 43.2 MWh at 0; consumed 259.2 MWh
    assert (e["grid_import_mwh"], e["self_generated_consumed_mwh"], e["consumed_mwh"]) == (216.0, 43.2, 259.2)
    assert e["grid_emission_factor_t_co2e_per_mwh"] == pytest.approx(0.55)
    assert e["self_generated_emission_factor_t_co2e_per_mwh"] == 0.0
    assert e["emission_factor_t_co2e_per_mwh"] == pytest.approx(118.8 / 259.2, abs=1e-6)  # 0.458333
    assert e["self_generated_share_pct"] == pytest.approx(16.667)  # 43.2 / 259.2
    assert e["grid_emission_factor_source"][0]["factor_id"] == "cn-mee-2023-grid-east"
    assert e["grid_emission_factor_source"][0]["document"]
    assert e["self_generated_emission_factor_source"][0]["factor_id"] == "ghgp-onsite-renewable"


def test_goods_hold_the_annex_i_figures_computed_by_hand(doc):
    a, b = doc["goods"]
    assert (a["product"], a["cn_code"], a["installation_id"]) == ("board-a", "85340011", "CN-SH-0001")
    assert a["production_route"] == "SMT assembly, reflow" and a["country_of_production"] == "CN"
    # A: 100,000 x 0.5 kg = 50 t; direct 32.4 t / 50 t = 0.648; electricity 194.4 MWh / 50 t = 3.888 MWh/t;
    # indirect 3.888 x 118.8 / 259.2 = 1.782 t/t; total 2.43 t/t, 121.5 t embedded
    assert a["quantity_t"] == pytest.approx(50.0)
    assert a["direct"]["specific_embedded_emissions_t_co2e_per_t"] == pytest.approx(0.648)
    assert a["direct"]["determination"] == "actual" and a["direct"]["estimated_share_pct"] == 0.0
    assert a["indirect"]["electricity_consumed_mwh_per_t"] == pytest.approx(3.888)
    assert a["indirect"]["specific_embedded_emissions_t_co2e_per_t"] == pytest.approx(1.782, abs=1e-6)
    assert a["indirect"]["estimated_share_pct"] == pytest.approx(10.0)  # 216 of 2160 grid hours estimated
    assert a["total_specific_embedded_emissions_t_co2e_per_t"] == pytest.approx(2.43, abs=1e-6)
    assert a["embedded_emissions_t_co2e"] == pytest.approx(121.5, abs=1e-4)
    # B: 20 t; direct from the configured default 0.9 t/t; electricity 64.8 / 20 = 3.24 MWh/t, indirect
    # 3.24 x 0.458333 = 1.485 t/t (actual); total 2.385 t/t
    assert b["direct"] == {"specific_embedded_emissions_t_co2e_per_t": 0.9, "determination": "default",
                           "source": "Commission default values, Q1 2026", "estimated_share_pct": None}
    assert b["indirect"]["specific_embedded_emissions_t_co2e_per_t"] == pytest.approx(1.485, abs=1e-6)
    assert b["total_specific_embedded_emissions_t_co2e_per_t"] == pytest.approx(2.385, abs=1e-6)
    # the indirect tonnes of both goods are the grid's 118.8 t: nothing counted twice, PV at 0
    assert 50 * 1.782 + 20 * 1.485 == pytest.approx(118.8)
    assert doc["not_reported"] == [{"product": "spare", "reason": "no good unit made in the period"}]
    assert doc["reporting_period"] == "2026-Q1" and doc["notes"] == []
    assert doc["installation"]["unlocode"] == "CNSHA" and doc["installation"]["latitude"] == 31.23


def test_simulated_data_is_labelled_not_for_filing():
    doc = cbam_document(inventory("simulated"), CBAM)
    assert doc["goods"][0]["direct"]["determination"] == "simulated"
    assert doc["goods"][0]["indirect"]["determination"] == "simulated"
    assert any("not for filing" in n for n in doc["notes"])


def test_a_period_that_is_not_a_quarter_is_said(doc):
    inv = inventory("measured")
    inv["period"] = {**inv["period"], "end": "2026-02-28T16:00:00.000Z"}
    assert reporting_quarter(inv) is None
    assert reporting_quarter({"period": {"start": "2025-12-31T16:00:00Z", "end": "2026-03-31T16:00:00Z",
                                         "timezone": "Asia/Shanghai"}}) == "2026-Q1"
    # the same instants are not a quarter in UTC
    assert reporting_quarter({"period": {"start": "2025-12-31T16:00:00Z", "end": "2026-03-31T16:00:00Z",
                                         "timezone": "UTC"}}) is None


def test_written_file_and_table_rows(tmp_path, doc):
    inv = inventory("measured")
    out = tmp_path / "cbam.json"
    write_cbam(inv, out, CBAM)
    assert json.loads(out.read_text())["goods"] == doc["goods"]
    rows = table_rows(doc)
    assert rows[0][:3] == ["board-a", "85340011", "CN-SH-0001"] and rows[1][6] == "default"
    with pytest.raises(ConfigError, match="carbon.cbam"):
        write_cbam(inv, out, None)


def test_bad_cbam_config_is_refused():
    with pytest.raises(ValueError, match="cn_code"):
        CbamGood(cn_code="8534", production_route="x")
    with pytest.raises(ValueError, match="together"):
        CbamGood(cn_code="85340011", production_route="x", direct_default_t_per_t=1.0)
    with pytest.raises(ValueError, match="unlocode"):
        CbamInstallation(id="x", name="x", country="CN", unlocode="shanghai")


def test_other_formats_show_the_annex_i_table(tmp_path):
    import csv
    import subprocess

    from carbon import Registry, write_report
    from tests.support.carbon_exchange import CFG, SITE, T0, T1, TZ, allocation, records

    cfg = CFG.model_copy(update={"cbam": CBAM})
    inv = write_report(records(), allocation(), Registry.default(), "csv", tmp_path / "r.csv", (T0, T1), SITE, cfg,
                       tz=TZ)
    assert inv["cbam"]["goods"][0]["cn_code"] == "85340011"
    rows = [r for r in csv.DictReader((tmp_path / "r.csv").open()) if r["section"] == "CBAM"]
    cells = {(r["row"], r["field"]): r["value"] for r in rows}
    assert cells[("0", "cn_code")] == "85340011" and float(cells[("0", "direct_see_t_co2e_per_t")]) == 0.648
    assert cells[("1", "direct_determination")] == "default"
    write_report(records(), allocation(), Registry.default(), "pdf", tmp_path / "r.pdf", (T0, T1), SITE, cfg, tz=TZ)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "r.pdf"), "-"], check=True, capture_output=True,
                          text=True).stdout
    assert "85340011" in text and "CN-SH-0001" in text
    import openpyxl

    write_report(records(), allocation(), Registry.default(), "xlsx", tmp_path / "r.xlsx", (T0, T1), SITE, cfg, tz=TZ)
    sheet = list(openpyxl.load_workbook(tmp_path / "r.xlsx")["CBAM"].iter_rows(values_only=True))
    assert sheet[0][:2] == ("product", "cn_code") and sheet[2][1] == "85340019"
    write_report(records(), allocation(), Registry.default(), "cbam", tmp_path / "c.json", (T0, T1), SITE, cfg, tz=TZ)
    assert json.loads((tmp_path / "c.json").read_text())["goods"][1]["direct"]["determination"] == "default"


def test_a_partly_covered_period_is_never_presented_as_complete():
    from carbon import Registry, build_inventory
    from carbon.reports.pact import pact_document
    from tests.support.carbon_exchange import (
        CFG,
        PACT,
        SITE,
        T0,
        T1,
        TZ,
        allocation,
        records,
    )

    # the quarter's records in a period one day longer: 2160 of 2184 hours have data
    inv = build_inventory(records(), Registry.default(), (T0, T1 + 86400), SITE, allocation(), CFG, TZ)
    doc = cbam_document(inv, CBAM)
    assert any("2160 of 2184 hours" in n for n in doc["notes"]) and doc["reporting_period"] is None
    pf = pact_document(inv, PACT, "CN")["data"][0]
    assert "2160 of 2184 hours" in pf["comment"] and "only partly covered" in pf["comment"]
