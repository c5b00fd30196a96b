"""What a new user reads: ``--version``, help without ``<bool>``, the ``--window`` tables in text mode,
site time with its offset (JSON stays UTC), and the emissions and ground-truth blocks of ``demo``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.runtime.summary import print_live, site_time

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
SMT = str(ROOT / "configs" / "demo_smt.yaml")  # Asia/Shanghai, simulation starts 2026-01-05 00:00 site time
runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == "factory-twin 0.1.0"


@pytest.mark.parametrize("command", [[], ["simulate"], ["replay"], ["report"], ["demo"], ["run"], ["browse"], ["check"]])
def test_help_shows_no_bool_placeholder(command):
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "--help" in result.stdout
    assert "<bool>" not in result.stdout
    if command == ["simulate"]:
        assert re.search(r"--json +Print one JSON document", result.stdout)


def test_simulate_prints_window_tables_in_site_time():
    result = runner.invoke(app, ["simulate", SMT, "-H", "27", "-w", "8h", "--no-store"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "simulated from 2026-01-05 00:00+08:00" in out  # not 2026-01-04T16:00:00.000Z
    assert "KPIs by window, site time (Asia/Shanghai, UTC+08:00)" in out
    for span in ("2026-01-05 00:00-08:00", "2026-01-05 08:00-16:00", "2026-01-05 16:00-24:00",
                 "2026-01-06 00:00-08:00"):
        assert span in out, span
    assert "Z " not in out and ".000Z" not in out


def test_without_window_no_window_table():
    result = runner.invoke(app, ["simulate", SMT, "-H", "2", "--no-store"])
    assert result.exit_code == 0, result.output
    assert "KPIs by window" not in result.stdout


def test_replay_prints_window_tables():
    result = runner.invoke(app, ["replay", str(DATA / "worked_example.yaml"), str(DATA / "worked_example.csv"),
                                 "-w", "1h", "--no-store"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "(2026-03-02 06:00+00:00 to 2026-03-02 14:00+00:00)" in out
    assert "KPIs by window, site time (UTC, UTC+00:00)" in out
    assert all(f"2026-03-02 {h:02d}:00-{h + 1:02d}:00" in out for h in range(6, 14))
    # the emissions totals of --json, in words (factor ids in brackets are not eaten as markup)
    assert "emissions: Scope 1 0.0 kg CO2e; Scope 2 location-based" in out
    assert "stations (Scope 2, location): 78.4 kWh" in out and "[cn-mee-ets-2022]" in out


def test_json_keeps_utc():
    result = runner.invoke(app, ["simulate", SMT, "-H", "1", "-w", "1h", "--no-store", "--json"])
    doc = json.loads(result.stdout)
    assert doc["start"] == "2026-01-04T16:00:00.000Z"
    assert all(w["start"].endswith("Z") for w in doc["windows"])


def test_site_time():
    assert site_time("2026-01-04T16:00:00.000Z", "Asia/Shanghai") == "2026-01-05 00:00+08:00"
    assert site_time(1_767_542_430.0, "Asia/Shanghai") == "2026-01-05 00:00:30+08:00"
    # the offset follows the date: summer time in Berlin
    assert site_time("2026-07-01T10:00:00Z", "Europe/Berlin") == "2026-07-01 12:00+02:00"
    assert site_time("2026-01-01T10:00:00Z", "Europe/Berlin") == "2026-01-01 11:00+01:00"


def _live_doc() -> dict:
    """A ``demo --json`` document's shape (twin/runtime/live_summary.py) with round numbers."""
    station = {"site": "suzhou-smt", "line": "smt1", "station": "reflow", "produced": 18.0, "good": 18.0,
               "availability": 0.392, "performance": 0.976, "quality": 1.0, "oee": 0.383, "energy_kwh": 5.1,
               "co2e_kg": 2.8, "flags": []}
    line = {**station, "station": None}
    line.pop("station")
    site = {k: v for k, v in station.items() if k not in ("line", "station")}
    return {
        "command": "demo", "config": "configs/demo_smt.yaml",
        "start": "2026-01-05T00:00:00.000Z", "end": "2026-01-05T00:15:40.000Z",
        "stations": [station], "lines": [line], "site": site,
        "emissions": {"scope1_co2e_kg": 5.7, "scope2_location_co2e_kg": 7.7, "scope2_market_co2e_kg": 8.5,
                      "by_source": [{"source": "grid", "scope": "2", "method": "location", "activity": 13.94,
                                     "activity_unit": "kWh", "co2e_kg": 7.7, "co2_kg": 7.7, "ch4_kg": 0.0,
                                     "n2o_kg": 0.0, "factor_id": "cn-mee-2023-grid-east"}]},
        "ground_truth": {"stations": [{"line": "smt1", "station": "reflow",
                                       "apt_s": {"truth": 360.0, "twin": 342.0},
                                       "produced": {"truth": 18.0, "twin": 18.0},
                                       "good": {"truth": 19.0, "twin": 18.0},
                                       "availability": {"truth": 0.4, "twin": 0.392},
                                       "oee": {"truth": 0.401, "twin": 0.383},
                                       "energy_kwh": {"truth": 5.2, "twin": 5.1}}]},
        "forecast": {"shift": "day", "at": "2026-01-05T00:15:40.000Z", "shift_end": "2026-01-05T12:00:00.000Z",
                     "expected_good": 726.0, "oee": 0.487, "energy_kwh": 1945.0},
        "samples": {"received": 2405, "used": 2400, "rejected": 5, "rejected_by_reason": {"nan": 5}},
        "sinks": {},
    }


def test_live_text_summary_has_emissions_and_ground_truth(capsys):
    print_live(_live_doc(), "Asia/Shanghai")
    out = capsys.readouterr().out
    assert "demo: 2026-01-05 08:00+08:00 to 2026-01-05 08:15:40+08:00" in out
    # no market-based figure from a run: certificates are claimed once, by `report` (issue 11)
    assert "emissions: Scope 1 5.7 kg CO2e; Scope 2 location-based 7.7 kg;" in out and "market-based: made by `report`" in out
    assert "grid (Scope 2, location): 13.9 kWh, 7.7 kg CO2e [cn-mee-2023-grid-east]" in out
    assert "Ground truth (model) against the twin" in out
    row = next(ln for ln in out.splitlines() if "smt1/reflow" in ln and "40.1 %" in ln)
    for cell in ("0.10", "0.10", "19", "18", "40.1 %", "38.3 %", "5.2", "5.1"):
        assert cell in row
    assert "forecast for the end of shift day (2026-01-05 20:00+08:00)" in out
    assert "samples: 2405 received, 2400 used, 5 rejected" in out


def test_run_text_summary_without_ground_truth(capsys):
    doc = _live_doc()
    doc["command"] = "run"
    for key in ("ground_truth", "forecast"):
        doc.pop(key)
    print_live(doc, "UTC")
    out = capsys.readouterr().out
    assert "run: 2026-01-05 00:00+00:00" in out and "emissions: Scope 1 5.7" in out
    assert "Ground truth" not in out


def test_live_text_summary_says_what_the_run_lost_in_words(capsys):
    doc = _live_doc()
    doc["samples"] = {"received": 2412, "used": 2400, "rejected": 12,
                      "rejected_by_reason": {"nan": 5, "meters:bad_json": 7},
                      "sources": {"meters": {"lost": 3, "seq_resets": 1}, "plc": {"lost": 0}}}
    doc["demo"] = {"backpressure": {"slowed_s": 31.25, "slowdowns": 135, "speed_reached": 286.6}}
    doc["errors"] = {"sink:influxdb": {"count": 2, "last": "OSError: [Errno 28] No space left on device"}}
    doc["loop_lag_s"] = {"p50": 0.0007, "p99": 0.012, "max": 0.22, "n": 300}
    doc["sinks"] = {"store": {"path": "x.sqlite", "written": 3570, "samples": 2844}}
    print_live(doc, "UTC")
    out = capsys.readouterr().out
    assert "12 rejected (meters:bad json 7, nan 5)" in out and "{" not in out.split("samples:")[1].splitlines()[0]
    assert "meters: 3 messages lost (gaps in seq), 1 publisher restarts" in out and "plc:" not in out
    assert "the simulated clock waited 31.2 s for the twin (135 times; speed reached 286.6x)" in out
    assert "errors: sink:influxdb: 2, last: OSError: [Errno 28] No space left on device" in out
    assert "event loop lag: p50 0.001 s, p99 0.012 s, max 0.220 s" in out
    assert "sink store: written 3570, samples 2844" in out



def test_replay_text_footer_names_rejections_in_words():
    from twin.runtime.batch import text_footer

    lines = text_footer({"samples": {"received": 9, "used": 6, "rejected": 3, "bad_rows": 1,
                                     "rejected_by_reason": {"unknown_signal": 2, "nan": 1},
                                     "errors": [{"line": 4, "reason": "a stray quote"}]}})
    assert lines[0] == "samples: 9 received, 6 used, 3 rejected (unknown signal 2, nan 1); 1 bad CSV rows"
    assert lines[1] == "  line 4: a stray quote"
