"""The rules every source applies between a raw reading and a Sample, in one place.

A raw value becomes a signal value through ``scale``/``offset``, then ``unit``, then the type of
the signal (a float, or text for state and product); a value no rule can place is a named
rejection, never a guess (docs/architecture.md, Contracts, "From raw value to signal value").
Then the timestamp policy picks the clock, and the deadband holds back changes too small to
matter. ``to_sample`` does all of it for one reading; a client's own work ends at "raw value,
raw timestamps, quality" (the StatusCode of OPC UA, the payload of MQTT) and starts again at "put
the Sample on the queue, or count why not".

The templates that name signals (``{line}/{station}/{signal}``) and the patterns they are filled
from (an MQTT topic, an OPC UA browse path) are here too: ``PathPattern``, ``render``,
``template_signals``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, NamedTuple

from pydantic import Field

from factory_models import Quality, Sample, TsKind
from factory_models.schema import NAME
from factory_models.signals import BadValue, coerce, is_text, signal_name

from .config_base import Strict

TimestampPolicy = Literal["source", "server", "receive"]

_GOOD, _BAD = Quality.GOOD, Quality.BAD
_SOURCE, _SERVER, _RECEIVE = TsKind.SOURCE, TsKind.SERVER, TsKind.RECEIVE
_NAN = float("nan")


class Transform(Strict):
    """engineering value = raw x scale + offset; a change smaller than ``deadband`` is not forwarded.

    ``unit`` names the unit of the value after scaling. Today it is checked by nobody and only
    documents the entry; converting it to the signal's unit (pint) belongs in ``_number`` below.
    ``timestamp`` is the preferred clock: ``source`` falls back to the server time, then to the
    receive time; ``server`` falls back to the receive time; the clock actually used is recorded on
    the Sample as its ``ts_kind``.
    """

    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    deadband: Annotated[float, Field(ge=0)] = 0.0
    timestamp: TimestampPolicy = "source"

    def apply(self, raw: float) -> float:
        return raw * self.scale + self.offset


class Overrides(Strict):
    """Per-entry transform fields; None inherits the source's ``defaults``."""

    scale: float | None = None
    offset: float | None = None
    unit: str | None = None
    deadband: Annotated[float, Field(ge=0)] | None = None
    timestamp: TimestampPolicy | None = None

    def transform(self, defaults: Transform) -> Transform:
        own = {k: getattr(self, k) for k in Transform.model_fields if getattr(self, k) is not None}
        return defaults.model_copy(update=own)


def pick_timestamp(
    policy: str, source_ts: float | None, server_ts: float | None, receive_ts: float
) -> tuple[float, TsKind]:
    """The timestamp a Sample carries under ``policy`` and which clock it came from."""
    if policy == "source" and source_ts is not None:
        return source_ts, _SOURCE
    if policy != "receive" and server_ts is not None:
        return server_ts, _SERVER
    return receive_ts, _RECEIVE


class Deadband:
    """Absolute deadband per signal: forward a value only when it moved at least ``deadband`` from
    the last forwarded one. Text values pass when they change. A deadband of 0 forwards everything
    (a repeated counter value is still a heartbeat the twin uses to see the source is alive)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, float | str] = {}

    def passes(self, signal: str, value: float | str, deadband: float) -> bool:
        if deadband <= 0:
            return True
        last = self._last.get(signal)
        if last is not None:
            if isinstance(value, str) or isinstance(last, str):
                if value == last:
                    return False
            elif abs(value - last) < deadband:
                return False
        self._last[signal] = value
        return True

    def forget(self) -> None:
        """After a reconnect the first value must pass again, whatever it is."""
        self._last.clear()


# --- one reading -> a Sample or a named reason --------------------------------------------------


class Rules:
    """One entry's transform for one signal, unpacked: the per-value path reads plain slots, which
    costs less than attribute reads on the pydantic model."""

    __slots__ = ("signal", "text", "state", "scale", "offset", "unit", "deadband", "policy")

    def __init__(self, signal: str, transform: Transform):
        self.signal = signal
        self.text = is_text(signal)
        self.state = signal_name(signal) == "state"
        self.scale = transform.scale
        self.offset = transform.offset
        self.unit = transform.unit
        self.deadband = transform.deadband
        self.policy = transform.timestamp


class Rejected(NamedTuple):
    """A reading no rule can place: ``reason`` is the counted name, ``detail`` says what was wrong."""

    reason: str
    detail: str


class Held(NamedTuple):
    """A reading held back on purpose: not lost, not an error."""

    why: str


#: inside the deadband of the last forwarded value
DEADBAND = Held("deadband")
#: a transport redelivery (MQTT QoS 1 ``dup``) repeating the last reading of its signal
DUPLICATE = Held("duplicate")


def to_sample(
    rules: Rules,
    raw: object,
    quality: Quality,
    source_ts: float | None,
    server_ts: float | None,
    receive_ts: float,
    deadband: Deadband,
    seen: dict[str, tuple] | None = None,
    redelivered: bool = False,
) -> Sample | Rejected | Held:
    """The Sample of one reading of ``rules.signal``, or why there is none.

    ``source_ts``/``server_ts`` are epoch seconds or None when the source gave none. Only Good
    values go through the deadband: a Bad or Uncertain one is news about the source. ``seen``
    (signal -> last (ts, value)) lets a ``redelivered`` reading that repeats it be held as a
    DUPLICATE; sources that never redeliver pass None.
    """
    try:
        value = _number(rules, raw, quality) if not rules.text else _text(rules, raw, quality)
    except BadValue as exc:
        return Rejected(exc.reason, str(exc))
    ts, kind = pick_timestamp(rules.policy, source_ts, server_ts, receive_ts)
    signal = rules.signal
    if seen is not None:
        if redelivered and seen.get(signal) == (ts, value):
            return DUPLICATE
        seen[signal] = (ts, value)
    if rules.deadband and quality is _GOOD and not deadband.passes(signal, value, rules.deadband):
        return DEADBAND
    return Sample(signal, value, ts, quality, kind)


def _number(rules: Rules, raw: object, quality: Quality) -> float:
    """A gauge or counter: a number (or numeric text), scaled. A Bad reading whose value is unusable
    still becomes a Sample, with NaN, so the twin counts it and keeps it out of KPIs."""
    if type(raw) is not float and type(raw) is not int:
        if raw is None and quality is _BAD:
            return _NAN
        if not isinstance(raw, (int, float)) or isinstance(raw, bool):  # numpy scalars and int subclasses pass
            try:
                raw = coerce(rules.signal, raw)
            except BadValue:
                if quality is _BAD:
                    return _NAN
                raise
    try:
        value = float(raw) * rules.scale + rules.offset
    except OverflowError:  # an integer beyond float range
        value = float("inf")
    if value - value == 0.0:  # false for NaN and infinities
        return value
    if quality is _BAD:
        return _NAN
    raise BadValue("not_finite", f"{rules.signal}: {raw!r} (x {rules.scale} + {rules.offset}) is not a finite number"[:200])


def _text(rules: Rules, raw: object, quality: Quality) -> str:
    """A state (a State name or its integer code, leaving as the name) or other text. Product codes
    are often integers, so an integer is taken as its decimal text. A Bad reading without a usable
    value becomes "UNKNOWN" for a state, "" otherwise."""
    if raw is None:
        if quality is _BAD:
            return "UNKNOWN" if rules.state else ""
        raise BadValue("wrong_type", f"{rules.signal}: no value")
    try:
        if rules.state:
            return coerce(rules.signal, raw)
        if type(raw) is str:
            return raw
        if isinstance(raw, int) and not isinstance(raw, bool):
            return str(raw)
        raise BadValue("wrong_type", f"{rules.signal}: expected text or an integer code, got {type(raw).__name__}")
    except BadValue:
        if quality is _BAD:
            return "UNKNOWN" if rules.state else ""
        raise


# --- signal templates and the patterns that fill them ---------------------------------------------

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
