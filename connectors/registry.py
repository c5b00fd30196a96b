"""Which top-level key of a mapping file belongs to which connector plugin.

A plugin is a folder ``connectors/<protocol>/`` whose ``config.py`` defines ``PLUGIN``: the key it
owns in the mapping file (``opcua:``), the model of one entry under that key, and the factory that
turns the loaded entries into running ``Source``s. ``discover`` finds every such folder, so adding
a protocol touches no file outside its folder (connectors/README.md says how).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from factory_models import Factory

    from .config_base import SourceConfig
    from .source import Source

#: ``sources(mapping, factory, dead_letter_dir)``: one Source per entry of the plugin's key.
SourcesFactory = Callable[[Any, "Factory", "str | Path | None"], "list[Source]"]


@dataclass(frozen=True)
class Plugin:
    """``key``: the mapping file's top-level key; ``config``: the model of one entry under it;
    ``sources``: ``"module:function"`` of its SourcesFactory, imported only when sources are built
    (so loading a mapping does not load every protocol library)."""

    key: str
    config: type[SourceConfig]
    sources: str

    def __post_init__(self):
        module, _, function = self.sources.partition(":")
        if not (module and function.isidentifier()):
            raise ValueError(f"plugin {self.key!r}: sources must be 'module:function', got {self.sources!r}")

    def build(self, mapping, factory: Factory, dead_letter_dir: str | Path | None = None) -> list[Source]:
        module, _, function = self.sources.partition(":")
        make: SourcesFactory = getattr(importlib.import_module(module), function)
        return make(mapping, factory, dead_letter_dir)


def discover(package: str = "connectors") -> dict[str, Plugin]:
    """Every plugin below ``package``, by key, in folder-name order. A folder without ``config.py``
    (a sink such as influxdb/) is not a source plugin; one whose ``config.py`` has no ``PLUGIN`` is
    skipped too. Two folders claiming one key is a programming error."""
    root = importlib.import_module(package)
    found: dict[str, Plugin] = {}
    for info in sorted(pkgutil.iter_modules(root.__path__), key=lambda i: i.name):
        if not info.ispkg or not any((Path(p) / info.name / "config.py").is_file() for p in root.__path__):
            continue
        plugin = getattr(importlib.import_module(f"{package}.{info.name}.config"), "PLUGIN", None)
        if not isinstance(plugin, Plugin):
            continue
        if plugin.key in found:
            raise RuntimeError(f"connector plugins {package}.{info.name} and another both claim the key {plugin.key!r}")
        found[plugin.key] = plugin
    return found


_plugins: dict[str, Plugin] | None = None


def plugins() -> dict[str, Plugin]:
    """The plugins of ``connectors/``, discovered once."""
    global _plugins
    if _plugins is None:
        _plugins = discover()
    return _plugins


def build_sources(mapping, factory: Factory, dead_letter_dir: str | Path | None = None) -> list[Source]:
    """One Source per entry of every plugin's key in ``mapping`` (a loaded ``Mapping``), checked
    against ``factory``. Dead-letter logs go to ``<dead_letter_dir>/deadletter-<source>.jsonl``
    unless an entry names its own; without a directory, to the temp dir. With ``derived:`` signals
    in the mapping, every source is wrapped to feed them (connectors/derived.py)."""
    from .derived import with_derived

    out: list[Source] = []
    for key, plugin in type(mapping).plugins.items():
        if getattr(mapping, key):
            out.extend(plugin.build(mapping, factory, dead_letter_dir))
    return with_derived(out, getattr(mapping, "derived", []))
