"""`factory-twin report` from the command line: a simulated day of the demo reported per local day
(no error for the product that finished nothing), an unknown factor id named with file and field,
and --origin checked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "configs" / "demo_smt.yaml")
runner = CliRunner()


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    store = tmp_path_factory.mktemp("demo") / "s.sqlite"
    r = runner.invoke(app, ["simulate", CONFIG, "--hours", "24", "--seed", "1", "--store", str(store), "--json"])
    assert r.exit_code == 0, r.output
    return store, json.loads(r.stdout)


def report(store, tmp_path, *args):
    out = tmp_path / "r.json"
    r = runner.invoke(app, ["report", "--store", str(store), "--config", CONFIG, "-f", "json", "-o", str(out),
                            "--json", *args])
    return r, out


def test_the_demo_day_reports_and_the_unmade_product_is_a_note(demo_store, tmp_path):
    store, sim = demo_store
    # the run starts at local midnight of 5 January (16:00Z on the 4th): that local day is the run
    assert sim["start"] == "2026-01-04T16:00:00.000Z"
    r, out = report(store, tmp_path, "--from", "2026-01-05", "--to", "2026-01-06", "--origin", "simulated")
    assert r.exit_code == 0, r.output
    inv = json.loads(out.read_text())
    em = sim["emissions"]
    for key in ("scope1_co2e_kg", "scope2_location_co2e_kg"):
        assert inv["totals"][key] == pytest.approx(em[key], rel=1e-9, abs=1e-9)
    assert inv["coverage"]["complete"] and inv["coverage"]["hours_in_period"] == 24
    products = {p["product"]: p for p in inv["products"]["products"]}
    assert set(products) == {"ctrl-board", "power-board"}
    unmade = [p for p in products.values() if p["good_units"] == 0]
    for p in unmade:  # the demo's first day finishes no ctrl-board: zero and a note, not an error
        assert p["total_co2e_kg"] == 0.0
        assert any(n.startswith(f"product {p['product']}: no good unit in the period") for n in inv["notes"])
    assert sum(p["total_co2e_kg"] for p in products.values()) == pytest.approx(
        inv["totals"]["total_location_co2e_kg"], rel=1e-9)


def test_measured_is_the_default_and_names_the_other_origin(demo_store, tmp_path):
    store, _ = demo_store
    r, _ = report(store, tmp_path, "--from", "2026-01-05", "--to", "2026-01-06")
    assert r.exit_code == 2 and "no measured emissions records" in r.stderr and "--origin simulated" in r.stderr
    r, _ = report(store, tmp_path, "--from", "2026-01-05", "--to", "2026-01-06", "--origin", "both")
    assert r.exit_code == 2 and "--origin 'both': expected measured or simulated" in r.stderr


def test_unknown_factor_id_is_a_config_error_with_file_and_field(demo_store, tmp_path):
    store, _ = demo_store
    carbon_yaml = tmp_path / "carbon.yaml"
    carbon_yaml.write_text("carbon:\n  residual_factor: cn-mee-2023-no-such-factor\n", encoding="utf-8")
    r, _ = report(store, tmp_path, "--from", "2026-01-05", "--to", "2026-01-06", "--origin", "simulated",
                  "--carbon", str(carbon_yaml))
    assert r.exit_code == 2, r.output
    err = r.stderr.strip()
    assert err.startswith(f"factory-twin: {carbon_yaml}: residual_factor:") and "cn-mee-2023-no-such-factor" in err
    assert "Traceback" not in r.output and len(err.splitlines()) == 1


def test_a_local_day_inside_a_three_day_simulation(tmp_path):
    store = tmp_path / "three.sqlite"
    r = runner.invoke(app, ["simulate", CONFIG, "--hours", "72", "--seed", "3", "--store", str(store), "--json"])
    assert r.exit_code == 0, r.output
    days = []
    for a, b in (("2026-01-05", "2026-01-06"), ("2026-01-06", "2026-01-07"), ("2026-01-07", "2026-01-08")):
        r, out = report(store, tmp_path, "--from", a, "--to", b, "--origin", "simulated")
        assert r.exit_code == 0, r.output
        days.append(json.loads(out.read_text()))
    r, out = report(store, tmp_path, "--from", "2026-01-05", "--to", "2026-01-08", "--origin", "simulated")
    whole = json.loads(out.read_text())
    for key in ("scope1_co2e_kg", "scope2_location_co2e_kg", "scope2_market_co2e_kg"):
        assert sum(d["totals"][key] for d in days) == pytest.approx(whole["totals"][key], abs=1e-6)
    for d in days:  # each day has its own products, from the hourly machine time
        assert d["coverage"]["hours_in_period"] == 24 and d["coverage"]["complete"]
        assert d["products"] and sum(p["good_units"] for p in d["products"]["products"]) > 0
        assert sum(p["total_co2e_kg"] for p in d["products"]["products"]) == pytest.approx(
            d["totals"]["total_location_co2e_kg"], rel=1e-9)
    assert sum(sum(p["good_units"] for p in d["products"]["products"]) for d in days) == sum(
        p["good_units"] for p in whole["products"]["products"])
