"""The demonstration factories load, and broken configurations fail with the file and the field."""

from __future__ import annotations

from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from factory_models import ConfigError, load_factory
from factory_models.states import State

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SMT = CONFIGS / "demo_smt.yaml"


@pytest.mark.parametrize("name", ["demo_smt.yaml", "demo_machining.yaml"])
def test_demo_config_loads_and_starts_on_a_monday_midnight(name):
    factory = load_factory(CONFIGS / name)
    start = factory.simulation.start.astimezone(ZoneInfo(factory.calendar.timezone))
    assert (start.weekday(), start.hour, start.minute) == (0, 0, 0)
    assert factory.site.country == "CN"
    for _, st, _ in factory.station_units():
        assert set(st.cycle_time_s) == set(factory.product_names())
        assert st.power_kw.kw(State.PRODUCING) >= st.power_kw.kw(State.NO_SHIFT)


def test_smt_demo_has_the_described_line():
    factory = load_factory(SMT)
    kinds = [st.kind for st in factory.lines[0].stations]
    assert kinds.count("pick_and_place") == 2
    assert {"screen_printer", "reflow_oven", "test"} <= set(kinds)
    aoi = next(st for st in factory.lines[0].stations if st.name == "aoi")
    assert aoi.rework is not None and aoi.rework.rate > 0
    assert {m.kind for m in factory.meters} == {"grid_import", "natural_gas", "pv", "compressed_air"}
    assert factory.calendar.timezone == "Asia/Shanghai" and factory.site.grid_region == "east"
    assert not {"sat", "sun"} & set(factory.calendar.workdays)
    assert len(factory.calendar.shifts) >= 2 and all(sh.breaks for sh in factory.calendar.shifts)


def test_machining_demo_has_parallel_cncs_and_inspection():
    factory = load_factory(CONFIGS / "demo_machining.yaml")
    units = factory.unit_names()
    assert {"cell1/cnc-1", "cell1/cnc-2", "cell1/cnc-3"} <= set(units)
    cmm = factory.lines[0].stations[-1]
    assert cmm.scrap_rate > 0 and cmm.rework is not None and cmm.rework.to == "cnc"


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    text = SMT.read_text(encoding="utf-8")
    assert old in text, f"the demo config no longer contains {old!r}; update this test"
    path = tmp_path / "broken.yaml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    "old, new, expected",
    [
        # a typo'd field name: rejected, not ignored, with its full path
        ("setup_s: 300           # program and board-support change", "setpu_s: 300",
         ["lines[0].stations[1].setpu_s", "Extra inputs"]),
        # a wrong type
        ("batch_size: 250", "batch_size: lots", ["lines[0].release.batch_size", "integer", "'lots'"]),
        # rework sent to a later station
        ("to: reflow", "to: pack", ["lines[0]", "rework.to", "'aoi'", "'pack'"]),
        # a cycle time for a product that does not exist
        ("{ctrl-board: 35, power-board: 40}", "{ctrl-board: 35, power-bord: 40}",
         ["cycle_time_s", "'ict'", "power-bord"]),
        # a time zone that does not exist
        ("timezone: Asia/Shanghai", "timezone: Asia/Suzhou", ["calendar.timezone", "Asia/Suzhou"]),
    ],
)
def test_broken_config_names_file_and_field(tmp_path, old, new, expected):
    path = _broken(tmp_path, old, new)
    with pytest.raises(ConfigError) as err:
        load_factory(path)
    text = str(err.value)
    assert str(path) in text
    for fragment in expected:
        assert fragment in text


def test_a_break_outside_its_shift_is_a_config_error(tmp_path):
    from factory_models import ConfigError, load_factory

    src = (Path(__file__).resolve().parents[1] / "data" / "worked_example.yaml").read_text()
    bad = tmp_path / "break.yaml"
    bad.write_text(src.replace('      end: "14:00"\n', '      end: "14:00"\n      breaks:\n        - {start: "13:50", minutes: 30}\n'))
    with pytest.raises(ConfigError) as err:
        load_factory(bad)
    text = str(err.value)
    assert str(bad) in text and "calendar.shifts[0]" in text and "does not lie inside the shift 06:00-14:00" in text
