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

    # the hourly ledger: one point per source, method and hour, at the hour's start, origin simulated,
    # each the value the store holds for that identity (issue 11)
    from twin.store import Store

    with Store(tmp_path / "t.sqlite") as store:
        held = {(r.source, r.method, round(r.start * 1000)): r.co2e_kg for r in store.emissions()}
    co2 = victoria.wait_for_count(len(held), '{__name__="emissions_co2e_kg"}')
    got = {(dict(labels)["source"], dict(labels)["method"], ts): value for (_, labels), ts, value in co2}
    assert {dict(labels)["origin"] for (_, labels), _, _ in co2} == {"simulated"}
    assert set(got) == set(held) and len(held) == 16 * len(doc["emissions"]["by_source"])
    for key, value in held.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def _epoch(text: str) -> float:
    from twin.shadow.replay import parse_ts

    return parse_ts(text)


def test_demo_writes_live_minutes_with_co2e_and_samples_to_influx(victoria, tmp_path, monkeypatch):  # noqa: F811
    """The InfluxDB writer is one of the live run's sinks: samples and closed minutes while it runs,
    the whole run at the end, and its block counts all of them."""
    monkeypatch.setenv("INFLUX_TOKEN", "not-checked-by-victoria")
    result = CliRunner().invoke(app, [
        "demo", "--config", str(ROOT / "configs" / "demo_smt.yaml"), "--duration", "6", "--speed", "120",
        "--json", "--no-dashboard", "--store", str(tmp_path / "t.sqlite"), "--influx-url", victoria.url,
        "--influx-org", "plant", "--influx-bucket", "twin", "--influx-spool", str(tmp_path / "spool"),
    ])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    influx, store = doc["sinks"]["influxdb"], doc["sinks"]["store"]
    assert influx["dropped"] == 0 and influx["rejected"] == 0 and influx["spool_depth"] == 0
    assert influx["corrupt_records"] == 0 and influx["retried"] >= 0
    # every used sample reached both sinks, the last ones on the wire too (flushed at the end)
    assert store["samples"] == doc["samples"]["used"] > 0
    # every sample, window and emissions record the store took went to InfluxDB as one point too
    assert influx["written"] == influx["spooled"] >= store["samples"] + store["windows"] + store["emissions"]
    co2e = victoria.wait_for_count(1, '{__name__="station_kpi_co2e_kg", station!=""}')
    assert {dict(labels).get("station") for (_, labels), _, _ in co2e} >= {"printer", "reflow"}
    assert victoria.wait_for_count(1, '{__name__=~"signal_.*"}')
