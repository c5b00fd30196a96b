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
from tests.support.ledger_cases import assert_emissions_are_the_stored_ones
from tests.support.mqtt_broker import free_port
from twin.cli import app
from twin.runtime import Sinks
from twin.runtime.live import DashboardOptions, LiveOptions, run_demo
from twin.store import Store

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
        # every live minute with energy has its CO2e (location-based, the station's energy x its hour's
        # effective intensity: 0 where on-site PV covered all the site drew, as it may at 08:00)
        with_energy = [w for w in minutes if (w.energy_kwh or 0) > 0]
        assert with_energy and all(w.co2e_kg is not None and w.co2e_kg >= 0 for w in with_energy)
        assert sum(w.co2e_kg for w in with_energy) > 0
    # the sinks block is the store's own, counting what it wrote during the run and at the end
    block = doc["sinks"]["store"]
    assert block["samples"] > 0 and block["windows"] >= len(minutes) and block["emissions"] > 0
    # every emissions figure printed is the stored one, and `report --origin simulated` says the same
    assert_emissions_are_the_stored_ones(doc, tmp_path / "demo.sqlite", "simulated", SMT)


def test_demo_cli_against_mosquitto(mosquitto, tmp_path):  # noqa: F811
    result = CliRunner().invoke(app, ["demo", "--config", str(SMT), "--duration", "6", "--speed", "120",
                                      "--mqtt-url", mosquitto.url, "--no-store", "--no-dashboard", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["command"] == "demo"
    assert doc["demo"]["mqtt"] == mosquitto.url
    # with no sink the run's ledger is still accounted and printed (origin simulated), only not stored
    assert doc["emissions"]["origin"] == ["simulated"] and doc["emissions"]["scope2_location_co2e_kg"] > 0
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


class WindowsFail:
    """A sink whose window writes always fail (a full disk, a dead server): the run must survive it."""

    sink_name = "broken"

    def __init__(self) -> None:
        self.samples = self.emissions = 0

    def write_windows(self, records) -> int:
        raise OSError(28, "No space left on device")

    def write_emissions(self, records) -> int:
        self.emissions += len(list(records))
        return self.emissions

    def write_samples(self, samples, site) -> int:
        self.samples += len(samples)
        return len(samples)

    def health(self) -> dict:
        return {"samples": self.samples}

    def close(self) -> dict:
        return {"samples": self.samples, "emissions": self.emissions}


def _get_json(url: str) -> dict | None:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())
    except OSError:
        return None


def test_a_failing_sink_is_survived_counted_shown_and_exits_4(tmp_path, capsys):
    """One sink raising on every window write: the store still gets every minute and the twin still
    equals the ground truth, /health is degraded and names it, --json counts it, the CLI exits 4."""
    import typer

    from twin.cli import _run_live

    factory = load_factory(SMT)
    broken = WindowsFail()
    port = free_port()
    stop = asyncio.Event()
    opts = LiveOptions(speed=120, progress=False, sinks=Sinks(store=tmp_path / "demo.sqlite"), stop=stop,
                       forecast_replications=1, extra_sinks=(broken,), dashboard=DashboardOptions(port=port))

    async def go():
        demo = asyncio.create_task(run_demo(factory, SMT, opts))
        health = None
        deadline = asyncio.get_running_loop().time() + 90
        while asyncio.get_running_loop().time() < deadline and not demo.done():
            health = await asyncio.to_thread(_get_json, f"http://127.0.0.1:{port}/health")
            # six simulated minutes written (and failed) at least
            if health and health["errors"].get("sink:broken", {}).get("count", 0) >= 6:
                break
            await asyncio.sleep(0.2)
        stop.set()
        return await demo, health

    doc, health = asyncio.run(go())
    assert health is not None and health["status"] == "degraded", health
    assert any(r.startswith("sink:broken") and "No space left" in r for r in health["reasons"])
    assert set(health["loop_lag_s"]) >= {"p50", "p99", "max"}
    # the run went on: the other sinks got everything, the twin still matches the model
    assert set(doc["errors"]) == {"sink:broken"}, doc["errors"]
    assert doc["errors"]["sink:broken"]["count"] >= 6
    assert_twin_matches_truth(doc, energy_rel=0.05)
    with Store(tmp_path / "demo.sqlite") as store:
        minutes = {w.start for w in store.kpis(level="station") if w.start is not None and w.end - w.start == 60.0}
    assert len(minutes) >= 6
    assert doc["sinks"]["broken"]["samples"] == doc["sinks"]["store"]["samples"] > 0
    assert doc["loop_lag_s"]["n"] > 0 and doc["loop_lag_s"]["p99"] < 5.0
    assert doc["sinks"]["dashboard"]["windows"] == doc["sinks"]["store"]["windows"] > 0

    async def finished():
        return doc

    capsys.readouterr()
    with pytest.raises(typer.Exit) as ended:
        _run_live("demo", finished(), True)
    assert ended.value.exit_code == 4
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("factory-twin: demo: the twin or its sinks stopped working: sink:broken")
