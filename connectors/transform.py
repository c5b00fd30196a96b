"""The rules every source applies between a raw reading and a Sample, in one place.

A raw value becomes a signal value through ``scale``/``offset``, then ``unit`` (converted to the
signal's own unit: connectors/units.py), then the type of the signal (a float, or text for state
and product; ``values:`` turns a state code into a twin state: connectors/valuemaps.py); a value no
rule can place is a named rejection, never a guess (docs/architecture.md, Contracts, "From raw
value to signal value"). A counter with ``rollover:`` is made continuous (connectors/rollover.py);
a number outside ``eu_range`` is rejected. Then the timestamp policy picks the clock, and the
deadband holds back changes too small to matter. ``to_sample`` does all of it for one reading; a
client's own work ends at "raw value, raw timestamps, quality" (the StatusCode of OPC UA, the
payload of MQTT) and starts again at "put the Sample on the queue, or count why not".

The templates that name signals and the patterns that fill them live in connectors/patterns.py
and are re-exported here: ``PathPattern``, ``render``, ``template_signals``.
"""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal, NamedTuple

from pydantic import Field, model_validator

from factory_models import Quality, Sample, TsKind
from factory_models.signals import BadValue, coerce, is_text, signal_kind, signal_name

from .config_base import Strict
from .patterns import PathPattern, check_template, names_in, render, template_regex, template_signals
from .rollover import Unwrap
from .units import UnitName, conversion_factor
from .valuemaps import ValueMap, ValuesSpec, value_map

__all__ = [
    "DEADBAND", "DUPLICATE", "Deadband", "Held", "Overrides", "PathPattern", "Rejected", "Rules", "SignalMemory",
    "Transform", "check_template", "names_in", "pick_timestamp", "render", "template_regex", "template_signals",
    "to_sample",
]

TimestampPolicy = Literal["source", "server", "receive"]

_GOOD, _BAD = Quality.GOOD, Quality.BAD
_SOURCE, _SERVER, _RECEIVE = TsKind.SOURCE, TsKind.SERVER, TsKind.RECEIVE
_NAN = float("nan")
_UNMAPPED = "unmapped_value"


class Transform(Strict):
    """engineering value = (raw x scale + offset) in ``unit``, converted to the signal's unit; a
    change smaller than ``deadband`` (in the signal's unit) is not forwarded.

    ``timestamp`` is the preferred clock: ``source`` falls back to the server time, then to the
    receive time; ``server`` falls back to the receive time; the clock actually used is recorded on
    the Sample as its ``ts_kind``. ``values`` (state signals): a built-in table name or an inline
    map raw -> twin state. ``rollover`` (counters): the counter's maximum in raw counts, e.g. 65535.
    ``eu_range`` (numbers): [low, high] of the raw value, as the device's EURange states it.
    """

    scale: float = 1.0
    offset: float = 0.0
    unit: UnitName | None = None
    deadband: Annotated[float, Field(ge=0)] = 0.0
    timestamp: TimestampPolicy = "source"
    values: ValuesSpec | None = None
    rollover: Annotated[int, Field(ge=1)] | None = None
    eu_range: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _range(self):
        _check_range(self.eu_range)
        return self

    def apply(self, raw: float) -> float:
        return raw * self.scale + self.offset


class Overrides(Strict):
    """Per-entry transform fields; None inherits the source's ``defaults``."""

    scale: float | None = None
    offset: float | None = None
    unit: UnitName | None = None
    deadband: Annotated[float, Field(ge=0)] | None = None
    timestamp: TimestampPolicy | None = None
    values: ValuesSpec | None = None
    rollover: Annotated[int, Field(ge=1)] | None = None
    eu_range: tuple[float, float] | None = None

    @model_validator(mode="after")
    def _range(self):
        _check_range(self.eu_range)
        return self

    def transform(self, defaults: Transform) -> Transform:
        own = {k: getattr(self, k) for k in Transform.model_fields if getattr(self, k) is not None}
        return defaults.model_copy(update=own)  # each field was validated where it was written


def _check_range(eu_range: tuple[float, float] | None) -> None:
    if eu_range is not None and not eu_range[0] < eu_range[1]:
        raise ValueError(f"eu_range must be [low, high] with low < high, got {list(eu_range)}")


def pick_timestamp(
    policy: str, source_ts: float | None, server_ts: float | None, receive_ts: float
) -> tuple[float, TsKind]:
    """The timestamp a Sample carries under ``policy`` and which clock it came from."""
    if policy == "source" and source_ts is not None:
        return source_ts, _SOURCE
    if policy != "receive" and server_ts is not None:
        return server_ts, _SERVER
    return receive_ts, _RECEIVE


class SignalMemory:
    """What a source remembers per signal between readings; one per source, passed to every
    ``to_sample``.

    The deadband: forward a value only when it moved at least ``deadband`` from the last forwarded
    one (text values pass when they change; a deadband of 0 forwards everything: a repeated counter
    value is still a heartbeat the twin uses to see the source is alive); ``forget`` after a
    reconnect so the first value passes whatever it is. ``unwrap``: the counters' rollovers, kept
    across reconnects. ``unmapped``: values a value map did not hold, per signal (for ``stats()``).
    """

    __slots__ = ("_last", "unwrap", "unmapped")

    def __init__(self) -> None:
        self._last: dict[str, float | str] = {}
        self.unwrap = Unwrap()
        self.unmapped: Counter[str] = Counter()

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


#: the old name: every client made one ``Deadband()`` per source, which is now its signal memory
Deadband = SignalMemory


# --- one reading -> a Sample or a named reason --------------------------------------------------


class Rules:
    """One entry's transform for one signal, unpacked: the per-value path reads plain slots, which
    costs less than attribute reads on the pydantic model. The unit's conversion factor is folded
    into ``scale`` and ``offset``. ``problem``: why no value of this signal can be used (a unit
    that cannot become the signal's; the mapping's check normally stops that at start-up)."""

    __slots__ = ("signal", "text", "state", "scale", "offset", "unit", "deadband", "policy", "values",
                 "rollover", "eu_range", "checks", "problem")

    def __init__(self, signal: str, transform: Transform):
        self.signal = signal
        self.text = is_text(signal)
        self.state = signal_name(signal) == "state"
        self.unit = transform.unit
        self.problem: str | None = None
        factor = 1.0
        if not self.text:
            try:
                factor = conversion_factor(transform.unit, signal)
            except ValueError as exc:
                self.problem = str(exc)
        self.scale = transform.scale * factor
        self.offset = transform.offset * factor
        self.deadband = transform.deadband
        self.policy = transform.timestamp
        self.values: ValueMap | None = (
            value_map(transform.values) if self.state and transform.values is not None else None)
        try:
            counter = not self.text and signal_kind(signal) == "counter"
        except KeyError:
            counter = False
        self.rollover: int | None = transform.rollover if counter else None
        self.eu_range: tuple[float, float] | None = None if self.text else transform.eu_range
        self.checks = self.rollover is not None or self.eu_range is not None

    def set_eu_range(self, low: float, high: float) -> bool:
        """Use the EURange a server states for this node (OPC UA AnalogItemType) when the mapping
        gives none; True when it now applies. The mapping's ``eu_range`` always wins."""
        if self.text or self.eu_range is not None or not low < high:
            return False
        self.eu_range = (float(low), float(high))
        self.checks = True
        return True


class Rejected(NamedTuple):
    """A reading no rule can place: ``reason`` is the counted name, ``detail`` says what was wrong.
    ``sample``: what the client still forwards after counting it (a state value the value map
    does not hold leaves the station UNKNOWN: an ``UNKNOWN`` state Sample), else None."""

    reason: str
    detail: str
    sample: Sample | None = None


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
    deadband: SignalMemory,
    seen: dict[str, tuple] | None = None,
    redelivered: bool = False,
) -> Sample | Rejected | Held:
    """The Sample of one reading of ``rules.signal``, or why there is none.

    ``source_ts``/``server_ts`` are epoch seconds or None when the source gave none. Only Good
    values go through the deadband: a Bad or Uncertain one is news about the source. ``seen``
    (signal -> last (ts, value)) lets a ``redelivered`` reading that repeats it be held as a
    DUPLICATE; sources that never redeliver pass None. ``deadband`` is the source's SignalMemory.

    A state value its value map does not hold is ``Rejected("unmapped_value", ..., sample)`` whose
    ``sample`` is the station's UNKNOWN state at the reading's time: count the rejection, then
    forward the sample (when it is not None), so the twin never keeps the previous state.
    """
    if rules.problem is not None:
        return Rejected("bad_unit", rules.problem)
    try:
        value = _number(rules, raw, quality, deadband) if not rules.text else _text(rules, raw, quality)
    except BadValue as exc:
        if exc.reason != _UNMAPPED:
            return Rejected(exc.reason, str(exc))
        deadband.unmapped[rules.signal] += 1
        out = _forward(rules, "UNKNOWN", quality, source_ts, server_ts, receive_ts, deadband, seen, False)
        return Rejected(_UNMAPPED, str(exc), out if type(out) is Sample else None)
    return _forward(rules, value, quality, source_ts, server_ts, receive_ts, deadband, seen, redelivered)


def _forward(rules: Rules, value: float | str, quality: Quality, source_ts: float | None,
             server_ts: float | None, receive_ts: float, memory: SignalMemory, seen: dict | None,
             redelivered: bool) -> Sample | Held:
    ts, kind = pick_timestamp(rules.policy, source_ts, server_ts, receive_ts)
    signal = rules.signal
    if seen is not None:
        if redelivered and seen.get(signal) == (ts, value):
            return DUPLICATE
        seen[signal] = (ts, value)
    if rules.deadband and quality is _GOOD and not memory.passes(signal, value, rules.deadband):
        return DEADBAND
    return Sample(signal, value, ts, quality, kind)


def _number(rules: Rules, raw: object, quality: Quality, memory: SignalMemory) -> float:
    """A gauge or counter: a number (or numeric text), scaled and in the signal's unit. A Bad
    reading whose value is unusable still becomes a Sample, with NaN, so the twin counts it and
    keeps it out of KPIs."""
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
    if rules.checks and quality is not _BAD:
        raw = _checked(rules, raw, memory)
    try:
        value = float(raw) * rules.scale + rules.offset
    except OverflowError:  # an integer beyond float range
        value = float("inf")
    if value - value == 0.0:  # false for NaN and infinities
        return value
    if quality is _BAD:
        return _NAN
    raise BadValue("not_finite", f"{rules.signal}: {raw!r} (x {rules.scale} + {rules.offset}) is not a finite number"[:200])


def _checked(rules: Rules, raw: float, memory: SignalMemory) -> float:
    """The raw value inside ``eu_range``, and made continuous across ``rollover``s; BadValue
    ``out_of_range`` otherwise."""
    if rules.eu_range is not None:
        low, high = rules.eu_range
        if not low <= raw <= high:
            raise BadValue("out_of_range", f"{rules.signal}: {raw!r} is outside its EURange [{low:g}, {high:g}]")
    if rules.rollover is not None:
        raw = memory.unwrap.total(rules.signal, raw, rules.rollover)
    return raw


def _text(rules: Rules, raw: object, quality: Quality) -> str:
    """A state (through its value map when it has one; else a State name or the twin's own integer
    code, leaving as the name) or other text. Product codes are often integers, so an integer is
    taken as its decimal text. A Bad reading without a usable value becomes "UNKNOWN" for a state,
    "" otherwise."""
    if raw is None:
        if quality is _BAD:
            return "UNKNOWN" if rules.state else ""
        raise BadValue("wrong_type", f"{rules.signal}: no value")
    values = rules.values
    if values is not None:
        state = values.lookup(raw)
        if state is not None:
            return state
        if quality is _BAD:
            return "UNKNOWN"
        raise BadValue(_UNMAPPED, f"{rules.signal}: {str(raw)[:64]!r} is not in value map {values.name!r}")
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
