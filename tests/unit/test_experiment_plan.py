"""The experiment plan: overrides by dotted path (names, ``*``), each scenario validated against the
factory schema, and every bad plan a ConfigError naming the plan and its line (the CLI's exit 2)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from factory_models import ConfigError
from twin.experiment.plan import load_plan
from twin.experiment.runner import _tasks

ROOT = Path(__file__).resolve().parents[2]
FACTORY = """\
site: {name: lab}
products: [{name: p}, {name: q.v2, share: 0.5}]
lines:
  - name: l
    stations:
      - name: a
        cycle_time_s: {p: 30, q.v2: 40}
        power_kw: {producing: 2.0, setup: 1.0, down: 0.5, idle: 1.0, planned_stop: 0.2, no_shift: 0.1}
      - name: b.1
        cycle_time_s: {p: 60, q.v2: 50}
        power_kw: {producing: 3.0, setup: 1.0, down: 0.5, idle: 1.5, planned_stop: 0.2, no_shift: 0.1}
"""


def write_plan(tmp_path: Path, body: str) -> Path:
    (tmp_path / "models").mkdir(exist_ok=True)
    (tmp_path / "models" / "lab.yaml").write_text(FACTORY, encoding="utf-8")
    plan = tmp_path / "plans" / "plan.yaml"
    plan.parent.mkdir(exist_ok=True)
    plan.write_text(textwrap.dedent(body), encoding="utf-8")
    return plan


HEAD = """\
base: ../models/lab.yaml
hours: 4
warmup_hours: 1
replications: 5
seed: 7
scenarios:
"""


def problem(tmp_path: Path, body: str) -> str:
    with pytest.raises(ConfigError) as err:
        load_plan(write_plan(tmp_path, body))
    text = str(err.value)
    assert text.startswith(str(tmp_path / "plans" / "plan.yaml")), text
    return text


def test_overrides_by_name_star_and_dotted_names(tmp_path):
    plan = load_plan(write_plan(tmp_path, HEAD + """\
  - name: base
  - name: faster-b
    set: {lines.l.stations.b.1.cycle_time_s.q.v2: 45}
  - name: all-idle-low
    set:
      lines.l.stations.*.power_kw.idle: 0.3
      lines.l.stations.a.cycle_time_s.*: 20
      lines.l.release: {batch_size: 10}
"""))
    assert (plan.hours, plan.warmup_hours, plan.replications, plan.seed) == (4, 1, 5, 7)
    assert plan.base_path == tmp_path / "plans" / ".." / "models" / "lab.yaml"  # relative to the plan
    assert plan.reference == "base"
    base, faster, low = (s.factory_doc for s in plan.scenarios)
    # a name holding dots ("b.1", "q.v2") is matched whole
    assert faster["lines"][0]["stations"][1]["cycle_time_s"] == {"p": 60, "q.v2": 45}
    assert base["lines"][0]["stations"][1]["cycle_time_s"] == {"p": 60, "q.v2": 50}  # the base is untouched
    assert [s["power_kw"]["idle"] for s in low["lines"][0]["stations"]] == [0.3, 0.3]
    assert low["lines"][0]["stations"][0]["cycle_time_s"] == {"p": 20, "q.v2": 20}
    assert low["lines"][0]["release"] == {"batch_size": 10}  # a block the base leaves out
    star = plan.scenarios[2].overrides[0]
    assert star.line == 12 and star.locations == (("lines", 0, "stations", 0, "power_kw", "idle"),
                                                   ("lines", 0, "stations", 1, "power_kw", "idle"))


def test_common_random_numbers_every_scenario_runs_the_same_seeds(tmp_path):
    plan = load_plan(write_plan(tmp_path, HEAD + """\
  - name: base
  - name: other
    set: {lines.l.stations.a.setup_s: 60}
"""))
    tasks = _tasks(plan, 0, plan.replications)
    seeds = {}
    for name, _doc, hours, warmup, seed, _path in tasks:
        seeds.setdefault(name, []).append(seed)
        assert (hours, warmup) == (4, 1)
    assert seeds == {"base": [7, 8, 9, 10, 11], "other": [7, 8, 9, 10, 11]}
    assert [t[4] for t in _tasks(plan, 5, 7)] == [12, 13, 12, 13]  # the sequential mode's next round


def test_reference_is_the_first_scenario_when_none_is_named_base(tmp_path):
    plan = load_plan(write_plan(tmp_path, HEAD + "  - name: now\n  - name: later\n"))
    assert plan.reference == "now"


def test_unknown_field_names_the_plan_line(tmp_path):
    text = problem(tmp_path, HEAD + """\
  - name: base
  - name: standby
    set: {"lines.l.stations.*.standby_typo": {after_s: 600}}
""")
    assert "line 9: scenario 'standby': set lines.l.stations.*.standby_typo: unknown field 'standby_typo'" in text
    assert "and 1 more places" in text  # both stations, said once


def test_unknown_item_name_lists_the_names(tmp_path):
    text = problem(tmp_path, HEAD + "  - name: x\n    set: {lines.l.stations.c.setup_s: 5}\n")
    assert "line 8: scenario 'x': set lines.l.stations.c.setup_s: lines[0].stations has no item named 'c' (names: a, b.1)" in text


def test_bad_value_names_the_override_line(tmp_path):
    text = problem(tmp_path, HEAD + """\
  - name: base
  - name: y
    set:
      lines.l.release.batch_size: 10
      lines.l.stations.a.cycle_time_s.p: -3
""")
    assert ("line 11: scenario 'y': set lines.l.stations.a.cycle_time_s.p: Input should be greater than 0 (got -3) "
            "at lines[0].stations[0].cycle_time_s.p") in text


def test_a_product_the_model_does_not_have(tmp_path):
    text = problem(tmp_path, HEAD + "  - name: z\n    set: {lines.l.stations.a.cycle_time_s.r: 5}\n")
    assert "line 8: scenario 'z'" in text and "unknown products ['r']" in text


def test_a_value_has_no_fields(tmp_path):
    text = problem(tmp_path, HEAD + "  - name: z\n    set: {lines.l.stations.a.cycle_time_s.p.x: 5}\n")
    assert "line 8: scenario 'z': set lines.l.stations.a.cycle_time_s.p.x: lines[0].stations[0].cycle_time_s.p is a value (30); it has no field 'x'" in text


def test_scenario_name_used_twice(tmp_path):
    text = problem(tmp_path, HEAD + "  - name: base\n  - name: fast\n  - name: fast\n")
    assert "line 9: scenario name 'fast' is used twice (first on line 8)" in text


def test_replications_below_two(tmp_path):
    text = problem(tmp_path, HEAD.replace("replications: 5", "replications: 1") + "  - name: base\n")
    assert "line 4: replications: 1 is below 2: a 95 % interval needs at least 2 replications" in text


def test_unknown_plan_key_and_missing_base(tmp_path):
    text = problem(tmp_path, HEAD + "  - name: base\nrepetitions: 3\n")
    assert "line 8: unknown field 'repetitions' of the plan" in text
    text = problem(tmp_path, HEAD.replace("../models/lab.yaml", "../models/none.yaml") + "  - name: base\n")
    assert "line 1: base '../models/none.yaml': no such file" in text


def test_empty_path_segment(tmp_path):
    text = problem(tmp_path, HEAD + "  - name: z\n    set: {lines..l: 5}\n")
    assert "line 8: scenario 'z': set lines..l:" in text and "empty segment" in text


def test_the_example_plan_loads():
    plan = load_plan(ROOT / "configs" / "experiment_smt.yaml")
    assert [s.name for s in plan.scenarios] == ["base", "faster-placer", "standby"]
    chip = plan.scenarios[1].factory_doc["lines"][0]["stations"][2]
    assert chip["name"] == "placer-chip" and chip["cycle_time_s"]["ctrl-board"] == 34
    standby = [st.get("standby") for st in plan.scenarios[2].factory_doc["lines"][0]["stations"]]
    assert standby == [{"after_s": 600, "power_kw": 0.3, "wake_s": 60}] * 8
