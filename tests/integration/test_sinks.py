"""``simulate --influx-url``: KPI windows and emissions land in a real InfluxDB v2 write API
(VictoriaMetrics on loopback) with the values the JSON reports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app

ROOT = Path(__file__).resolve().parents[2]


def test_simulate_writes_kpis_and_emissions_to_influx(victoria, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("INFLUX_TOKEN", "not-checked-by-victoria")
    result = CliRunner().invoke(app, [
        "simulate", str(ROOT / "configs" / "demo_smt.yaml"), "--hours", "16", "--window", "8h", "--json",
        "--store", str(tmp_path / "t.sqlite"), "--influx-url", victoria.url, "--influx-org", "plant",
        "--influx-bucket", "twin", "--influx-spool", str(tmp_path / "spool"),
    ])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    sink = doc["sinks"]["influxdb"]
    assert sink["dropped"] == 0 and sink["rejected"] == 0
    assert sink["written"] == sink["spooled"] > 0
    assert doc["sinks"]["store"]["written"] > 0
    assert "not-checked-by-victoria" not in result.output  # the token is never printed

    oee = victoria.wait_for_count(1, '{__name__="station_kpi_oee"}')
    got = {(dict(labels).get("station", ""), dict(labels).get("line", ""), ts): value
           for (_, labels), ts, value in oee}
    expected = {}
    for w in doc["windows"]:
        if w["oee"] is None:
            continue
        end_ms = round(_epoch(w["end"]) * 1000)
        expected[(w.get("station", ""), w.get("line", ""), end_ms)] = w["oee"]
    assert set(expected) <= set(got)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9), key

    co2 = victoria.samples('{__name__="emissions_co2e_kg"}')
    sources = {dict(labels)["source"] for (_, labels), _, _ in co2}
    assert {b["source"] for b in doc["emissions"]["by_source"]} <= sources


def _epoch(text: str) -> float:
    from twin.shadow.replay import parse_ts

    return parse_ts(text)
