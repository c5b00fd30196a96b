"""The experiment plan: a base factory model and scenarios as overrides of it.

```yaml
base: ../configs/demo_smt.yaml        # relative to the plan file
hours: 24                             # measured per replication, after the warm-up
warmup_hours: 2                       # simulated first and discarded
replications: 20                      # at least 2: an interval needs them
seed: 1                               # replication i runs with seed + i in every scenario
scenarios:
  - name: base
  - name: faster-placer
    set: {lines.smt1.stations.placer-chip.cycle_time_s.ctrl-board: 34}
```

A ``set`` key is a dotted path into the factory model: list items (lines, stations, meters,
products, failures...) by their ``name``, ``*`` for every item of a list or every key of a mapping.
The value replaces what the base holds there (a mapping replaces the whole mapping). A name may hold
dots itself: the longest name that matches is taken. Every scenario's model is validated against the
factory schema before anything runs; each problem names the plan's line of the override (or of the
scenario) and the field, and ``load_plan`` raises one ``ConfigError`` for the plan file (exit 2).

Common random numbers: every scenario runs the same seeds, so replication i of a scenario and of the
base differ only by the overrides, and their difference is paired (see ``stats``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from factory_models import ConfigError
from factory_models.loading import field_path, line_of, load_factory, read_text_file
from factory_models.schema import Factory, Name

REFERENCE = "base"  # the scenario the others are compared with; the first one when none has this name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ScenarioSpec(_Strict):
    name: Name
    description: str | None = None
    set: dict[Any, Any] = {}


class _PlanSpec(_Strict):
    base: str
    hours: Annotated[float, Field(gt=0)]
    warmup_hours: Annotated[float, Field(ge=0)] = 0.0
    replications: int
    seed: int = 0
    scenarios: Annotated[list[_ScenarioSpec], Field(min_length=1)]

    @field_validator("replications")
    @classmethod
    def _at_least_two(cls, v: int) -> int:
        check_replications(v)
        return v


def check_replications(n: int) -> None:
    if n < 2:
        raise ValueError(f"{n} is below 2: a 95 % interval needs at least 2 replications")


@dataclass(frozen=True)
class Override:
    path: str  # as written in the plan
    value: Any
    line: int
    locations: tuple[tuple, ...] = ()  # the concrete places it set, e.g. ('lines', 0, 'stations', 2, 'standby')


@dataclass(frozen=True)
class Scenario:
    name: str
    line: int
    overrides: tuple[Override, ...]
    factory_doc: dict = field(repr=False, compare=False)
    description: str | None = None


@dataclass(frozen=True)
class Plan:
    path: Path
    base: str  # as written in the plan
    base_path: Path
    hours: float
    warmup_hours: float
    replications: int
    seed: int
    scenarios: tuple[Scenario, ...]
    lines: dict = field(default_factory=dict, compare=False)  # top-level key -> line in the plan

    @property
    def reference(self) -> str:
        names = [s.name for s in self.scenarios]
        return REFERENCE if REFERENCE in names else names[0]

    def seeds(self, n: int | None = None) -> list[int]:
        return [self.seed + i for i in range(self.replications if n is None else n)]


class _PathError(ValueError):
    pass


def _where(loc: tuple) -> str:
    return field_path(loc) if loc else "the factory model"


def _get(doc: Any, loc: tuple) -> Any:
    node = doc
    for key in loc:
        if isinstance(node, list) and isinstance(key, int):
            node = node[key]
        elif isinstance(node, dict):
            node = node.get(key)
        else:
            return None
    return node


def expand(doc: dict, path: str) -> list[tuple]:
    """The concrete locations a dotted path names in ``doc``: one per ``*`` match."""
    if not isinstance(path, str) or not path.strip():
        raise _PathError(f"{path!r}: a key of set must be a dotted path such as lines.L.stations.S.field")
    segs = path.split(".")
    if any(not s for s in segs):
        raise _PathError(f"{path!r}: an empty segment (two dots, or a dot at an end)")
    return _expand(doc, segs, ())


def _expand(doc: dict, segs: list[str], loc: tuple) -> list[tuple]:
    if not segs:
        return [loc]
    node = _get(doc, loc)
    if isinstance(node, list):
        if segs[0] == "*":
            if not node:
                raise _PathError(f"{_where(loc)} is an empty list: * matches nothing")
            return [hit for i in range(len(node)) for hit in _expand(doc, segs[1:], loc + (i,))]
        names = [item.get("name") if isinstance(item, dict) else None for item in node]
        for k in range(len(segs), 0, -1):  # the longest name first: names may hold dots
            name = ".".join(segs[:k])
            if name in names:
                return _expand(doc, segs[k:], loc + (names.index(name),))
        known = ", ".join(str(n) for n in names if n is not None) or "none"
        raise _PathError(f"{_where(loc)} has no item named {segs[0]!r} (names: {known})")
    if isinstance(node, dict):
        if segs[0] == "*":
            if not node:
                raise _PathError(f"{_where(loc)} is empty: * matches nothing")
            return [hit for key in node for hit in _expand(doc, segs[1:], loc + (key,))]
        for k in range(len(segs), 0, -1):
            name = ".".join(segs[:k])
            if name in node:
                return _expand(doc, segs[k:], loc + (name,))
        return _expand(doc, segs[1:], loc + (segs[0],))  # not in the base: the schema decides
    if node is None:
        if segs[0] == "*":
            raise _PathError(f"{_where(loc)} is not set in the base: * matches nothing")
        return _expand(doc, segs[1:], loc + (segs[0],))  # a block the base leaves out: made here
    raise _PathError(f"{_where(loc)} is a value ({node!r}); it has no field {segs[0]!r}")


def _assign(doc: dict, loc: tuple, value: Any) -> None:
    node = doc
    for key in loc[:-1]:
        nxt = node[key] if isinstance(node, list) else node.get(key)
        if nxt is None:
            nxt = node[key] = {}
        node = nxt
    node[loc[-1]] = copy.deepcopy(value)


def _common(a: tuple, b: tuple) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _culprit(scenario_line: int, overrides: list[Override], err_loc: tuple) -> tuple[int, str | None]:
    """The plan line (and override path) a validation error comes from: the override whose location
    shares the longest start with the error's; the scenario's line when none stands out."""
    scored = [(max((_common(loc, err_loc) for loc in o.locations), default=0), o) for o in overrides]
    if len(overrides) == 1:
        return overrides[0].line, overrides[0].path
    best = max((s for s, _ in scored), default=0)
    top = [o for s, o in scored if s == best]
    if best > 0 and len(top) == 1:
        return top[0].line, top[0].path
    return scenario_line, None


def _message(err: dict, plan: bool = False) -> tuple[str, str]:
    """(where, what) of a pydantic error: the field's path, and the problem in words."""
    loc = tuple(err["loc"])
    if err["type"] == "extra_forbidden":
        return field_path(loc[:-1]) if loc[:-1] else "", (f"unknown field {loc[-1]!r} of the plan" if plan else
                                                           f"unknown field {loc[-1]!r} (not in the factory schema)")
    got = err.get("input")
    got_text = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
    return field_path(loc), f"{err['msg'].removeprefix('Value error, ')}{got_text}"


def _grouped(problems: list[tuple[str, str, str]]) -> list[str]:
    """One line per (prefix, problem): a * override that fails alike in every match is said once."""
    places: dict[tuple[str, str], list[str]] = {}
    for prefix, where, what in problems:
        places.setdefault((prefix, what), []).append(where)
    out = []
    for (prefix, what), wheres in places.items():
        at = [w for w in wheres if w]
        where = "" if not at else f" at {at[0]}" + (f" and {len(at) - 1} more places" if len(at) > 1 else "")
        out.append(f"{prefix}{what}{where}")
    return out


def _parse(path: Path) -> tuple[dict, yaml.Node]:
    text = read_text_file(path, "an experiment plan (YAML)")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(path, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if not isinstance(data, dict):
        raise ConfigError(path, ["expected a mapping with base, hours, replications and scenarios at the top level"])
    return data, node


def _set_lines(node: yaml.Node, index: int) -> dict[Any, int]:
    """The line of each key of scenario ``index``'s ``set`` mapping."""
    scen = _child(_child(node, "scenarios"), index)
    block = _child(scen, "set")
    out = {}
    if isinstance(block, yaml.MappingNode):
        for k, _v in block.value:
            out[yaml.safe_load(yaml.serialize(k))] = k.start_mark.line + 1
    return out


def _child(node, key):
    if isinstance(node, yaml.MappingNode):
        return next((v for k, v in node.value if k.value == key), None)
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    return None


def load_plan(path: str | Path) -> Plan:
    """Read, resolve and check a plan; every problem is a ConfigError naming the plan and its line."""
    path = Path(path)
    data, node = _parse(path)
    try:
        spec = _PlanSpec.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            line = line_of(node, tuple(err["loc"]))
            where, what = _message(err, plan=True)
            problems.append(f"{'line %d: ' % line if line else ''}{where + ': ' if where else ''}{what}")
        raise ConfigError(path, problems) from None
    lines = {k.value: k.start_mark.line + 1 for k, _ in node.value}

    seen: dict[str, int] = {}
    for i, s in enumerate(spec.scenarios):
        line = line_of(node, ("scenarios", i, "name")) or 0
        if s.name in seen:
            raise ConfigError(path, [f"line {line}: scenario name {s.name!r} is used twice (first on line {seen[s.name]})"])
        seen[s.name] = line

    base_path = Path(spec.base) if Path(spec.base).is_absolute() else path.parent / spec.base
    if not base_path.is_file():
        raise ConfigError(path, [f"line {lines['base']}: base {spec.base!r}: no such file ({base_path})"])
    load_factory(base_path)  # the base itself must be valid: its errors name its own file and lines
    base_doc = yaml.safe_load(read_text_file(base_path))

    scenarios, problems, invalid = [], [], []
    for i, s in enumerate(spec.scenarios):
        scen_line = seen[s.name]
        key_lines = _set_lines(node, i)
        doc = copy.deepcopy(base_doc)
        overrides: list[Override] = []
        for key, value in s.set.items():
            line = key_lines.get(key, scen_line)
            try:
                locs = expand(doc, key)
            except _PathError as exc:
                problems.append(f"line {line}: scenario {s.name!r}: set {key}: {exc}")
                continue
            for loc in locs:
                _assign(doc, loc, value)
            overrides.append(Override(str(key), value, line, tuple(locs)))
        try:
            Factory.model_validate(doc)
        except ValidationError as exc:
            for err in exc.errors(include_url=False):
                line, key = _culprit(scen_line, overrides, tuple(err["loc"]))
                invalid.append((f"line {line}: scenario {s.name!r}: {f'set {key}: ' if key else ''}", *_message(err)))
        scenarios.append(Scenario(s.name, scen_line, tuple(overrides), doc, s.description))
    problems += _grouped(invalid)
    if problems:
        raise ConfigError(path, problems)
    return Plan(path=path, base=spec.base, base_path=base_path, hours=spec.hours, warmup_hours=spec.warmup_hours,
                replications=spec.replications, seed=spec.seed, scenarios=tuple(scenarios), lines=lines)
