"""``factory-twin check`` of a connection mapping: what it declares, and (given the factory too)
whether every signal it names exists. The factory model's own description is ``runtime.describe``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from factory_models import ConfigError, Factory, load_model
from factory_models.loading import read_text_file
from factory_models.signals import known_signals

#: a factory model has these at the top level; a mapping has none of them
_FACTORY_KEYS = {"lines", "calendar", "products", "meters", "simulation"}


def is_mapping_file(path: Path) -> bool:
    """Whether ``path`` holds a connection mapping rather than a factory model: ``site:`` is a
    name there (a block in a factory) and the other keys are connector keys (``opcua:``, ``mqtt:``).
    A file that cannot be read or parsed is not one: loading it as a factory says why."""
    try:
        data = yaml.safe_load(read_text_file(path))
    except (ConfigError, yaml.YAMLError):
        return False
    if not isinstance(data, dict) or _FACTORY_KEYS & set(data):
        return False
    return isinstance(data.get("site"), str) or bool(set(data) & set(_plugin_keys()))


def _plugin_keys() -> list[str]:
    from connectors.mapping import Mapping

    keys = getattr(Mapping, "plugins", None)  # one key per connector plugin, when they are plugins
    return list(keys) if keys else [k for k in Mapping.model_fields if k != "site"]


def _templates(src) -> list[str]:
    """The signal (or signal template) of every entry of a source."""
    if hasattr(src, "signal_templates"):
        return [t for _, t in src.signal_templates()]
    if hasattr(src, "nodes"):
        return [n.signal_template for n in src.nodes]
    return [t.signal for t in getattr(src, "topics", [])]


def _entries(src) -> dict[str, int]:
    """Entries of a source by kind: fixed nodes and browse patterns (OPC UA), topic patterns (MQTT)."""
    if hasattr(src, "nodes"):
        browse = sum(1 for n in src.nodes if getattr(n, "browse", None))
        return {"nodes": len(src.nodes) - browse, "browse_patterns": browse}
    if hasattr(src, "topics"):
        return {"topics": len(src.topics)}
    if hasattr(src, "metrics"):  # Sparkplug B: metric name patterns
        return {"metrics": len(src.metrics)}
    return {}


def _address(src) -> str | None:
    return getattr(src, "endpoint", None) or getattr(src, "url", None)


def _matches(template: str, site: str, known: set[str]) -> set[str]:
    """The known signals a template can produce: ``{site}`` is the site, any other ``{name}`` one
    path segment."""
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", template.replace("{site}", site))
    rx = re.compile("".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts) + r"\Z")
    return {s for s in known if rx.match(s)}


def describe_mapping(path: Path, config: Path | None = None, factory: Factory | None = None) -> dict[str, Any]:
    """The mapping in ``path``, validated (and with ``factory`` checked signal by signal: an unknown
    one is a ConfigError naming the file, the field and its line)."""
    from connectors.mapping import Mapping, load_mapping

    mapping = load_model(path, Mapping) if factory is None else load_mapping(path, factory)
    sources = []
    for key in _plugin_keys():
        for src in getattr(mapping, key, None) or []:
            sources.append({"name": src.name, "protocol": key, "address": _address(src), **_entries(src),
                            "signals": _templates(src)})
    doc: dict[str, Any] = {"mapping": str(path), "valid": True, "site": mapping.site, "sources": sources,
                           "checked_against": None}
    if factory is not None:
        known = set(known_signals(factory))
        covered = set().union(*(_matches(t, mapping.site, known) for s in sources for t in s["signals"]))
        doc["checked_against"] = str(config)
        doc["signals"] = {"known": len(known), "covered": len(covered & known),
                          "not_covered": sorted(known - covered)}
    return doc


def print_mapping(doc: dict, console) -> None:
    console.print(f"[bold green]valid[/bold green] mapping {doc['mapping']}: site [bold]{doc['site']}[/bold], "
                  f"{len(doc['sources'])} source(s)", highlight=False)
    for s in doc["sources"]:
        counts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in s.items()
                           if k in ("nodes", "browse_patterns", "topics", "metrics") and n)
        console.print(f"  {s['name']} ({s['protocol']}, {s['address']}): {counts}", highlight=False, markup=False)
        for t in s["signals"]:
            console.print(f"    -> {t}", highlight=False, markup=False)
    sig = doc.get("signals")
    if sig is None:
        console.print("signals not checked against a factory; to check them: "
                      f"factory-twin check CONFIG --mapping {doc['mapping']}", highlight=False, markup=False)
    else:
        console.print(f"checked against {doc['checked_against']}: every signal named exists; the mapping can feed "
                      f"{sig['covered']} of the factory's {sig['known']} signals", highlight=False)
