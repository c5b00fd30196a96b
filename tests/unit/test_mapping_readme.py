"""The README's mapping example loads, and its error example is what the loader says."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors.mapping import load_mapping
from factory_models import ConfigError, Factory

from support.factories import POWER

README = Path(__file__).resolve().parents[2] / "README.md"


def press_factory() -> Factory:
    return Factory.model_validate({
        "site": {"name": "suzhou-smt"},
        "products": [{"name": "pcb-a"}],
        "lines": [{"name": "line1", "stations": [
            {"name": "press", "cycle_time_s": {"pcb-a": 20}, "power_kw": POWER},
            {"name": "oven", "cycle_time_s": {"pcb-a": 20}, "power_kw": POWER},
        ]}],
        "meters": [{"name": "grid", "kind": "grid_import"}],
    })


def readme_mapping() -> str:
    section = README.read_text(encoding="utf-8").split("### The mapping file", 1)[1]
    return re.search(r"```yaml\n(.*?)```", section, re.S).group(1)


def test_the_readme_mapping_example_loads(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(readme_mapping(), encoding="utf-8")
    m = load_mapping(path, press_factory())
    assert m.opcua[0].defaults.values == "packml"
    assert [t.field for t in m.mqtt[0].topics] == ["p_w", "e_wh"]
    assert m.derived[0].inputs == ("line1/press/good", "line1/press/scrap")


def test_the_readme_error_example_is_what_the_loader_says(tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(readme_mapping().replace("3: DOWN", "3: BROKEN"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_mapping(path, press_factory())
    assert ("line 9: opcua[0].nodes[1].values: Value error, raw value 3 maps to 'BROKEN', which is not a "
            "twin state; the states are PRODUCING, SETUP,") in str(err.value)
