"""Connector plugins: each folder's sample.yaml loads, the registry dispatches the mapping file's
top-level keys, and a new protocol is one new folder."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from connectors.mapping import Mapping, load_mapping, mapping_model
from connectors.registry import Plugin, build_sources, discover, plugins
from connectors.source import Source
from factory_models import ConfigError

from support.factories import small_factory

CONNECTORS = Path(__file__).resolve().parents[2] / "connectors"


def test_opcua_and_mqtt_are_plugins_and_the_sink_folder_is_not():
    assert set(plugins()) == {"opcua", "mqtt", "sparkplug"}
    assert set(Mapping.model_fields) == {"site", "derived", "opcua", "mqtt", "sparkplug"}


@pytest.mark.parametrize("key", sorted(plugins()))
def test_each_plugin_folder_has_a_readme_and_a_sample_that_loads(key):
    folder = CONNECTORS / key
    assert (folder / "README.md").is_file()
    mapping = load_mapping(folder / "sample.yaml", small_factory())
    entries = getattr(mapping, key)
    assert entries and all(isinstance(e, plugins()[key].config) for e in entries)
    assert not [k for k in plugins() if k != key and getattr(mapping, k)]  # its own key only
    templates = [t for e in entries for _, t in e.signal_templates()]
    assert len(templates) >= 3  # fixed signals and templates, each checked against the factory


def test_samples_show_every_setting_of_their_entry():
    """A new setting must reach the sample users copy from: every field of a source is written."""
    for key, plugin in plugins().items():
        text = (CONNECTORS / key / "sample.yaml").read_text(encoding="utf-8")
        missing = [f for f in plugin.config.model_fields if f"{f}:" not in text]
        assert not missing, f"{key}/sample.yaml lacks {missing}"


def test_build_sources_makes_one_source_per_entry(tmp_path):
    text = "site: suzhou-smt\n"
    for key in plugins():
        entry = (CONNECTORS / key / "sample.yaml").read_text(encoding="utf-8").split(f"\n{key}:\n", 1)[1]
        text += f"{key}:\n{entry}"
    path = tmp_path / "both.yaml"
    path.write_text(text.replace("dead_letter: var/deadletter-meters.jsonl", "")
                    .replace("dead_letter: var/deadletter-edge-line1.jsonl", ""), encoding="utf-8")
    mapping = load_mapping(path, small_factory())
    sources = build_sources(mapping, small_factory(), tmp_path / "dead")
    assert sorted(s.name for s in sources) == ["edge-line1", "meters", "plc-line1"]
    assert all(isinstance(s, Source) for s in sources)
    assert {s.stats()["dead_letter"] for s in sources} == {
        str(tmp_path / "dead" / "deadletter-meters.jsonl"), str(tmp_path / "dead" / "deadletter-plc-line1.jsonl"),
        str(tmp_path / "dead" / "deadletter-edge-line1.jsonl")}
    assert "line1/printer/power_kw" in next(s for s in sources if s.name == "plc-line1").signals()


def test_a_mapping_without_sources_names_the_keys(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("site: suzhou-smt\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no sources: give at least one .*opcua"):
        load_mapping(path, small_factory())


PLUGIN_CONFIG = '''
from collections.abc import Iterator

from connectors.config_base import SourceConfig
from connectors.registry import Plugin


class SerialSource(SourceConfig):
    port: str
    signal: str

    def signal_templates(self) -> Iterator[tuple[tuple, str]]:
        yield ("signal",), self.signal


PLUGIN = Plugin(key="serial", config=SerialSource, sources="{package}.serial.client:serial_sources")
'''

PLUGIN_CLIENT = '''
class SerialClient:
    def __init__(self, cfg):
        self.name = cfg.name


def serial_sources(mapping, factory, dead_letter_dir):
    return [SerialClient(cfg) for cfg in mapping.serial]
'''


def test_a_new_protocol_is_one_new_folder(tmp_path, monkeypatch):
    package = "plugins_for_test"
    folder = tmp_path / package / "serial"
    folder.mkdir(parents=True)
    (tmp_path / package / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / package / "notes").mkdir()  # a folder that is not a package: ignored
    (folder / "__init__.py").write_text("", encoding="utf-8")
    (folder / "config.py").write_text(PLUGIN_CONFIG.replace("{package}", package), encoding="utf-8")
    (folder / "client.py").write_text(PLUGIN_CLIENT, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        found = discover(package)
        assert list(found) == ["serial"]
        model = mapping_model({**plugins(), **found})
        path = tmp_path / "m.yaml"
        path.write_text(textwrap.dedent("""\
            site: suzhou-smt
            serial:
              - {name: scale-1, port: /dev/ttyUSB0, signal: line1/printer/good}
            """), encoding="utf-8")
        mapping = load_mapping(path, small_factory(), model)
        assert [s.name for s in build_sources(mapping, small_factory())] == ["scale-1"]
        # its entries are checked against the factory like every other plugin's
        path.write_text(path.read_text().replace("printer/good", "printer/goods"), encoding="utf-8")
        with pytest.raises(ConfigError, match=r"line 3: serial\[0\]\.signal: .*no signal 'goods'"):
            load_mapping(path, small_factory(), model)
    finally:
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]


def test_loading_a_mapping_loads_no_protocol_library():
    """The plugins' config models are pure pydantic: ``check`` and start-up errors stay fast."""
    code = ("import sys; from connectors.mapping import load_mapping; "
            "print(sorted(m for m in ('paho', 'asyncua', 'amqtt') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_two_folders_claiming_one_key_and_a_bad_sources_reference_are_refused(tmp_path, monkeypatch):
    package = "plugins_for_test_clash"
    for folder in ("a", "b"):
        (tmp_path / package / folder).mkdir(parents=True)
        (tmp_path / package / folder / "__init__.py").write_text("", encoding="utf-8")
        (tmp_path / package / folder / "config.py").write_text(
            PLUGIN_CONFIG.replace("{package}", package), encoding="utf-8")
    (tmp_path / package / "__init__.py").write_text("", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        with pytest.raises(RuntimeError, match="plugins_for_test_clash.b and another both claim the key 'serial'"):
            discover(package)
    finally:
        for name in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[name]
    with pytest.raises(ValueError, match="module:function"):
        Plugin(key="x", config=Mapping, sources="connectors.x.client.x_sources")
