"""The live demo end to end: SimPy model -> simulated PLC (OPC UA) and meters (MQTT) -> the wire ->
clients -> live twin -> KPIs, compared with the model's own ground-truth log of the same run."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from factory_models import State, load_factory
from twin.cli import app
from twin.runtime import Sinks
from twin.store import Store
from twin.runtime.live import LiveOptions, run_demo

ROOT = Path(__file__).resolve().parents[2]
SMT = ROOT / "configs" / "demo_smt.yaml"


def assert_twin_matches_truth(doc: dict, energy_rel: float) -> None:
    for st in doc["ground_truth"]["stations"]:
        name = st["station"]
        # states and counters travel as events: the twin must see every one of them
        assert st["produced"]["twin"] == st["produced"]["truth"], name
        assert st["good"]["twin"] == st["good"]["truth"], name
        assert st["apt_s"]["twin"] == pytest.approx(st["apt_s"]["truth"], abs=1e-3), name
        # energy is read every METER_INTERVAL_S: the twin lags the truth by at most one reading
        truth_kwh = st["energy_kwh"]["truth"]
        assert st["energy_kwh"]["twin"] == pytest.approx(truth_kwh, rel=energy_rel, abs=0.05), name


def assert_only_redeliveries(samples: dict) -> None:
    """Nothing is rejected but duplicates: an OPC UA subscription that a loaded machine lets go
    stale is recreated and sends its current values again, which the twin counts and drops."""
    assert set(samples["rejected_by_reason"]) <= {"duplicate"}, samples["rejected_by_reason"]
    assert samples["used"] + samples["rejected"] == samples["received"]


def test_demo_with_embedded_broker_agrees_with_ground_truth(tmp_path):
    factory = load_factory(SMT)
    opts = LiveOptions(duration_s=8, speed=120, progress=False, sinks=Sinks(store=tmp_path / "demo.sqlite"),
                       forecast_replications=2)
    doc = asyncio.run(run_demo(factory, SMT, opts))
    s = doc["samples"]
    assert s["received"] > 500
    assert_only_redeliveries(s)
    assert_twin_matches_truth(doc, energy_rel=0.05)
    f = doc["forecast"]
    assert f["expected_good"] >= doc["site"]["good"] >= 0
    assert f["shift_end"] > f["at"]
    assert doc["sinks"]["store"]["written"] > 0
    assert doc["emissions"]["scope2_location_co2e_kg"] > 0
    # the store filled while the demo ran: closed one-minute windows and downsampled signals
    with Store(tmp_path / "demo.sqlite") as store:
        minutes = [w for w in store.kpis(level="station") if w.start is not None and w.end - w.start == 60.0]
        assert len({w.start for w in minutes}) >= 5
        states = store.signals("smt1/printer/state")
        assert states and all(r["state"] in {s.name for s in State} for r in states)
        # every live minute with energy has its CO2e (location-based, from the station's energy)
        with_energy = [w for w in minutes if (w.energy_kwh or 0) > 0]
        assert with_energy and all(w.co2e_kg is not None and w.co2e_kg > 0 for w in with_energy)
    # the sinks block is the store's own, counting what it wrote during the run and at the end
    block = doc["sinks"]["store"]
    assert block["samples"] > 0 and block["windows"] >= len(minutes) and block["emissions"] > 0


def test_demo_cli_against_mosquitto(mosquitto, tmp_path):  # noqa: F811
    result = CliRunner().invoke(app, ["demo", "--config", str(SMT), "--duration", "6", "--speed", "120",
                                      "--mqtt-url", mosquitto.url, "--no-store", "--no-dashboard", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "demo"
    assert doc["demo"]["mqtt"] == mosquitto.url
    assert_only_redeliveries(doc["samples"])
    assert_twin_matches_truth(doc, energy_rel=0.05)
    for key in ("received", "used", "rejected", "rejected_by_reason"):
        assert key in doc["samples"]


def test_demo_says_where_the_dashboard_is_without_warnings(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="twin.runtime.live")
    caplog.set_level(logging.INFO, logger="carbon.meters")
    store = tmp_path / "demo.sqlite"
    result = CliRunner().invoke(app, ["demo", "--config", str(SMT), "--duration", "6", "--speed", "120",
                                      "--store", str(store), "--dashboard-port", "0", "--json"])
    assert result.exit_code == 0, result.output
    # for people: one plain line on stderr; for the log: INFO, since nothing is wrong
    urls = [ln for ln in result.stderr.splitlines() if ln.startswith("dashboard: http://127.0.0.1:")]
    assert len(urls) == 1, result.stderr
    assert any(r.levelno == logging.INFO and r.getMessage().startswith("dashboard on http://") for r in caplog.records)
    # meters whose first reading is the baseline at start are noted, not warned about
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
              and r.name in ("carbon.meters", "twin.runtime.live")]
    assert warned == []
    doc = json.loads(result.stdout)
    assert doc["sinks"]["store"]["samples"] > 0 and doc["sinks"]["store"]["windows"] > 0
    assert doc["sinks"]["dashboard"]["states"] > 0
