"""Signal templates and the patterns they are filled from: an MQTT topic, an OPC UA browse path.

``PathPattern`` matches a ``/``-separated path (``{name}`` one level, ``+`` an anonymous level, ``#``
the rest); ``render`` fills a template such as ``{line}/{station}/{signal}`` from its values;
``template_signals`` lists the known signals a template can produce. Every source plugin uses them
(connectors/transform.py re-exports them under their old address).
"""

from __future__ import annotations

import re

from factory_models.schema import NAME

_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_PLACEHOLDERS = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME_RE = re.compile(NAME)


class PathPattern:
    """A ``/``-separated pattern such as ``factory/{site}/{line}/{station}/{signal}``.

    Each ``{name}`` stands for exactly one path level (a signal name segment, so no ``/``); ``+``
    for one anonymous level; ``#`` (last level only) for any remaining levels. ``fixed`` values
    (typically ``site``) are substituted before matching, so only that site's paths match.
    """

    def __init__(self, pattern: str, fixed: dict[str, str] | None = None):
        self.pattern = pattern
        self.levels: list[tuple[str, str]] = []  # (kind, text): kind is lit | var | plus | hash
        levels = pattern.split("/")
        for i, level in enumerate(levels):
            m = _PLACEHOLDER.match(level)
            if m:
                name = m.group(1)
                if fixed and name in fixed:
                    self.levels.append(("lit", fixed[name]))
                else:
                    self.levels.append(("var", name))
            elif level == "+":
                self.levels.append(("plus", level))
            elif level == "#":
                if i != len(levels) - 1:
                    raise ValueError(f"'#' may only be the last level of {pattern!r}")
                self.levels.append(("hash", level))
            elif level == "" and 0 < i < len(levels) - 1 or any(c in level for c in "{}+#"):
                raise ValueError(
                    f"level {level!r} of {pattern!r} is neither text nor a '{{name}}' placeholder"
                )
            else:
                self.levels.append(("lit", level))
        names = [t for k, t in self.levels if k == "var"]
        if len(set(names)) != len(names):
            raise ValueError(f"placeholder repeated in {pattern!r}")
        self.names = frozenset(names) | frozenset(fixed or ()) & names_in(pattern)
        self.fixed = dict(fixed or {})

    def subscription(self) -> str:
        """The MQTT topic filter this pattern needs (placeholders become ``+``)."""
        return "/".join("+" if k in ("var", "plus") else t for k, t in self.levels)

    def match(self, path: str) -> dict[str, str] | None:
        """The placeholder values if ``path`` matches, else None. A value must be a valid name."""
        parts = path.split("/")
        out = dict(self.fixed)
        for i, (kind, text) in enumerate(self.levels):
            if kind == "hash":
                return out
            if i >= len(parts):
                return None
            part = parts[i]
            if kind == "lit":
                if part != text:
                    return None
            elif kind == "var":
                if not _NAME_RE.match(part) or len(part) > 64:
                    return None
                out[text] = part
            elif not part:
                return None
        return out if len(parts) == len(self.levels) else None


def names_in(template: str) -> frozenset[str]:
    """The placeholder names of a template or pattern."""
    return frozenset(_PLACEHOLDERS.findall(template))


def render(template: str, values: dict[str, str]) -> str:
    """``{line}/{station}/{signal}`` filled from ``values`` (every placeholder must be there)."""
    return _PLACEHOLDERS.sub(lambda m: values[m.group(1)], template)


def template_regex(template: str) -> re.Pattern:
    """A regex matching every signal a template can produce (each placeholder: one path segment)."""
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", template)
    return re.compile("".join("[^/]+" if _PLACEHOLDER.match(p) else re.escape(p) for p in parts) + "$")


def template_signals(template: str, site: str, known: set[str] | frozenset[str], *, meters: bool = True) -> set[str]:
    """The signals of ``known`` that ``template`` can produce for ``site``. ``meters=False`` leaves
    the site meters (``site/...``) out unless the template names them literally."""
    rx = template_regex(template.replace("{site}", site))
    keep_meters = meters or template.startswith("site/")
    return {s for s in known if rx.match(s) and (keep_meters or not s.startswith("site/"))}


def check_template(template: str, available: frozenset[str], pattern: str) -> None:
    """ValueError when ``template`` uses a placeholder ``pattern`` does not define."""
    missing = names_in(template) - available
    if missing:
        raise ValueError(
            f"signal template {template!r} uses {sorted(missing)}, which pattern {pattern!r} does not define"
        )
