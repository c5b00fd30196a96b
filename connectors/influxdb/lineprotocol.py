"""InfluxDB line protocol for the twin's three measurements: `signal`, `station_kpi`, `emissions`.

Syntax and escaping follow the InfluxDB line protocol reference
(https://docs.influxdata.com/influxdb/v2/reference/syntax/line-protocol/):

- measurement names are fixed here and need no escaping;
- tag keys, tag values, field keys: escape ``,``, ``=`` and space;
- string field values: double-quoted, escape ``"`` and ``\\``;
- a newline may not appear in a tag or in a string field (we refuse it rather than mangle it);
- an empty tag value is not allowed: the tag is omitted.

Tags are written sorted by key (the order InfluxDB stores them in, which spares it a sort).

Typing rule, so that a field never changes type (InfluxDB fixes a field's type on first write and
rejects later points of another type): every numeric field is a float, always (counts too, since
``KpiWindow`` holds them as floats and line totals may be fractional); text fields are strings.
Integers (``i`` suffix) are never written. A value that is None, NaN or infinite is omitted, never
written as 0. Lines are built with f-strings, not ``influxdb_client.Point`` (about 8 us a point
here, against about 1 us; docs/connectors.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from factory_models.records import KPI_FIELDS, EmissionsRecord, KpiWindow, Quality, Sample

#: Multipliers from epoch seconds to the integer timestamp of each write precision.
PRECISIONS = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}

_TAG_ESCAPES = str.maketrans({",": r"\,", "=": r"\=", " ": r"\ "})
_STRING_ESCAPES = str.maketrans({'"': r"\"", "\\": "\\\\"})

#: Emission fields written as floats, in order (per gas masses in kg of the gas itself; the counts
#: of readings and resets too, by the typing rule above).
EMISSION_FLOAT_FIELDS = ("activity", "co2e_kg", "co2_kg", "ch4_kg", "n2o_kg", "estimated_activity", "readings", "resets")
#: Emission fields written as strings.
EMISSION_STRING_FIELDS = ("activity_unit", "factor_id", "factor_version", "gwp_set", "data_quality")


class LineProtocolError(ValueError):
    """A record that cannot be expressed as a valid line (the message says which part and why)."""


def escape_tag(text: str) -> str:
    """Escape a tag key, tag value or field key; refuse newlines, which the syntax cannot carry."""
    if "\n" in text or "\r" in text:
        raise LineProtocolError(f"newline in tag or field key {text!r}")
    if text.endswith("\\"):
        # A trailing backslash would escape the following separator.
        raise LineProtocolError(f"trailing backslash in tag {text!r}")
    return text.translate(_TAG_ESCAPES)


def quote_string(text: str) -> str:
    """A string field value, quoted and escaped."""
    if "\n" in text or "\r" in text:
        raise LineProtocolError(f"newline in string field {text!r}")
    return '"' + text.translate(_STRING_ESCAPES) + '"'


def format_float(x: float) -> str | None:
    """A float field value, or None when it must be omitted (NaN and infinities have no syntax).

    ``repr`` gives the shortest text that reads back to the same double, so values round-trip
    exactly; it never ends in ``i``, so the field is typed float even for whole numbers.
    """
    x = float(x)
    return repr(x) if math.isfinite(x) else None


def timestamp(ts_s: float, precision: str = "ms") -> int:
    """Epoch seconds to the integer timestamp of ``precision`` (rounded to the nearest unit).

    For ``ns`` the time is rounded to the microsecond first: a float64 epoch time does not hold
    nanoseconds, and pretending otherwise would make the same instant map to different points.
    """
    if not math.isfinite(ts_s):
        raise LineProtocolError(f"timestamp {ts_s!r} is not finite")
    if precision == "ns":
        return round(ts_s * 1_000_000) * 1000
    try:
        return round(ts_s * PRECISIONS[precision])
    except KeyError:
        raise LineProtocolError(f"precision {precision!r}; expected one of {', '.join(PRECISIONS)}") from None


def tag_set(tags: dict[str, str | None]) -> str:
    """``,k=v,...`` with keys sorted and empty or None values left out."""
    return "".join(f",{escape_tag(k)}={escape_tag(v)}" for k, v in sorted(tags.items()) if v)


def split_signal(signal: str) -> tuple[str, str, str]:
    """``line/station/name`` (or ``site/meter/name``) into its three tags; the name keeps any '/'."""
    parts = signal.split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise LineProtocolError(f"signal {signal!r} is not <line>/<station>/<name>")
    return parts[0], parts[1], parts[2]


_QUALITY_FIELD = {q: f",quality={quote_string(q.value)}" for q in Quality}


class SignalLines:
    """Builds `signal` lines; caches the escaped series key of each (site, signal) pair.

    The cache matters: a twin writes the same few hundred signals over and over, and escaping
    their tags is most of the cost of a line.
    """

    def __init__(self, precision: str = "ms") -> None:
        if precision not in PRECISIONS:
            raise LineProtocolError(f"precision {precision!r}; expected one of {', '.join(PRECISIONS)}")
        self.precision = precision
        self._mult = PRECISIONS[precision]
        self._series: dict[tuple[str, str], str] = {}

    def series(self, site: str, signal: str) -> str:
        key = (site, signal)
        s = self._series.get(key)
        if s is None:
            line, station, name = split_signal(signal)
            s = "signal" + tag_set({"site": site, "line": line, "station": station, "signal": name})
            if len(self._series) > 100_000:  # a runaway set of names must not eat memory
                self._series.clear()
            self._series[key] = s
        return s

    def line(self, site: str, sample: Sample) -> str:
        """One line; LineProtocolError when the sample has no valid field or a bad name."""
        series = self.series(site, sample.signal)
        v = sample.value
        if isinstance(v, str):
            field = f"state={quote_string(v)}"
        else:
            text = format_float(v)
            if text is None:
                raise LineProtocolError(f"signal {sample.signal!r} value {v!r} is not finite")
            field = f"value={text}"
        ts = sample.ts
        if self._mult == 1000 and math.isfinite(ts):  # the common case, inlined
            t = round(ts * 1000)
        else:
            t = timestamp(ts, self.precision)
        quality = _QUALITY_FIELD.get(sample.quality) or f",quality={quote_string(str(sample.quality))}"
        return f"{series} {field}{quality} {t}"


    def lines(self, site: str, samples: Iterable[Sample]) -> tuple[list[str], list[tuple[Sample, str]]]:
        """Lines of many samples of one site, and (sample, reason) for each refused one.

        The same result as calling ``line`` on each, with the common case (a finite float at
        millisecond precision, a known quality) kept to one dictionary lookup and one f-string.
        """
        out: list[str] = []
        bad: list[tuple[Sample, str]] = []
        append = out.append
        series_of: dict[str, str] = {}
        quality_of = _QUALITY_FIELD
        fast = self._mult == 1000
        isfinite = math.isfinite
        for s in samples:
            v = s.value
            series = series_of.get(s.signal)
            q = quality_of.get(s.quality)
            if series is not None and q is not None and fast and type(v) is float and isfinite(v) and isfinite(s.ts):
                append(f"{series} value={v!r}{q} {round(s.ts * 1000)}")
                continue
            try:
                append(self.line(site, s))
                series_of[s.signal] = self.series(site, s.signal)
            except LineProtocolError as e:
                bad.append((s, str(e)))
        return out, bad


def kpi_window_tag(w: KpiWindow) -> str:
    """The `window` tag: the window length in whole seconds (``60s``), or ``open`` without an end.

    Minute and shift windows of one station can end at the same instant; without this tag they
    would be one point in InfluxDB and the second write would overwrite the first.
    """
    if w.start is None or w.end is None:
        return "open"
    return f"{round(w.end - w.start)}s"


def kpi_line(w: KpiWindow, precision: str = "ms") -> str:
    """A `station_kpi` line for a station, line or site window.

    Tags: ``site``, ``line`` (omitted for a site row), ``station`` (omitted for line and site
    rows), ``window``. Timestamp: the window end, or its start while it is still open.
    """
    when = w.end if w.end is not None else w.start
    if when is None:
        raise LineProtocolError(f"KPI window of {w.site}/{w.line}/{w.station} has neither start nor end")
    tags = tag_set({"site": w.site, "line": w.line, "station": w.station, "window": kpi_window_tag(w)})
    fields = []
    for name in KPI_FIELDS:
        v = getattr(w, name)
        if v is not None:
            text = format_float(v)
            if text is not None:
                fields.append(f"{name}={text}")
    if w.flags:
        fields.append(f"flags={quote_string(','.join(w.flags))}")
    if not fields:
        raise LineProtocolError(f"KPI window of {w.site}/{w.line}/{w.station} has no finite field")
    return f"station_kpi{tags} {','.join(fields)} {timestamp(when, precision)}"


def emissions_line(r: EmissionsRecord, precision: str = "ms") -> str:
    """An `emissions` line of the hourly ledger; tags ``method, origin, scope, site, source``;
    timestamp: the hour's start. The ledger identity is the series and time, so writing an hour
    again replaces its point, as the store replaces its row."""
    tags = tag_set({"site": r.site, "scope": r.scope, "source": r.source, "method": r.method, "origin": r.origin})
    fields = []
    for name in EMISSION_FLOAT_FIELDS:
        text = format_float(getattr(r, name))
        if text is not None:
            fields.append(f"{name}={text}")
    for name in EMISSION_STRING_FIELDS:
        fields.append(f"{name}={quote_string(getattr(r, name))}")
    return f"emissions{tags} {','.join(fields)} {timestamp(r.start, precision)}"


def build_lines(items: Iterable, build) -> tuple[list[str], list[tuple[object, str]]]:
    """Apply ``build`` to each item: the good lines, and (item, reason) for each refused one."""
    lines: list[str] = []
    bad: list[tuple[object, str]] = []
    for item in items:
        try:
            lines.append(build(item))
        except LineProtocolError as e:
            bad.append((item, str(e)))
    return lines, bad
