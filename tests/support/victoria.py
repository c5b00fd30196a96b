"""A real VictoriaMetrics on loopback for the InfluxDB writer's integration tests.

VictoriaMetrics accepts InfluxDB line protocol on ``POST /api/v2/write`` and gives it back through
``/api/v1/export``: each numeric field arrives as the metric ``<measurement>_<field>``, tags become
labels; string fields are not kept. Each instance gets a free port, its own data dir and
``-retentionPeriod=100y`` (the default one-month retention silently drops old timestamps).

``-dedup.minScrapeInterval=1ms`` makes it keep one sample per series and millisecond, which is how
InfluxDB identifies a point (measurement, tag set, timestamp): a replayed point overwrites itself
instead of appearing twice. Tests that want to see raw duplicates start it with ``dedup=False``.

The ``victoria`` fixture is in ``tests/conftest.py``.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path


BINARY = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Victoria:
    """One VictoriaMetrics process that can be stopped and started again on the same port and data."""

    def __init__(self, data_dir: Path, *, dedup: bool = True) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.dedup = dedup
        self.proc: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"victoria-{self.port}.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 30.0) -> None:
        args = [
            BINARY,
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.data_dir}",
            "-retentionPeriod=100y",
            "-loggerLevel=ERROR",
        ]
        if self.dedup:
            args.append("-dedup.minScrapeInterval=1ms")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"victoria-metrics did not answer on {self.url} within {timeout_s} s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def export(self, match: str = '{__name__=~".+"}') -> list[dict]:
        """Every series matching ``match``, after a forced flush: [{"metric":{..},"values":[..],"timestamps":[..]}]."""
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30).read()
        q = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=60) as r:
            return [json.loads(line) for line in r.read().splitlines() if line.strip()]

    def samples(self, match: str = '{__name__=~".+"}') -> list[tuple[tuple, int, float]]:
        """Every stored sample as ((name, sorted label items), timestamp ms, value)."""
        out = []
        for s in self.export(match):
            labels = dict(s["metric"])
            key = (labels.pop("__name__"), tuple(sorted(labels.items())))
            out.extend((key, t, v) for t, v in zip(s["timestamps"], s["values"]))
        return out

    def wait_for_count(self, n: int, match: str = '{__name__=~".+"}', timeout_s: float = 30.0) -> list:
        """Poll the export until it holds at least ``n`` samples (VM indexes new series asynchronously)."""
        deadline = time.monotonic() + timeout_s
        while True:
            got = self.samples(match)
            if len(got) >= n or time.monotonic() > deadline:
                return got
            time.sleep(0.2)
