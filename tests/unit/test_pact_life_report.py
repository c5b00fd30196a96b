"""``factory-twin report --format pact`` publishes into the store's footprint table, and the file it
writes holds what the store (and so the PACT API) serves: the same documents, ids and life cycle.

A day of the demo plant simulated (seed 1): power-board made good units (ctrl-board none, so it has
no footprint). Changing power-board's configured fossil carbon content from 0.03 to 0.04 kg C a piece
is a change of the footprint (``pcf.fossilCarbonContent`` "0.03" -> "0.04") with the same CO2e, so
the next report supersedes it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from uuid import UUID

import pytest
from typer.testing import CliRunner

from carbon.reports.pact import footprint_id, validate_pact
from twin.cli import app
from twin.pact_api.repository import FootprintRepository

CONFIG = str(Path(__file__).resolve().parents[2] / "configs" / "demo_smt.yaml")
CARBON = """\
carbon:
  pact:
    domain: example.com
    exempted_emissions_percent: 70
    products:
      ctrl-board: {fossil_carbon_content_kg: 0.012}
      power-board: {fossil_carbon_content_kg: %s}
"""


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    store = d / "s.sqlite"
    result = CliRunner().invoke(app, ["simulate", CONFIG, "--hours", "24", "--seed", "1", "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    return d, store


def _report(d: Path, store: Path, fossil: str, name: str) -> tuple[dict, str]:
    carbon = d / f"carbon-{fossil}.yaml"
    carbon.write_text(CARBON % fossil)
    out = d / name
    result = CliRunner().invoke(app, ["report", "--store", str(store), "--origin", "simulated", "--from", "2026-01-05",
                                      "--to", "2026-01-06", "--config", CONFIG, "--carbon", str(carbon),
                                      "--format", "pact", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text()), result.output


def test_report_publishes_and_serves_the_same_documents(simulated):
    d, store = simulated
    first, output = _report(d, store, "0.03", "first.json")
    validate_pact(first)
    assert "1 new, 0 superseding (0 now Deprecated), 0 unchanged" in output
    repo = FootprintRepository(store)
    assert repo.list(None, {}) == (first["data"], 1)
    for pf in first["data"]:
        assert repo.get(None, pf["id"]) == pf

    again, output = _report(d, store, "0.03", "again.json")
    assert again == first  # same figures: nothing changes, not even "created"
    assert "0 new, 0 superseding (0 now Deprecated), 1 unchanged" in output

    changed, output = _report(d, store, "0.04", "changed.json")
    assert "0 new, 1 superseding (1 now Deprecated), 0 unchanged" in output
    (power1,), (power2,) = first["data"], changed["data"]
    assert (power1["pcf"]["fossilCarbonContent"], power2["pcf"]["fossilCarbonContent"]) == ("0.03", "0.04")
    assert power2["precedingPfIds"] == [power1["id"]] and power2["status"] == "Active"
    assert power2["pcf"]["pcfExcludingBiogenicUptake"] == power1["pcf"]["pcfExcludingBiogenicUptake"]
    served, total = repo.list(None, {})
    assert total == 2 and served == [dict(power1, status="Deprecated"), power2]
    assert repo.get(None, power1["id"])["status"] == "Deprecated"
    # the second revision's id is the series' revision 2, whatever store it lands in
    series = [UUID(s) for (s,) in sqlite3.connect(store).execute(
        "SELECT series FROM footprint WHERE id = ?", (power1["id"],))]
    assert power2["id"] == footprint_id(series[0], 2)
