"""``factory-twin simulate``: reproducible, internally consistent, and the JSON contract of the issue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.store import Store

ROOT = Path(__file__).resolve().parents[2]
SMT = str(ROOT / "configs" / "demo_smt.yaml")
MACHINING = str(ROOT / "configs" / "demo_machining.yaml")
runner = CliRunner()

KPI_KEYS = {"pbt_s", "apt_s", "asut_s", "adet_s", "adot_s", "produced", "good", "scrap", "rework", "availability",
            "performance", "quality", "oee", "mtbf_s", "mttr_s", "energy_kwh", "kwh_per_good", "co2e_kg"}


def simulate(*args: str) -> tuple[dict, str]:
    result = runner.invoke(app, ["simulate", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout), result.stdout


@pytest.fixture(scope="module")
def smt_day():
    return simulate(SMT, "--hours", "24", "--seed", "7", "--window", "8h", "--no-store")


def test_same_seed_same_json(smt_day):
    _, text = smt_day
    _, again = simulate(SMT, "--hours", "24", "--seed", "7", "--window", "8h", "--no-store")
    assert again == text
    other, _ = simulate(SMT, "--hours", "24", "--seed", "8", "--window", "8h", "--no-store")
    assert other["site"] != json.loads(text)["site"]


def test_contract_fields(smt_day):
    doc, _ = smt_day
    for item in [*doc["stations"], *doc["lines"], doc["site"], *doc["windows"]]:
        assert KPI_KEYS <= set(item), KPI_KEYS - set(item)
        assert item["site"] == "suzhou-smt"
    assert {"line", "station"} <= set(doc["stations"][0])
    assert "line" in doc["lines"][0] and "station" not in doc["lines"][0]
    assert len(doc["windows"]) == 3 * (len(doc["stations"]) + len(doc["lines"]) + 1)
    em = doc["emissions"]
    assert {"scope1_co2e_kg", "scope2_location_co2e_kg", "by_source", "hours", "origin", "meters"} <= set(em)
    assert "scope2_market_co2e_kg" not in em and em["origin"] == ["simulated"]  # market: by `report` (issue 11)
    for b in em["by_source"]:
        assert {"source", "scope", "method", "activity", "activity_unit", "co2e_kg", "co2_kg", "ch4_kg", "n2o_kg",
                "factor_id"} <= set(b)
    assert em["scope1_co2e_kg"] > 0  # the gas boiler
    assert em["scope2_location_co2e_kg"] > 0


def test_oee_is_the_product_of_its_factors(smt_day):
    doc, _ = smt_day
    for item in [*doc["stations"], *doc["lines"], doc["site"], *doc["windows"]]:
        factors = (item["availability"], item["performance"], item["quality"])
        if None in factors:
            assert item["oee"] is None
        else:
            assert item["oee"] == pytest.approx(factors[0] * factors[1] * factors[2], rel=1e-12)


def test_windows_add_up_to_the_run(smt_day):
    doc, _ = smt_day
    for st in doc["stations"]:
        wins = [w for w in doc["windows"] if w.get("station") == st["station"]]
        for key in ("apt_s", "pbt_s", "adet_s", "produced", "scrap"):
            assert sum(w[key] for w in wins) == pytest.approx(st[key], rel=1e-9, abs=1e-6), key
        assert sum(w["energy_kwh"] for w in wins) == pytest.approx(st["energy_kwh"], rel=1e-9)


def test_line_figures_come_from_sums_not_averages(smt_day):
    doc, _ = smt_day
    (line,) = doc["lines"]
    stations = doc["stations"]
    assert line["apt_s"] == pytest.approx(sum(s["apt_s"] for s in stations))
    assert line["pbt_s"] == pytest.approx(sum(s["pbt_s"] for s in stations))
    assert line["availability"] == pytest.approx(line["apt_s"] / line["pbt_s"])
    assert line["scrap"] == sum(s["scrap"] for s in stations)
    assert line["good"] == next(s["good"] for s in stations if s["station"] == "pack")
    assert line["produced"] == line["good"] + line["scrap"]


def test_parallel_machines_report_each_machine(tmp_path):
    doc, _ = simulate(MACHINING, "--hours", "16", "--seed", "1", "--store", str(tmp_path / "t.sqlite"))
    names = [s["station"] for s in doc["stations"]]
    assert {"cnc-1", "cnc-2", "cnc-3"} <= set(names)
    assert doc["sinks"]["store"]["written"] > 0
    with Store(tmp_path / "t.sqlite") as store:
        rows = store.kpis(level="station")
        assert {r.station for r in rows} == set(names)
        assert store.emissions()
        uses = store.product_use()
        assert {u["product"] for u in uses} <= {"pump-housing", "valve-body"}
        assert sum(u["machine_time_s"] for u in uses if u["station"] == "cnc-1") == pytest.approx(
            next(s["apt_s"] for s in doc["stations"] if s["station"] == "cnc-1"), rel=1e-9)


def test_report_from_a_simulated_week_allocates_to_products(tmp_path):
    store = tmp_path / "week.sqlite"
    simulate(SMT, "--hours", "48", "--store", str(store))
    out = tmp_path / "report.json"
    result = runner.invoke(app, ["report", "--store", str(store), "--origin", "simulated", "--from", "2026-01-01",
                                 "--to", "2026-01-10", "--format", "json", "--out", str(out), "--config", SMT, "--json"])
    assert result.exit_code == 0, result.output
    inv = json.loads(out.read_text())
    alloc = inv["products"]
    assert "machine time" in alloc["method"]
    products = {p["product"]: p for p in alloc["products"]}
    assert set(products) == {"ctrl-board", "power-board"}
    assert all(p["good_units"] > 0 and p["co2e_kg_per_unit"] > 0 for p in products.values())
    # every kg of the inventory lands on some product (location-based Scope 1 + 2)
    assert sum(p["total_co2e_kg"] for p in products.values()) == pytest.approx(
        inv["totals"]["total_location_co2e_kg"], rel=1e-9)
    assert {c["product"] for c in alloc["cbam"]} == set(products)


def test_warmup_is_simulated_but_left_out_of_the_kpis(tmp_path):
    cfg = tmp_path / "warm.yaml"
    cfg.write_text(Path(SMT).read_text().replace("warmup_s: 0", "warmup_s: 3600"))
    doc, _ = simulate(str(cfg), "--hours", "2", "--no-store")
    assert doc["warmup_s"] == 3600
    assert (doc["start"], doc["end"]) == ("2026-01-04T17:00:00.000Z", "2026-01-04T19:00:00.000Z")
    for st in doc["stations"]:
        assert st["pot_s"] + st["unknown_s"] <= 7200 + 1e-6
