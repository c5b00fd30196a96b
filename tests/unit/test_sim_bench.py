"""bench.sim in miniature: both sides run, the ratio is against the 0.8x goal, --profile names the
twin's own functions."""

from __future__ import annotations

import json

from bench import sim


def test_bench_sim_reports_ratios_against_the_goal_and_profiles_the_twin(capsys):
    assert sim.main(["--days", "0.1", "--repeat", "1", "--json", "--profile", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["target_events_per_s_ratio"] == 0.8
    assert out["bare"]["events"] > 0 and out["twin"]["events"] > 0
    assert out["events_per_s_ratio"] == (out["twin"]["events"] / out["twin"]["wall_s"]) / (
        out["bare"]["events"] / out["bare"]["wall_s"])
    assert "twin/model/" in out["profile"] and "tottime" in out["profile"]
