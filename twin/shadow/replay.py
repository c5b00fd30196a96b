"""Recorded plant data (CSV) into the event log, for ``factory-twin replay``.

The CSV has a header ``ts,signal,value`` and an optional ``quality`` column. ``ts`` is RFC 3339
(``2026-03-02T06:00:00Z``, any UTC offset) or epoch milliseconds. A row that cannot be used is
counted and reported with its line number and reason; the rest is used.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from factory_models import Factory, Quality, Sample

from twin.kpi.eventlog import EventLog
from twin.shadow.router import SampleRouter, new_log

MAX_LISTED_ERRORS = 50


def parse_ts(text: str) -> float:
    """Epoch seconds of an RFC 3339 timestamp or of epoch milliseconds; ValueError otherwise."""
    text = text.strip()
    if not text:
        raise ValueError("empty timestamp")
    if text.lstrip("-").replace(".", "", 1).isdigit():
        ms = float(text)
        if not math.isfinite(ms):
            raise ValueError(f"timestamp {text!r} is not finite")
        return ms / 1000.0
    try:
        when = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise ValueError(f"timestamp {text!r} is neither RFC 3339 nor epoch milliseconds") from None
    if when.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset (add Z or +08:00)")
    return when.timestamp()


def parse_period_bound(text: str) -> float:
    """A report period bound: RFC 3339, epoch milliseconds, or a bare date (midnight UTC)."""
    text = text.strip()
    if len(text) == 10 and text[4] == "-" and text[7] == "-":
        text += "T00:00:00Z"
    return parse_ts(text)


def _csv_lines(path: Path):
    """(line number, text) of every physical line. One CSV record per line, always: with the csv
    module reading the whole file, a stray quote opens a field that swallows every following line
    (and the rows in it) without a word. A quoted field spanning lines is not valid in this format."""
    with path.open("rb") as fh:
        if b"\0" in fh.read(65536):
            raise ValueError(f"{path}: a binary file; expected a CSV file with a header ts,signal,value[,quality]")
        fh.seek(0)
        for number, chunk in enumerate(fh, start=1):
            if number == 1:
                chunk = chunk.removeprefix(b"\xef\xbb\xbf")  # the byte order mark spreadsheets write
            chunk = chunk.rstrip(b"\r\n")
            try:
                yield number, chunk.decode("utf-8")
            except UnicodeDecodeError as exc:
                # the row cannot be read, the file can: the line is reported as a bad row
                yield number, _Undecodable(f"byte 0x{chunk[exc.start]:02x} at column {exc.start + 1} is not UTF-8")


class _Undecodable(str):
    """A line that is not UTF-8; its text is the reason."""


def _fields(text: str) -> list[str]:
    if isinstance(text, _Undecodable):
        raise ValueError(str(text))
    try:
        return next(csv.reader([text], strict=True))
    except csv.Error as exc:
        if "unexpected end of data" in str(exc):
            raise ValueError("a quote opens a field that does not end on this line (stray quote?)") from None
        raise ValueError(f"malformed quoting: {exc}") from None


def parse_value(text: str) -> float | str:
    try:
        return float(text)
    except ValueError:
        return text.strip()


@dataclass
class ReplayInput:
    log: EventLog
    router: SampleRouter
    rows: int = 0
    bad_rows: int = 0
    errors: list[dict] = field(default_factory=list)  # {"line": n, "reason": "..."} (the first 50)

    def summary(self) -> dict:
        out = self.router.counts()
        out["rows"] = self.rows
        out["bad_rows"] = self.bad_rows
        # a row rejected by the router is an error with a line number too
        out["errors"] = self.errors
        return out


def read_samples_csv(path: str | Path, factory: Factory) -> ReplayInput:
    """Read a samples CSV into a fresh event log spanning the first to the last used timestamp."""
    path = Path(path)
    log_ = new_log(factory, 0.0, 0.0)
    current_line = [0]
    result = ReplayInput(log=log_, router=None)  # type: ignore[arg-type]

    def on_reject(reason: str, sample, detail: str) -> None:
        if len(result.errors) < MAX_LISTED_ERRORS:
            text = f"{reason}: {sample.signal}={sample.value!r}" + (f" ({detail})" if detail else "")
            result.errors.append({"line": current_line[0], "reason": text})

    router = SampleRouter(factory, log_, on_reject=on_reject)
    result.router = router
    quality_names = {q.value: q for q in Quality}

    def bad(line: int, reason: str) -> None:
        result.bad_rows += 1
        if len(result.errors) < MAX_LISTED_ERRORS:
            result.errors.append({"line": line, "reason": reason})

    lines = _csv_lines(path)
    header_line = next(lines, None)
    if header_line is None:
        raise ValueError(f"{path}: empty file; expected a header ts,signal,value[,quality]")
    _, header_text = header_line
    try:
        header = [h.strip().lower() for h in _fields(header_text)]
    except (ValueError, csv.Error) as exc:
        raise ValueError(f"{path}: line 1: {exc}; expected a header ts,signal,value[,quality]") from None
    for need in ("ts", "signal", "value"):
        if need not in header:
            raise ValueError(f"{path}: line 1: header lacks column {need!r}; expected ts,signal,value[,quality]")
    i_ts, i_sig, i_val = header.index("ts"), header.index("signal"), header.index("value")
    i_q = header.index("quality") if "quality" in header else None
    for line, text in lines:
        if not text.strip():
            continue
        result.rows += 1
        try:
            row = _fields(text)
        except (ValueError, csv.Error) as exc:
            bad(line, str(exc))
            continue
        if len(row) < len(header):
            bad(line, f"expected {len(header)} fields, got {len(row)}")
            continue
        try:
            ts = parse_ts(row[i_ts])
        except ValueError as exc:
            bad(line, str(exc))
            continue
        quality = Quality.GOOD
        if i_q is not None and row[i_q].strip():
            quality = quality_names.get(row[i_q].strip().lower())
            if quality is None:
                bad(line, f"quality {row[i_q]!r} is not one of good, uncertain, bad")
                continue
        current_line[0] = line
        router.add(Sample(row[i_sig].strip(), parse_value(row[i_val]), ts, quality))
    if router.used:
        log_.t_start, log_.t_end = router.t_min, router.t_max
    return result
