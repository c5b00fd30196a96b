"""InfluxDB writer: records -> line protocol -> durable spool -> synchronous v2 writes, own retry loop.

Why not the client's batching ``WriteApi``: it drops a batch after ``max_retry_time`` without
raising (influxdb-client-python #144, docs/connectors.md). Here every point is first written
to the durable on-disk spool (``spool.py``, append-only segment files); a background thread sends
the oldest records and forgets them only once the server answered 2xx. The sender POSTs each batch
to ``/api/v2/write`` itself (``transport.py``) with the body the spool already holds. While batch
N is in flight the caller's thread builds and spools N+1. Settings and token: ``config.py``.

Server answers and what happens:

- 2xx: acknowledged, deleted from the spool, counted ``written``.
- 429 and 5xx, timeouts, refused connections: kept, retried with exponential backoff and jitter;
  a ``Retry-After`` header (seconds or HTTP date) sets the delay instead. Counted ``retried``.
- 413 (payload too large): the batch is split in halves and each half sent on its own.
- 400 and 422 (bad line, wrong field type, outside retention): the batch is bisected down to the
  offending lines; each goes to the dead-letter file (JSON lines: time, status, server message,
  line) and is counted ``rejected``; the good lines of the batch are written.
- 401, 403, 404 and other statuses: a configuration problem (token, org, bucket). Nothing is
  dropped: the points stay spooled and are retried with backoff while the error is logged.

Works with InfluxDB 2.x, 3.x and Cloud (url, org, bucket, token) and with 1.8+ through its v2
compatibility API (token ``user:password``, bucket ``database/retention-policy``). The token comes
from the environment variable named by ``token_env`` (``INFLUX_TOKEN``) or from ``token_file``,
never from the config, and is never logged.
"""

from __future__ import annotations

import json
import logging
import os
import random
import threading
import time
from collections.abc import Iterable

from factory_models.records import EmissionsRecord, KpiWindow, Sample

from .config import InfluxConfig, load_token
from .lineprotocol import SignalLines, build_lines, emissions_line, kpi_line
from .spool import Spool
from .transport import Transient, WriteClient, retry_after_s

__all__ = ["InfluxConfig", "InfluxWriter", "load_token", "retry_after_s"]

log = logging.getLogger("connectors.influxdb")


class InfluxWriter:
    """Writes `signal`, `station_kpi` and `emissions` points through a durable spool.

    Every ``write_*`` call returns once its points are committed to the spool (accepted); a
    background thread sends them. ``flush()`` waits until the spool is empty; ``close()`` stops
    the thread and leaves anything unsent in the spool for the next start.
    """

    def __init__(self, config: InfluxConfig, *, start: bool = True) -> None:
        self.config = config
        self._spool = Spool(
            config.spool_path, max_bytes=config.spool_max_bytes, max_age_s=config.spool_max_age_s, sync=config.spool_sync
        )
        self._signals = SignalLines(config.precision)
        token = load_token(config)
        if token is None:
            log.warning("no InfluxDB token ($%s or token_file); writing without authentication", config.token_env)
        self._client = WriteClient(config, token)
        del token  # only the client's headers hold it; nothing here logs or prints it
        self._counts = {"spooled": 0, "written": 0, "retried": 0, "rejected_server": 0, "rejected_invalid": 0}
        self._count_lock = threading.Lock()
        self._dead_seen: set[bytes] = set()  # lines dead-lettered in the batch being sent
        self._pending_dead = 0  # lines of the batch in flight that went to the dead-letter file
        self._last_error: str | None = None
        self._failing = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Condition()
        self._thread: threading.Thread | None = None
        if start:
            self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
            self._thread.start()

    # -- accepting points ------------------------------------------------------------------

    def write_samples(self, samples: Iterable[Sample], site: str) -> int:
        """Spool `signal` points of ``site``; returns the points accepted (invalid ones are counted)."""
        lines, bad = self._signals.lines(site, samples)
        return self._accept_built(lines, bad, "sample")

    def write_kpis(self, windows: Iterable[KpiWindow]) -> int:
        """Spool `station_kpi` points (station, line and site windows)."""
        precision = self.config.precision
        return self._accept(windows, lambda w: kpi_line(w, precision), "KPI window")

    def write_emissions(self, records: Iterable[EmissionsRecord]) -> int:
        """Spool `emissions` points."""
        precision = self.config.precision
        return self._accept(records, lambda r: emissions_line(r, precision), "emissions record")

    def write_lines(self, lines: list[str]) -> int:
        """Spool lines already in line protocol (the caller answers for their validity)."""
        n = self._spool.append(lines, self.config.batch_size)
        self._after_accept(n)
        return n

    def _accept(self, items: Iterable, build, what: str) -> int:
        lines, bad = build_lines(items, build)
        return self._accept_built(lines, bad, what)

    def _accept_built(self, lines: list[str], bad: list, what: str) -> int:
        if bad:
            with self._count_lock:
                self._counts["rejected_invalid"] += len(bad)
            log.warning("rejected %d invalid %s(s), first: %s", len(bad), what, bad[0][1])
        return self.write_lines(lines)

    def _after_accept(self, n: int) -> None:
        with self._count_lock:
            self._counts["spooled"] += n
        if self._spool.depth >= self.config.batch_size:
            self._wake.set()

    # -- sending ---------------------------------------------------------------------------

    def flush(self, timeout_s: float | None = None) -> bool:
        """Send everything spooled now; True once the spool is empty, False on timeout."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        if self._thread is None:  # no background thread: send in the caller's thread
            while self._spool.depth and (deadline is None or time.monotonic() < deadline):
                if not self._send_some():
                    time.sleep(min(self.config.retry_initial_s, max(0.0, (deadline or 1e18) - time.monotonic())))
            return self._spool.depth == 0
        with self._idle:
            while self._spool.depth:
                self._wake.set()
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._idle.wait(timeout=0.5 if left is None else min(0.5, left))
        return True

    def close(self, timeout_s: float = 10.0) -> dict:
        """Flush for up to ``timeout_s``, stop the thread, close the spool (unsent points stay in it);
        returns ``block()``."""
        if self._stop.is_set():
            return dict(getattr(self, "_final_block", None) or self.block())
        if not self.flush(timeout_s):
            log.warning("closing with %d points still spooled in %s; they are sent on the next start",
                        self._spool.depth, self.config.spool_path)
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self.config.timeout_s + 5)
        self._client.close()
        self._final_block = self.block()
        self._spool.close()
        return dict(self._final_block)

    def __enter__(self) -> InfluxWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            self._wake.wait(self.config.flush_interval_s)
            self._wake.clear()
            while self._spool.depth and not self._stop.is_set():
                try:
                    self._send_some(raise_transient=True)
                    attempt = 0
                except Transient as e:
                    delay = e.retry_after_s
                    if delay is None:
                        delay = min(self.config.retry_max_s, self.config.retry_initial_s * 2**attempt)
                        delay *= 0.5 + random.random() / 2  # jitter: many writers must not retry in step
                    attempt = min(attempt + 1, 30)
                    self._stop.wait(delay)
                except Exception:  # a bug or a disk error must not kill the sender silently
                    log.exception("InfluxDB sender failed; retrying")
                    self._stop.wait(self.config.retry_max_s)
            with self._idle:
                self._idle.notify_all()

    def _send_some(self, raise_transient: bool = False) -> bool:
        """Send the oldest batch; True if it was acknowledged (or dead-lettered)."""
        chunks = self._spool.peek(self.config.batch_size)
        if not chunks:
            return True
        n = sum(c.n_points for c in chunks)
        body = b"\n".join(c.body for c in chunks)
        try:
            self._post_split(body, n)
        except Transient as e:
            with self._count_lock:
                self._counts["retried"] += n
            self._note_failure(str(e), n)
            if raise_transient:
                raise
            return False
        self._spool.delete(chunks)
        self._dead_seen.clear()
        with self._count_lock:
            self._counts["written"] += n
            self._counts["written"] -= self._pending_dead
        self._pending_dead = 0
        if self._failing:
            self._failing = False
            log.info("InfluxDB %s accepts writes again; %d points left to replay", self.config.url, self._spool.depth)
        with self._idle:
            self._idle.notify_all()
        return True

    def _post_split(self, body: bytes, n: int) -> None:
        """POST ``body`` (``n`` lines); split on 413, bisect on 400/422; raise Transient otherwise."""
        status, message, retry = self._client.post(body)
        if status is None:
            return
        if status in (400, 413, 422):
            if n > 1:
                lines = body.split(b"\n")
                half = len(lines) // 2
                self._post_split(b"\n".join(lines[:half]), half)
                self._post_split(b"\n".join(lines[half:]), len(lines) - half)
            else:
                self._dead_letter(body, status, message)
            return
        if status == 429 or status >= 500:
            raise Transient(f"HTTP {status}: {message}", retry)
        # 401, 403, 404 and the like: wrong token, org or bucket. Keep the data, say so loudly.
        raise Transient(f"HTTP {status} (check url, org, bucket and token): {message}")

    def _dead_letter(self, line: bytes, status: int, message: str) -> None:
        if line in self._dead_seen:  # the same batch re-sent after a transient error
            return
        self._dead_seen.add(line)
        record = {"time": time.time(), "status": status, "message": message, "line": line.decode("utf-8", "replace")}
        path = self.config.dead_letters
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())  # durable before the spool forgets the line
        with self._count_lock:
            self._counts["rejected_server"] += 1
        self._pending_dead += 1
        log.warning("InfluxDB rejected a point (HTTP %d: %s); kept in %s", status, message, path)

    def _note_failure(self, message: str, n: int) -> None:
        self._last_error = message
        if not self._failing:
            self._failing = True
            log.warning("InfluxDB %s write failed (%s); %d points spooled, retrying with backoff",
                        self.config.url, message, self._spool.depth)

    # -- the Sink protocol and reporting (factory_models.sink) -------------------------------------------

    sink_name = "influxdb"

    def write_windows(self, windows: Iterable[KpiWindow]) -> int:
        """The Sink protocol's name for ``write_kpis``."""
        return self.write_kpis(windows)

    def health(self) -> dict:
        """``stats()`` with a ``status``: "degraded" (and the ``reasons``) while the spool's disk is
        full and new points are being dropped, else "ok"."""
        st = self.stats()
        reasons = []
        if st["disk_full"]:
            reasons.append(f"InfluxDB spool {self.config.spool_path}: disk full, new points dropped "
                           f"({st['dropped_disk_full']} so far)")
        return {"status": "degraded" if reasons else "ok", "reasons": reasons, **st}

    def block(self) -> dict:
        """This writer's block of the ``sinks`` document: the counts of ``stats()`` and the spool depth."""
        st = self.stats()
        return {k: st[k] for k in ("written", "spooled", "retried", "rejected", "dropped", "corrupt_records",
                                   "spool_depth")}

    def stats(self) -> dict:
        """Counters since this writer started, and the spool's state now (JSON-ready).

        ``spooled``: points accepted (committed to the spool); ``written``: acknowledged by the
        server; ``retried``: points sent again after a failed attempt (once per attempt);
        ``rejected``: invalid inputs plus points the server refused (dead-lettered); ``dropped``:
        points lost in the spool, by reason: its overflow policy (``dropped_bytes``, ``dropped_age``,
        oldest first), records that failed their checksum (``dropped_corrupt``; ``corrupt_records``
        of them) and points refused while the disk was full (``dropped_disk_full``; ``disk_full``
        says whether it still is).
        """
        with self._count_lock:
            c = dict(self._counts)
        sp = self._spool
        dropped = dict(sp.dropped)
        oldest = sp.oldest_age_s() if not self._stop.is_set() else None
        return {
            "written": c["written"],
            "spooled": c["spooled"],
            "retried": c["retried"],
            "rejected": c["rejected_server"] + c["rejected_invalid"],
            "dropped": sum(dropped.values()),
            "rejected_server": c["rejected_server"],
            "rejected_invalid": c["rejected_invalid"],
            **{f"dropped_{k}": v for k, v in dropped.items()},
            "corrupt_records": sp.corrupt_records,
            "disk_full": sp.disk_full,
            "spool_depth": sp.depth,
            "spool_bytes": sp.n_bytes,
            "oldest_age_s": None if oldest is None else round(oldest, 3),
            "dead_letter_path": str(self.config.dead_letters),
            "last_error": self._last_error,
        }
