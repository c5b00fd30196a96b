"""The interface every live source implements, and the bookkeeping they share.

A source (Telegraf's input plugin, in spirit) puts ``Sample``s on an asyncio queue until it is
cancelled and reconnects by itself. Connection changes travel in-band as
``Sample("connection/<source>", "up"|"down", ts, ts_kind=RECEIVE)`` so the twin marks the stations
that source feeds UNKNOWN for the gap (docs/architecture.md, Contracts: "no data" is never "unchanged").
Their ``ts`` is the source's wall clock; the twin re-stamps them with its own clock on receipt (the
demo's twin runs on simulated time), so no source needs to know the twin's clock.

Every message that arrives is either turned into Samples or rejected with a reason that is counted
in ``stats()`` and written to a dead-letter log (JSON lines), never silently lost.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import random
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Protocol, runtime_checkable

from factory_models import Sample, TsKind

from factory_models.signals import connection_signal

log = logging.getLogger(__name__)


@runtime_checkable
class Source(Protocol):
    name: str

    async def run(self, out: asyncio.Queue) -> None:
        """Put Samples on ``out`` until cancelled; reconnect with backoff on any connection loss."""
        ...

    def stats(self) -> dict:
        """At least SourceStats.as_dict(): received, samples, suppressed, rejected,
        rejected_by_reason {reason: n}, connected, reconnects, dead_letter; plus the protocol's own."""
        ...

    def signals(self) -> set[str]:
        """The signals this source feeds, so the twin knows which stations a gap affects."""
        ...


def connection_sample(source_name: str, up: bool, ts: float | None = None) -> Sample:
    """The in-band report that ``source_name`` connected (``up``) or lost its connection, stamped
    with the wall clock (the live twin puts it on its own timeline when it arrives)."""
    return Sample(
        signal=connection_signal(source_name),
        value="up" if up else "down",
        ts=time.time() if ts is None else ts,
        ts_kind=TsKind.RECEIVE,
    )


def dead_letter_path(entry, dead_letter_dir: str | Path | None) -> Path | None:
    """Where a source entry's rejected messages go: its own ``dead_letter`` path if the protocol has
    one, else ``<dead_letter_dir>/deadletter-<name>.jsonl``, else None (the client's temp-dir default)."""
    own = getattr(entry, "dead_letter", None)
    if own is not None:
        return Path(own)
    return None if dead_letter_dir is None else Path(dead_letter_dir) / f"deadletter-{entry.name}.jsonl"


class DeadLetterLog:
    """Rejected messages as JSON lines: receive time, source, reason, detail, where, payload.

    The payload is kept as text when it is UTF-8, else base64, and cut to ``keep_bytes`` (an
    oversized message is evidence, not something to store whole). When the file passes
    ``max_bytes`` it is renamed to ``<name>.1`` (replacing the previous one) and a new file begun,
    so a storm of bad messages cannot fill the disk. Thread-safe: paho calls back on its own thread.
    """

    def __init__(self, path: str | Path, max_bytes: int = 10_000_000, keep_bytes: int = 1024):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep_bytes = keep_bytes
        self.written = 0
        self._lock = threading.Lock()
        self._fh = None

    @classmethod
    def for_source(cls, config, path: str | Path | None = None) -> "DeadLetterLog":
        """A client's log: ``path`` (from ``dead_letter_path``), else the entry's own ``dead_letter``,
        else ``factory-twin-deadletter-<name>.jsonl`` in the temp directory."""
        chosen = path or getattr(config, "dead_letter", None)
        return cls(chosen or Path(tempfile.gettempdir()) / f"factory-twin-deadletter-{config.name}.jsonl")

    def write(self, source: str, reason: str, detail: str, where: str | None, payload: bytes | str | None) -> None:
        entry = {"ts": round(time.time(), 6), "source": source, "reason": reason, "detail": detail}
        if where is not None:
            entry["where"] = where
        if payload is not None:
            raw = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else bytes(payload)
            entry["payload_bytes"] = len(raw)
            cut = raw[: self.keep_bytes]
            try:
                entry["payload"] = cut.decode("utf-8")
            except UnicodeDecodeError:
                entry["payload_b64"] = base64.b64encode(cut).decode("ascii")
            if len(raw) > len(cut):
                entry["truncated"] = True
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = open(self.path, "a", encoding="utf-8")
            if self._fh.tell() > self.max_bytes:
                self._fh.close()
                os.replace(self.path, self.path.with_name(self.path.name + ".1"))
                self._fh = open(self.path, "a", encoding="utf-8")
            self._fh.write(line)
            self._fh.flush()
            self.written += 1

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None


class SourceStats:
    """Counters behind ``Source.stats()``, and the one place a rejection is counted, logged and
    dead-lettered. The first rejections of each reason are logged at WARNING, then every 1000th,
    so a storm shows in the log without flooding it (the counts stay exact)."""

    def __init__(self, source: str, dead_letter: DeadLetterLog | None):
        self.source = source
        self.dead_letter = dead_letter
        self.received = 0  # messages (MQTT) or value changes (OPC UA) that arrived
        self.samples = 0  # Samples put on the queue
        self.suppressed = 0  # held back by a deadband: used, on purpose
        self.rejected_by_reason: Counter[str] = Counter()
        self.connected = False
        self.reconnects = 0
        self.dead_letter_failures = 0
        self.delivered: set[str] = set()  # signals at least one Sample was put on the queue for
        self._lock = threading.Lock()

    def reject(self, reason: str, detail: str, where: str | None = None, payload: bytes | str | None = None) -> None:
        with self._lock:
            self.rejected_by_reason[reason] += 1
            n = self.rejected_by_reason[reason]
        if n <= 5 or n % 1000 == 0:
            log.warning("%s: rejected (%s, #%d): %s%s", self.source, reason, n, detail, f" [{where}]" if where else "")
        if self.dead_letter is not None:
            try:
                self.dead_letter.write(self.source, reason, detail, where, payload)
            except OSError as exc:
                # the rejection stays counted; only the copy of its payload is lost, and that is logged
                with self._lock:
                    self.dead_letter_failures += 1
                log.error("%s: cannot write dead-letter log %s: %s", self.source, self.dead_letter.path, exc)

    def as_dict(self) -> dict:
        with self._lock:
            by_reason = dict(self.rejected_by_reason)
        return {
            "received": self.received,
            "rejected": sum(by_reason.values()),
            "rejected_by_reason": by_reason,
            "connected": self.connected,
            "reconnects": self.reconnects,
            "samples": self.samples,
            "suppressed": self.suppressed,
            "dead_letter": str(self.dead_letter.path) if self.dead_letter else None,
            "dead_letter_failures": self.dead_letter_failures,
        }


class Backoff:
    """Exponential reconnect delay with full jitter: min_s, 2 x min_s, .. capped at max_s, then reset
    on success. Jitter keeps a fleet of clients from reconnecting in lockstep after a broker restart."""

    def __init__(self, min_s: float = 1.0, max_s: float = 30.0, rng: random.Random | None = None):
        self.min_s = min_s
        self.max_s = max_s
        self._attempt = 0
        self._rng = rng or random.Random()

    def next_delay_s(self) -> float:
        ceiling = min(self.max_s, self.min_s * 2**self._attempt)
        self._attempt += 1
        return self.min_s + self._rng.random() * (ceiling - self.min_s)

    def reset(self) -> None:
        self._attempt = 0

    async def sleep(self) -> None:
        await asyncio.sleep(self.next_delay_s())
