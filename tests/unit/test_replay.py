"""``factory-twin replay``: the ISO 22400-2 worked example of docs/kpis.md, and bad CSV rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.shadow.replay import parse_ts

DATA = Path(__file__).parents[1] / "data"
runner = CliRunner()


def run_json(*args: str) -> dict:
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_worked_example_through_replay():
    doc = run_json("replay", str(DATA / "worked_example.yaml"), str(DATA / "worked_example.csv"))
    (st,) = doc["stations"]
    assert (st["line"], st["station"]) == ("line1", "reflow")
    assert st["pot_s"] == pytest.approx(28_800, abs=1e-6)
    assert st["pbt_s"] == pytest.approx(27_000, abs=1e-6)
    assert st["apt_s"] == pytest.approx(22_200, abs=1e-6)
    assert st["asut_s"] == pytest.approx(1_200, abs=1e-6)
    assert st["adet_s"] == pytest.approx(2_700, abs=1e-6)
    assert st["adot_s"] == pytest.approx(900, abs=1e-6)
    assert (st["produced"], st["scrap"], st["good"]) == (700, 35, 665)
    assert st["availability"] == pytest.approx(0.822222, abs=1e-6)
    assert st["performance"] == pytest.approx(0.945946, abs=1e-6)
    assert st["quality"] == pytest.approx(0.95, abs=1e-6)
    assert st["oee"] == pytest.approx(0.738889, abs=1e-6)
    assert st["oee"] == pytest.approx(st["availability"] * st["performance"] * st["quality"], rel=1e-12)
    assert st["energy_kwh"] == pytest.approx(78.4167, abs=1e-4)
    assert st["kwh_per_good"] == pytest.approx(0.117920, abs=1e-6)
    assert st["failures"] == 2
    assert st["mttr_s"] == pytest.approx(1_350, abs=1e-6)
    # one station: the line and the site are that station
    for agg in (doc["lines"][0], doc["site"]):
        for key in ("availability", "performance", "quality", "oee", "energy_kwh"):
            assert agg[key] == pytest.approx(st[key], rel=1e-12), key
    assert doc["samples"]["rejected"] == 0


def test_worked_example_hourly_windows_sum_to_the_shift():
    doc = run_json("replay", str(DATA / "worked_example.yaml"), str(DATA / "worked_example.csv"), "--window", "1h")
    stations = [w for w in doc["windows"] if "station" in w]
    assert len(stations) == 8
    assert sum(w["apt_s"] for w in stations) == pytest.approx(22_200, abs=1e-6)
    assert sum(w["produced"] for w in stations) == 700
    assert sum(w["energy_kwh"] for w in stations) == pytest.approx(78.4167, abs=1e-4)
    # 09:00-10:00 holds 45 min of production and 15 min of the planned stop
    nine = next(w for w in stations if w["start"].startswith("2026-03-02T09:00"))
    assert nine["apt_s"] == pytest.approx(2_700, abs=1e-6)
    assert nine["pbt_s"] == pytest.approx(2_700, abs=1e-6)
    assert nine["availability"] == pytest.approx(1.0)


def test_bad_rows_are_counted_with_line_numbers_and_the_rest_is_used(tmp_path):
    src = (DATA / "worked_example.csv").read_text().splitlines()
    bad = [
        "not-a-time,line1/reflow/state,DOWN,good",  # line after the original rows
        "2026-03-02T07:00:00Z,line1/nowhere/state,DOWN,good",
        "2026-03-02T07:00:00Z,line1/reflow/state,ASLEEP,good",
        "2026-03-02T07:00:01Z,line1/reflow/power_kw,nan,good",
        "2026-03-02T07:00:02Z,line1/reflow/produced,lots,good",
        "2026-03-02T07:00:03Z,line1/reflow/state,DOWN,bad",
        "2026-03-02T07:00:04Z,line1/reflow/state",
        "2026-03-02T07:00:05Z,line1/reflow/state,DOWN,maybe",
    ]
    csv_path = tmp_path / "samples.csv"
    csv_path.write_text("\n".join(src + bad) + "\n")
    doc = run_json("replay", str(DATA / "worked_example.yaml"), str(csv_path))
    s = doc["samples"]
    first_bad = len(src) + 1
    assert s["bad_rows"] == 3  # the timestamp, the short row, the unknown quality
    assert s["rejected_by_reason"] == {
        "bad_quality": 1, "bad_value": 1, "nan": 1, "unknown_signal": 1, "unknown_state": 1,
    }
    lines = {e["line"]: e["reason"] for e in s["errors"]}
    assert set(lines) == set(range(first_bad, first_bad + len(bad)))
    assert "neither RFC 3339 nor epoch milliseconds" in lines[first_bad]
    assert "unknown_signal" in lines[first_bad + 1]
    assert "expected 4 fields" in lines[first_bad + 6]
    # the good rows are all used: the worked example is unchanged
    assert doc["stations"][0]["oee"] == pytest.approx(0.738889, abs=1e-6)


def test_epoch_milliseconds_and_offsets():
    assert parse_ts("1772431200000") == 1772431200.0
    assert parse_ts("2026-03-02T14:00:00+08:00") == parse_ts("2026-03-02T06:00:00Z")
    with pytest.raises(ValueError, match="no UTC offset"):
        parse_ts("2026-03-02T06:00:00")


def test_missing_header_column_is_a_clear_error(tmp_path):
    p = tmp_path / "s.csv"
    p.write_text("time,signal,value\n1,line1/reflow/state,DOWN\n")
    result = runner.invoke(app, ["replay", str(DATA / "worked_example.yaml"), str(p), "--json"])
    assert result.exit_code == 2
    assert "header lacks column 'ts'" in result.output


def test_broken_config_names_file_field_and_line(tmp_path):
    cfg = tmp_path / "broken.yaml"
    shutil.copy(DATA / "worked_example.yaml", cfg)
    cfg.write_text(cfg.read_text().replace("cycle_time_s: {pcb-a: 30}", "cycle_time_s: {pcb-a: fast}"))
    result = runner.invoke(app, ["check", str(cfg)])
    assert result.exit_code == 2
    assert str(cfg) in result.output
    assert "lines[0].stations[0].cycle_time_s.pcb-a" in result.output
    assert "line 19:" in result.output


def _replay_csv(tmp_path, lines: list[str], raw_tail: bytes = b"") -> dict:
    csv_path = tmp_path / "samples.csv"
    csv_path.write_bytes(("\n".join(lines) + "\n").encode() + raw_tail)
    return run_json("replay", str(DATA / "worked_example.yaml"), str(csv_path), "--no-store")


def test_stray_quote_loses_only_its_own_row(tmp_path):
    src = (DATA / "worked_example.csv").read_text().splitlines()
    header, first, rest = src[0], src[1], src[2:12]
    assert len(rest) == 10
    stray = '2026-03-02T06:00:00Z,"line1/reflow/state,SETUP,good'  # the quote never closes
    doc = _replay_csv(tmp_path, [header, first, stray, *rest])
    s = doc["samples"]
    assert s["rows"] == 12 and s["bad_rows"] == 1
    assert s["used"] == 11  # line 2 and all 10 rows after the stray quote
    (err,) = s["errors"]
    assert err["line"] == 3 and "quote" in err["reason"]


def test_stray_quote_in_the_worked_example_changes_nothing_else(tmp_path):
    src = (DATA / "worked_example.csv").read_text().splitlines()
    doc = _replay_csv(tmp_path, [*src[:3], '2026-03-02T06:00:00Z,line1/reflow/state,"DOWN" ,good', *src[3:]])
    assert doc["samples"]["bad_rows"] == 1 and doc["samples"]["errors"][0]["line"] == 4
    assert doc["samples"]["used"] == len(src) - 1
    assert doc["stations"][0]["oee"] == pytest.approx(0.738889, abs=1e-6)


def test_a_line_that_is_not_utf8_is_a_bad_row(tmp_path):
    src = (DATA / "worked_example.csv").read_text().splitlines()
    latin1 = "2026-03-02T06:00:00Z,line1/reflow/product,pcb-\u00e9,good\n".encode("latin-1")
    doc = _replay_csv(tmp_path, src, raw_tail=latin1)
    s = doc["samples"]
    assert s["bad_rows"] == 1 and s["used"] == len(src) - 1
    assert s["errors"][0] == {"line": len(src) + 1, "reason": "byte 0xe9 at column 47 is not UTF-8"}
    assert doc["stations"][0]["oee"] == pytest.approx(0.738889, abs=1e-6)
