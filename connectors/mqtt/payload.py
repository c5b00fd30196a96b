"""Reading one MQTT payload: a bare number or string, or JSON per the default convention.

docs/architecture.md, Contracts: ``{"value": ..., "ts": <RFC 3339 string or epoch milliseconds>,
"quality": "good"|"uncertain"|"bad", "seq": <optional publisher sequence number>}``; the value may
sit deeper (``field: data.power.kw``). Every way a payload can be unusable raises ``BadValue`` with
the reason that gets counted. A ``ts`` text without a UTC offset is read in the source's
``timezone`` when it has one, and rejected (``naive_timestamp``) when it has none: never guessed. ``seq`` (a non-negative integer counting up by one per message on a
topic) lets the client count messages that never arrived (seq.py).
"""

from __future__ import annotations

import json
import json.scanner
import math
from dataclasses import dataclass
from datetime import datetime, tzinfo

from factory_models import Quality

from factory_models.signals import BadValue

#: Plausible device clocks: 2000-01-01 .. 2100-01-01 UTC, epoch seconds. A ts outside is a unit
#: mistake (epoch seconds sent where milliseconds are expected lands in January 1970) or a broken
#: clock; either way it is rejected rather than booked decades away.
TS_MIN_S = 946_684_800.0
TS_MAX_S = 4_102_444_800.0

_QUALITY = {"good": Quality.GOOD, "uncertain": Quality.UNCERTAIN, "bad": Quality.BAD}


@dataclass(frozen=True, slots=True)
class Reading:
    """What a payload says: the raw value (before scale and type checks), the device time in epoch
    seconds if it gave one, its quality, and the publisher's sequence number if it gave one."""

    value: object
    ts: float | None
    quality: Quality
    seq: int | None = None


_MISSING = object()


def _lookup(doc: dict, path: tuple[str, ...]):
    node = doc
    for key in path:
        if type(node) is not dict:
            return _MISSING
        node = node.get(key, _MISSING)
        if node is _MISSING:
            return _MISSING
    return node


def parse_ts(raw: object, tz: tzinfo | None = None) -> float:
    """Epoch seconds from an RFC 3339 string or an epoch-milliseconds number. Text without a UTC
    offset is local time of ``tz``; without ``tz`` it is rejected (``naive_timestamp``), and so is a
    local time the zone's clock change makes ambiguous or skips (``ambiguous_timestamp``)."""
    if isinstance(raw, bool):
        raise BadValue("bad_ts", f"ts must be RFC 3339 text or epoch milliseconds, got {raw!r}")
    if isinstance(raw, (int, float)):
        if not math.isfinite(raw):
            raise BadValue("bad_ts", f"ts {raw!r} is not a finite number")
        ts = raw / 1000.0
        if not TS_MIN_S <= ts < TS_MAX_S:
            hint = " (looks like epoch seconds; send milliseconds)" if TS_MIN_S <= raw < TS_MAX_S else ""
            raise BadValue("bad_ts", f"ts {raw!r} ms is outside 2000..2100{hint}")
        return ts
    if isinstance(raw, str):
        try:
            when = datetime.fromisoformat(raw)
        except ValueError:
            raise BadValue("bad_ts", f"ts {raw[:64]!r} is not RFC 3339 text") from None
        if when.tzinfo is None:
            when = _localize(when, tz, raw)
        ts = when.timestamp()
        if not TS_MIN_S <= ts < TS_MAX_S:
            raise BadValue("bad_ts", f"ts {raw[:64]!r} is outside 2000..2100")
        return ts
    raise BadValue("bad_ts", f"ts must be RFC 3339 text or epoch milliseconds, got {type(raw).__name__}")


def _localize(when: datetime, tz: tzinfo | None, raw: str) -> datetime:
    """A naive device time placed in ``tz``; BadValue when there is no zone, or when the zone's
    clock change makes the time ambiguous (it happened twice) or impossible (it was skipped)."""
    if tz is None:
        raise BadValue("naive_timestamp", f"ts {raw[:64]!r} has no UTC offset and the source has no timezone "
                                          "(add 'Z' or '+08:00' to the device's times, or timezone: to the source)")
    first, second = when.replace(tzinfo=tz, fold=0), when.replace(tzinfo=tz, fold=1)
    if first.utcoffset() != second.utcoffset():
        raise BadValue("ambiguous_timestamp", f"ts {raw[:64]!r} is ambiguous or skipped in {tz} "
                                              "(a clock change); only a UTC offset can place it")
    return first


def parse_seq(raw: object) -> int | None:
    """The publisher's sequence number: absent or null is None, else a non-negative integer."""
    if raw is _MISSING or raw is None:
        return None
    if type(raw) is not int or raw < 0:
        raise BadValue("bad_seq", f"seq must be a non-negative integer, got {str(raw)[:32]!r}")
    return raw


def parse_quality(raw: object) -> Quality:
    q = _QUALITY.get(raw) if type(raw) is str else None
    if q is None and isinstance(raw, str):
        q = _QUALITY.get(raw.lower())
    if q is None:
        raise BadValue("bad_quality", f"quality must be good, uncertain or bad, got {str(raw)[:32]!r}")
    return q


class PayloadReader:
    """Reads payloads with fixed field paths (split once; this runs for every message).

    ``read`` returns ``(value, ts, quality, seq)``; ``parse_payload`` wraps it in a Reading. Raises
    BadValue: ``not_utf8``, ``bad_json``, ``missing_field``, ``wrong_type``, ``bad_ts``,
    ``naive_timestamp``, ``ambiguous_timestamp``, ``bad_quality``, ``bad_seq``; a rejected JSON object's readable ``seq`` rides on the exception
    (``exc.seq``), so a rejected message is not also counted as lost.

    A payload that is a JSON object is read by field paths; one that is a JSON string literal is
    that string; anything else is a bare value, kept as text for ``coerce`` to convert (so ``12.5``
    becomes a number for a gauge and ``DOWN`` stays a state name).
    """

    __slots__ = ("field", "_field", "_ts", "_quality", "_seq", "_tz")

    def __init__(self, field: str = "value", ts_field: str = "ts", quality_field: str = "quality",
                 seq_field: str = "seq", tz: tzinfo | None = None):
        self._tz = tz  # the source's timezone, for device times without a UTC offset
        self.field = field
        self._field = tuple(field.split("."))
        self._ts = tuple(ts_field.split("."))
        self._quality = tuple(quality_field.split("."))
        self._seq = tuple(seq_field.split("."))

    def read(self, payload: bytes) -> tuple[object, float | None, Quality, int | None]:
        try:
            text = payload.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadValue("not_utf8", f"payload is not UTF-8 (byte {exc.start})") from None
        text = text.strip()
        if not text:
            raise BadValue("missing_field", "empty payload")
        if text[0] not in '{["':
            return text, None, Quality.GOOD, None
        try:
            doc = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise BadValue("bad_json", f"payload is not valid JSON: {getattr(exc, 'msg', exc)}") from None
        if type(doc) is str:
            return doc, None, Quality.GOOD, None
        if type(doc) is not dict:
            raise BadValue("wrong_type", f"payload JSON must be an object, a number or a string, got {type(doc).__name__}")
        seq = parse_seq(_lookup(doc, self._seq))
        try:
            return self._fields(doc) + (seq,)
        except BadValue as exc:
            exc.seq = seq  # the message arrived, unusable: rejected, not lost
            raise

    def _fields(self, doc: dict) -> tuple[object, float | None, Quality]:
        value = _lookup(doc, self._field)
        if value is _MISSING:
            raise BadValue("missing_field", f"payload has no field {self.field!r}")
        quality_raw = _lookup(doc, self._quality)
        quality = Quality.GOOD if quality_raw is _MISSING else parse_quality(quality_raw)
        if value is None or type(value) in (dict, list):
            # a device may send null with quality bad: that is a Bad sample, not a malformed one
            if not (value is None and quality == Quality.BAD):
                raise BadValue("wrong_type", f"field {self.field!r} holds {type(value).__name__}, not a value")
        ts_raw = _lookup(doc, self._ts)
        ts = None if ts_raw is _MISSING or ts_raw is None else parse_ts(ts_raw, self._tz)
        return value, ts, quality


def parse_payload(
    payload: bytes, field: str = "value", ts_field: str = "ts", quality_field: str = "quality", seq_field: str = "seq",
    tz: tzinfo | None = None,
) -> Reading:
    """The reading in one payload (see PayloadReader for the rules and the rejection reasons)."""
    return Reading(*PayloadReader(field, ts_field, quality_field, seq_field, tz).read(payload))


_scan_json = json.scanner.make_scanner(json.JSONDecoder())  # the C scanner behind json.loads
_TS_MIN_MS, _TS_MAX_MS = TS_MIN_S * 1000.0, TS_MAX_S * 1000.0


def read_fast(fields: tuple[str, str, str, str], payload: bytes) -> tuple[float | int, float | None, Quality, int | None] | None:
    """``PayloadReader.read`` for the common payload, a JSON object with a number, epoch-ms ``ts``
    (or none), quality good (or none) and an integer ``seq`` (or none), about twice as fast. None
    for anything else, which the full reader then reads (and rejects with the exact reason): same
    results, only sooner."""
    try:
        doc, end = _scan_json(payload.decode("utf-8"), 0)
    except Exception:  # not UTF-8, leading space, not JSON ...: the full reader says which
        return None
    if type(doc) is not dict or end != len(payload):  # trailing text (or multi-byte UTF-8): full reader
        return None
    field, ts_field, quality_field, seq_field = fields
    value = doc.get(field, _MISSING)
    if type(value) is not float and type(value) is not int:
        return None
    quality = doc.get(quality_field, "good")
    if quality != "good" or type(quality) is not str:
        return None
    ts = doc.get(ts_field)
    if ts is not None:
        if type(ts) is not int and type(ts) is not float:
            return None
        if not _TS_MIN_MS <= ts < _TS_MAX_MS:  # also false for NaN
            return None
        ts = ts / 1000.0
        if not TS_MIN_S <= ts < TS_MAX_S:
            return None
    seq = doc.get(seq_field)
    if seq is not None and (type(seq) is not int or seq < 0):
        return None
    return value, ts, Quality.GOOD, seq
