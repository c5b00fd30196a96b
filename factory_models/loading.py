"""Reading a factory model from a YAML file, with errors that name the file, the field and the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from .schema import Factory

M = TypeVar("M", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration that cannot be used. Its text names the file, each bad field and what was expected."""

    def __init__(self, path: str | Path, problems: list[str]):
        self.path = str(path)
        self.problems = problems
        if len(problems) == 1 and "\n" not in problems[0]:
            # one problem fits the CLI's one-line form: "<path>: <problem>"
            super().__init__(f"{self.path}: {problems[0]}")
        else:
            super().__init__(f"{self.path}: invalid configuration\n" + "\n".join(f"  - {p}" for p in problems))


def read_text_file(path: str | Path, what: str = "a YAML file") -> str:
    """The UTF-8 text of ``path``; a missing file, a directory, a binary file or another encoding is a
    one-line ConfigError saying which, so that no command shows a traceback for a wrong file."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(path, [f"is a directory; expected {what}"])
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(path, ["no such file"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror or exc}"]) from None
    if b"\0" in raw[:65536]:
        raise ConfigError(path, [f"a binary file; expected {what}"])
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(path, [f"line {line}, column {column}: byte 0x{raw[exc.start]:02x} is not UTF-8 "
                                 f"(save the file as UTF-8; Latin-1 and other encodings are not read)"]) from None


def line_of(node: yaml.Node | None, loc: tuple[Any, ...]) -> int | None:
    """The 1-based line of the YAML node at a pydantic error location, as deep as it can be followed."""
    line = None
    for key in loc:
        if node is None:
            break
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            node = node.value[key]
        else:
            # discriminated unions add the tag name ("exponential") to the location; skip it
            continue
    if node is not None:
        line = node.start_mark.line + 1
    return line


def field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for key in loc:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "(top level)"


def load_model(path: str | Path, model: type[M]) -> M:
    """Parse and validate one YAML file into ``model``; every failure is a ConfigError."""
    path = Path(path)
    text = read_text_file(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(path, [f"{where}not valid YAML ({getattr(exc, 'problem', exc)})"]) from None
    if data is None:
        raise ConfigError(path, ["the file is empty (or only comments); expected a mapping at the top level"])
    if not isinstance(data, dict):
        raise ConfigError(path, [f"expected a mapping at the top level, got {type(data).__name__}"])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            line = line_of(node, loc)
            where = f"line {line}: " if line else ""
            got = err.get("input")
            got_text = "" if isinstance(got, (dict, list)) or got is None else f" (got {got!r})"
            problems.append(f"{where}{field_path(loc)}: {err['msg']}{got_text}")
        raise ConfigError(path, problems) from None


def load_factory(path: str | Path) -> Factory:
    """The factory model declared in a YAML file (see configs/demo_smt.yaml)."""
    return load_model(path, Factory)
