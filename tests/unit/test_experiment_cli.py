"""``factory-twin experiment`` end to end on a local Dask cluster: scenarios whose answers are known
analytically, the --json contract, --out written all at once, the sequential mode, and bad input
(exit 2, nothing written)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from twin.cli import app
from twin.experiment import report

runner = CliRunner()

# One station, one product, 10 s per part, around the clock, fed without a break: 360 parts per hour.
# With exponential failures (mean 3600 s of operating time) and a fixed 600 s repair, each 3600 s of
# production costs 600 s down on average: availability 3600 / 4200 = 6/7, throughput 360 x 6/7 = 308.57/h.
FACTORY = """\
site: {name: lab}
products: [{name: p}]
lines:
  - name: l
    stations:
      - name: m
        cycle_time_s: {p: 10}
        failures:
          - {name: f, tbf: {dist: exponential, mean_s: 3600}, ttr: {dist: fixed, value_s: 600}}
        power_kw: {producing: 2.0, setup: 1.0, down: 0.5, idle: 1.0, planned_stop: 0.2, no_shift: 0.1}
"""

PLAN = """\
base: lab.yaml
hours: {hours}
warmup_hours: 1
replications: {n}
seed: 1
scenarios:
  - name: base
  - name: no-failures
    set: {{lines.l.stations.m.failures: []}}
  - name: faster
    set: {{lines.l.stations.m.failures: [], lines.l.stations.m.cycle_time_s.p: 8}}
"""

KPIS = ("throughput_per_h", "oee", "availability", "performance", "quality", "kwh_per_good", "co2e_kg_per_good",
        "scope2_location_co2e_kg")


def write(tmp_path: Path, hours=24, n=20, plan=PLAN) -> Path:
    (tmp_path / "lab.yaml").write_text(FACTORY, encoding="utf-8")
    path = tmp_path / "plan.yaml"
    path.write_text(plan.format(hours=hours, n=n), encoding="utf-8")
    return path


def test_analytic_scenarios_json_contract_and_out(tmp_path):
    out = tmp_path / "result"
    result = runner.invoke(app, ["experiment", str(write(tmp_path)), "--workers", "2", "--json", "--out", str(out)])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["plan"]["replications"] == 20 and doc["plan"]["seeds"] == list(range(1, 21))
    base, clean, faster = doc["scenarios"]
    assert [s["name"] for s in doc["scenarios"]] == ["base", "no-failures", "faster"]
    for s in doc["scenarios"]:
        assert s["replications"] == 20
        for kpi in KPIS:
            assert set(s["kpis"][kpi]) >= {"mean", "std", "ci95_low", "ci95_high"}, kpi
        assert s["kpis"]["bottleneck"] == {"station": "l/m", "share": 1.0, "counts": {"l/m": 20}}

    # deterministic times: exactly 360 and 450 parts per hour in every replication (std 0)
    tp = clean["kpis"]["throughput_per_h"]
    assert (tp["mean"], tp["std"], tp["ci95_low"], tp["ci95_high"]) == (360.0, 0.0, 360.0, 360.0)
    assert faster["kpis"]["throughput_per_h"]["mean"] == 450.0
    # 2 kW while producing, 24 h: 48 kWh for 360 x 24 = 8640 parts
    assert clean["kpis"]["kwh_per_good"]["mean"] == pytest.approx(48 / 8640, rel=1e-9)
    assert clean["kpis"]["oee"]["mean"] == pytest.approx(1.0)

    # random failures: the formula 308.57/h lies inside the 95 % interval of the 20 replications
    b = base["kpis"]["throughput_per_h"]
    assert b["ci95_low"] < 360 * 6 / 7 < b["ci95_high"]
    a = base["kpis"]["availability"]
    assert a["ci95_low"] < 6 / 7 < a["ci95_high"]
    assert base["vs_base"] == {}

    # paired: no-failures minus base, replication by replication; more is better for throughput
    d = clean["vs_base"]["throughput_per_h"]
    assert d["diff_mean"] == pytest.approx(360 - b["mean"], rel=1e-12)
    assert d["verdict"] == "better" and d["ci95_low"] > 0
    assert clean["vs_base"]["availability"]["verdict"] == "better"
    # faster parts at the same power: fewer kWh per good, and lower is better there
    assert faster["vs_base"]["kwh_per_good"]["verdict"] == "better"
    assert faster["vs_base"]["kwh_per_good"]["diff_mean"] < 0
    assert clean["vs_base"]["quality"]["verdict"] == "no significant difference"  # 1.0 in both

    assert sorted(p.name for p in out.iterdir()) == sorted(report.OUT_FILES)
    assert json.loads((out / "experiment.json").read_text()) == doc
    rows = (out / "replications.csv").read_text().splitlines()
    assert len(rows) == 1 + 3 * 20 and rows[0].startswith("scenario,replication,seed,")
    assert rows[21].startswith("no-failures,0,1,") and ",360.0," in rows[21]
    assert (out / "experiment.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp dir left


def test_sequential_mode_adds_replications_until_the_half_width_is_met(tmp_path):
    plan = write(tmp_path, hours=8, n=3, plan=PLAN.split("  - name: no-failures")[0])
    result = runner.invoke(app, ["experiment", str(plan), "--workers", "1", "--json",
                                 "--target-halfwidth", "throughput_per_h=6", "--max-replications", "60"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    seq = doc["plan"]["sequential"]
    assert seq["met"] is True and seq["rounds"][0] == 3 and len(seq["rounds"]) >= 2
    tp = doc["scenarios"][0]["kpis"]["throughput_per_h"]
    assert (tp["ci95_high"] - tp["ci95_low"]) / 2 <= 6
    assert doc["scenarios"][0]["replications"] == seq["rounds"][-1] == doc["plan"]["replications"]


def test_the_table(tmp_path):
    result = runner.invoke(app, ["experiment", str(write(tmp_path, hours=2, n=3)), "--workers", "1"])
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "3 replications of 2 h after 1 h warm-up, seeds 1..3" in text
    assert "good / h" in text and "360.0" in text and "450.0" in text and "better" in text
    assert "l/m" in text and "in 100 % of runs" in text
    # the deterministic scenarios make 360 - base and 450 - base more good units per 2 h than the base
    assert "no-failures against base, per 2 h: " in text and "makes" in text and "good units more" in text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("args,message", [
    (["--replications", "1"], "--replications 1 is below 2"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "not both"),
    (["--target-halfwidth", "speed=3"], "--target-halfwidth 'speed=3': expected KPI=VALUE"),
    (["--target-halfwidth", "oee=-1"], "must be a number > 0"),
])
def test_bad_options_exit_2_and_write_nothing(tmp_path, args, message):
    out = tmp_path / "result"
    result = runner.invoke(app, ["experiment", str(write(tmp_path)), *args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert not out.exists()


def test_bad_plan_exits_2_naming_the_line(tmp_path):
    out = tmp_path / "result"
    plan = write(tmp_path, plan=PLAN.replace("failures: []}", "failure: []}", 1))
    result = runner.invoke(app, ["experiment", str(plan), "--out", str(out)])
    assert result.exit_code == 2
    assert f"{plan}: line 9: scenario 'no-failures': set lines.l.stations.m.failure: unknown field 'failure'" in result.stderr
    assert not out.exists()


def test_unreachable_scheduler_exits_2_naming_the_address(tmp_path):
    out = tmp_path / "result"
    address = f"tcp://127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["experiment", str(write(tmp_path)), "--scheduler", address, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert f"cannot reach the Dask scheduler at {address}" in result.stderr
    assert not out.exists()


def test_out_holding_other_files_is_refused_before_running(tmp_path):
    out = tmp_path / "result"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result = runner.invoke(app, ["experiment", str(write(tmp_path)), "--out", str(out)])
    assert result.exit_code == 2
    assert "holds other files (notes.txt)" in result.stderr
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_out_is_all_or_nothing(tmp_path):
    out = tmp_path / "result"
    doc = {"plan": {"replications": 2, "hours": 1.0, "reference": "base"},
           "scenarios": [{"name": "base", "kpis": {k: {"mean": 1.0, "ci95_low": 0.5, "ci95_high": 1.5} for k in
                                                    report.KPIS}, "vs_base": {}}]}
    rows = {"base": [{"seed": 1, "oee": 0.5}, {"seed": 2, "oee": 0.7}]}
    report.write_out(doc, rows, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert sorted(before) == sorted(report.OUT_FILES)
    # a later run that fails while writing (a NaN has no JSON form) leaves the earlier output as it was
    bad = {**doc, "plan": {**doc["plan"], "hours": float("nan")}}
    with pytest.raises(ValueError):
        report.write_out(bad, rows, out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]
    # and a run that succeeds replaces it whole
    report.write_out({**doc, "plan": {**doc["plan"], "replications": 3}}, rows, out)
    assert json.loads((out / "experiment.json").read_text())["plan"]["replications"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result"]


def test_out_under_a_file_is_refused_before_running(tmp_path):
    (tmp_path / "afile").write_text("x")
    result = runner.invoke(app, ["experiment", str(write(tmp_path)), "--out", str(tmp_path / "afile" / "result")])
    assert result.exit_code == 2
    assert "cannot create it in" in result.stderr and "not a writable directory" in result.stderr
