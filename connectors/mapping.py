"""The connection mapping file: which source feeds which signal of the twin.

One YAML file per site: ``site:``, one list per connector plugin under the plugin's key
(``opcua:``, ``mqtt:``; connectors/registry.py finds the plugins, each folder's ``sample.yaml``
shows its part) and an optional ``derived:`` list (connectors/derived.py). This module is the file
format only: it builds the ``Mapping`` model from the plugins' config models, loads and validates
the file, and checks every signal an entry names against the factory, and each entry's rules
against the signals it can feed (``unit:`` convertible to the signal's unit, ``values:`` on a state,
``rollover:`` on a counter). The rules applied to each value are in ``connectors/transform.py``.

``load_mapping`` fails at start-up, naming the file, the field and its line, when an entry names a
station or signal the factory does not have, or a rule that cannot apply to it.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import create_model, model_validator

from factory_models import ConfigError, Factory, load_model
from factory_models.loading import field_path, line_of  # the error format of every other config
from factory_models.signals import CONNECTION, SITE, known_signals, signal_kind

from .config_base import Name, Strict
from .derived import DerivedSignal, check_derived
from .registry import Plugin, plugins
from .transform import Overrides, Transform, names_in, render, template_signals
from .units import conversion_factor

# The plugins' models under their old address: twin/runtime, twin/cli, bench and tests import
# them from here.
from .mqtt.config import MqttSource, MqttTls, MqttTopic
from .opcua.config import OpcUaNode, OpcUaSecurity, OpcUaSource, Subscription

__all__ = [
    "DerivedSignal", "Mapping", "MappingBase", "MqttSource", "MqttTls", "MqttTopic", "OpcUaNode", "OpcUaSecurity", "OpcUaSource",
    "Subscription", "check_signals", "load_mapping", "mapping_model",
]


class MappingBase(Strict):
    """``site``, one list of source entries per plugin key (added by ``mapping_model``) and the
    ``derived`` signals."""

    plugins: ClassVar[dict[str, Plugin]] = {}
    site: Name
    derived: list[DerivedSignal] = []

    def sources(self):
        """(key, index, entry) of every source entry, plugin by plugin."""
        for key in self.plugins:
            for i, src in enumerate(getattr(self, key)):
                yield key, i, src

    @model_validator(mode="after")
    def _names(self):
        names = [src.name for _, _, src in self.sources()]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"source names must be unique (they name the {CONNECTION}/<source> signals); repeated: {dup}")
        if not names:
            raise ValueError(f"no sources: give at least one {' or '.join(self.plugins)} entry")
        return self


def mapping_model(found: dict[str, Plugin]) -> type[MappingBase]:
    """The mapping file's model: ``site`` and, per plugin, ``<key>: list[<its config>] = []``."""
    fields = {key: (list[p.config], []) for key, p in found.items()}
    model = create_model("Mapping", __base__=MappingBase, __module__=__name__, **fields)
    model.plugins = dict(found)
    return model


Mapping = mapping_model(plugins())


def _describe_unknown(signal: str, factory: Factory, known: set[str]) -> str:
    """Why ``signal`` is unknown, naming what would have been accepted at the level that fails."""
    parts = signal.split("/")
    if len(parts) != 3:
        return f"unknown signal {signal!r}: expected <line>/<station>/<name> or site/<meter>/<name>"
    line, unit, name = parts
    lines = [ln.name for ln in factory.lines]
    if line == SITE:
        meters = [m.name for m in factory.meters]
        if unit not in meters:
            return f"unknown signal {signal!r}: no site meter {unit!r}; meters are {meters}"
    elif line not in lines:
        return f"unknown signal {signal!r}: no line {line!r}; lines are {lines} (or 'site' for meters)"
    else:
        units = [u for ln, _, u in factory.station_units() if ln.name == line]
        if unit not in units:
            return f"unknown signal {signal!r}: line {line!r} has no station {unit!r}; its stations are {units}"
    names = sorted({s.rsplit("/", 1)[1] for s in known if s.startswith(f"{line}/{unit}/")})
    return f"unknown signal {signal!r}: {line}/{unit} has no signal {name!r}; its signals are {names}"


def check_signals(mapping: MappingBase, factory: Factory) -> list[tuple[tuple, str]]:
    """Problems as (field location, message): site mismatch, unknown fixed signals, templates
    that can match no known signal (a typo in the literal part of a template), rules that cannot
    apply to the signals an entry feeds, and ``derived:`` entries (connectors/derived.py)."""
    known = known_signals(factory)
    problems: list[tuple[tuple, str]] = []
    fed: set[str] = set()
    if mapping.site != factory.site.name:
        problems.append((("site",), f"mapping is for site {mapping.site!r} but the factory is {factory.site.name!r}"))
    for key, i, src in mapping.sources():
        for where, template in src.signal_templates():
            loc = (key, i, *where)
            if not names_in(template) - {"site"}:
                signal = render(template, {"site": mapping.site})
                if signal not in known:
                    problems.append((loc, _describe_unknown(signal, factory, known)))
                    continue
                feeds, fixed = {signal}, True
                fed.add(signal)
            else:
                feeds, fixed = template_signals(template, mapping.site, known), False
                if not feeds:
                    problems.append((loc, f"signal template {template!r} matches no signal of site {factory.site.name!r}"))
                    continue
            entry = _entry_at(src, where)
            defaults = getattr(src, "defaults", None)
            if isinstance(entry, Overrides) and isinstance(defaults, Transform):
                for rule_loc, msg in _rule_problems(entry, defaults, feeds, fixed, factory):
                    item = ((key, i, *where[:-1], *rule_loc) if rule_loc[0] != "defaults" else (key, i, *rule_loc), msg)
                    if item not in problems:
                        problems.append(item)
    problems.extend(check_derived(mapping.derived, known, signal_kind, fed))
    return problems


def _entry_at(src, where: tuple):
    """The entry a signal location points into: ``("nodes", 2, "signal")`` -> ``src.nodes[2]``."""
    obj = src
    for key in where[:-1]:
        try:
            obj = obj[key] if isinstance(key, int) else getattr(obj, key)
        except (AttributeError, IndexError, KeyError, TypeError):
            return None
    return obj


def _rule_problems(entry: Overrides, defaults: Transform, feeds: set[str], fixed: bool,
                   factory: Factory) -> list[tuple[tuple, str]]:
    """Why ``entry``'s rules (its own, or its source's defaults) cannot apply to the signals it
    feeds: a unit that is not the signals' kind of unit, a value map or rollover on no signal that
    takes one. Locations are relative to the entry, or start with "defaults"."""
    out: list[tuple[tuple, str]] = []
    rules = entry.transform(defaults)
    kinds = {s: signal_kind(s) for s in feeds}
    numeric = sorted(s for s, k in kinds.items() if k in ("counter", "gauge"))
    if rules.unit is not None:
        where = ("unit",) if entry.unit is not None else ("defaults", "unit")
        if fixed and not numeric and entry.unit is not None:
            out.append((where, f"{next(iter(feeds))} is text and has no unit; remove unit {rules.unit!r}"))
        for signal in numeric:
            try:
                conversion_factor(rules.unit, signal)
            except ValueError as exc:
                out.append((where, str(exc)))
                break
    if entry.values is not None and "state" not in kinds.values():
        out.append((("values",), f"values: maps state codes, and {_what(feeds, fixed)} has no state signal"))
    counters = sorted(s for s, k in kinds.items() if k == "counter")
    if entry.rollover is not None and not counters:
        out.append((("rollover",), f"rollover: applies to counters, and {_what(feeds, fixed)} feeds none"))
    if rules.rollover is not None:
        # the source makes the counter continuous; a second modulus downstream would read a real
        # reset of the continuous count as a wrap
        twice = sorted({f"kpi.counter_rollover.{s.rsplit('/', 1)[1]}" for s in counters
                        if not s.startswith(f"{SITE}/") and s.rsplit("/", 1)[1] in factory.kpi.counter_rollover})
        metered = {m.name for m in factory.meters if getattr(m, "rollover", None)}
        twice += sorted({f"meters.{s.split('/')[1]}.rollover" for s in counters
                         if s.startswith(f"{SITE}/") and s.split("/")[1] in metered})
        if twice:
            where = ("rollover",) if entry.rollover is not None else ("defaults", "rollover")
            out.append((where, f"the factory also sets {', '.join(twice)}: give a counter's rollover in one "
                               "place (here, per entry, or the factory's)"))
    if entry.eu_range is not None and not numeric:
        out.append((("eu_range",), f"eu_range: applies to numbers, and {_what(feeds, fixed)} feeds text only"))
    return out


def _what(feeds: set[str], fixed: bool) -> str:
    return next(iter(feeds)) if fixed else f"the template's {len(feeds)} signals"


def load_mapping(path: str | Path, factory: Factory, model: type[MappingBase] | None = None) -> MappingBase:
    """The mapping in ``path``, validated and checked against the signals of ``factory``.

    Raises ConfigError naming the file, each bad field with its line, and what was expected.
    ``model`` defaults to ``Mapping`` (every plugin of connectors/).
    """
    mapping = load_model(path, model or Mapping)
    problems = check_signals(mapping, factory)
    if problems:
        import yaml

        node = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        lines = []
        for loc, msg in problems:
            # the 'signal' key may be absent (a browse default); point at the entry then
            line = line_of(node, loc)
            where = f"line {line}: " if line else ""
            lines.append(f"{where}{field_path(loc)}: {msg}")
        raise ConfigError(path, lines)
    return mapping
