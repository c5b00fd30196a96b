"""Benchmark: points/s through the InfluxDB writer (spool included) against two baselines, same run.

    python -m bench.influx [--points N] [--batch-size B] [--spool-sync full|normal] [--rounds R] [--json]

All three paths write `signal` points to one VictoriaMetrics on loopback (started here, its own
temporary data dir), each under its own `site` tag:

- raw_post:     pre-built line protocol POSTed to /api/v2/write, batch by batch, one keep-alive
                http.client connection, the writer's own transport (the ceiling: no building,
                no spool);
- writer_lines: ``InfluxWriter.write_lines`` with the same pre-built lines (same batch size, same
                bytes: the site tags have equal length), through the durable spool, timed until
                ``flush()`` returns (every point acknowledged): the spool-and-send overhead alone;
- writer:       ``InfluxWriter.write_samples`` from Sample objects: the above plus building the
                lines (``build_lines_only`` shows that cost on its own, no I/O);
- client:       influxdb-client's batching ``WriteApi`` with ``Point`` objects, the path most
                users take, timed until ``close()`` returns.

raw_post, writer_lines and writer run ``--rounds`` times, interleaved (order rotated per round),
against the same server; rates are medians, ratios the median of the per-round ratios (the machine
may be shared). Targets (issue 4): writer >= 70 % of raw, >= 5x client. The points that arrived are
counted back from the server, so a path that drops data cannot look fast.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

from connectors.influxdb import InfluxConfig, InfluxWriter, SignalLines
from factory_models.records import Sample

T0 = 1_700_000_000.0
N_SIGNALS = 200


def samples(n: int) -> list[Sample]:
    """``n`` gauge samples spread over N_SIGNALS signals, one millisecond apart."""
    return [Sample(f"line{i % 4}/st{i % 50}/power_kw", (i % 1000) * 0.5, T0 + i * 0.001) for i in range(n)]


class Victoria:
    def __init__(self, root: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        binary = shutil.which("victoria-metrics") or "/usr/bin/victoria-metrics"
        self.proc = subprocess.Popen(
            [binary, f"-httpListenAddr=127.0.0.1:{self.port}", f"-storageDataPath={root / 'vm'}",
             "-retentionPeriod=100y", "-loggerLevel=ERROR"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/health", timeout=1).read()
                return
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("victoria-metrics did not start") from None
                time.sleep(0.05)

    def count(self, site: str) -> int:
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30).read()
        q = urllib.parse.urlencode({"match[]": f'{{__name__="signal_value",site="{site}"}}', "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=120) as r:
            return sum(len(json.loads(line)["values"]) for line in r.read().splitlines() if line.strip())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def build_bodies(data: list[Sample], batch: int, site: str) -> list[bytes]:
    build = SignalLines("ms")
    return ["\n".join(build.lines(site, data[i : i + batch])[0]).encode() for i in range(0, len(data), batch)]


def run_raw(url: str, data: list[Sample], batch: int, site: str) -> float:
    """Pre-built bodies POSTed one after another on one keep-alive http.client connection.

    The same transport as the writer's sender (headers and body in one send), so the ratio
    measures the writer, not a difference between HTTP libraries.
    """
    import http.client

    bodies = build_bodies(data, batch, site)
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    headers = {"Content-Type": "text/plain; charset=utf-8"}
    t = time.perf_counter()
    for body in bodies:
        conn.request("POST", "/api/v2/write?org=o&bucket=b&precision=ms", body=body, headers=headers)
        r = conn.getresponse()
        r.read()
        if r.status // 100 != 2:
            raise RuntimeError(f"raw POST answered {r.status}")
    elapsed = time.perf_counter() - t
    conn.close()
    return elapsed


def run_build(data: list[Sample], batch: int) -> float:
    """Only building the lines from Sample objects (no I/O): the floor under the `writer` path."""
    build = SignalLines("ms")
    t = time.perf_counter()
    for i in range(0, len(data), batch):
        "\n".join(build.lines("b0", data[i : i + batch])[0]).encode()
    return time.perf_counter() - t


def run_writer(url: str, data: list[Sample], batch: int, spool: Path, sync: str, site: str,
               prebuilt: bool) -> tuple[float, dict]:
    """The writer, from Sample objects (``prebuilt=False``) or from the same pre-built lines as raw."""
    cfg = InfluxConfig(url=url, org="o", bucket="b", spool_path=spool, batch_size=batch, flush_interval_s=0.05,
                       spool_sync=sync)
    if prebuilt:
        build = SignalLines("ms")
        line_batches = [build.lines(site, data[i : i + batch])[0] for i in range(0, len(data), batch)]
    w = InfluxWriter(cfg)
    t = time.perf_counter()
    if prebuilt:
        for lines in line_batches:
            w.write_lines(lines)
    else:
        for i in range(0, len(data), batch):
            w.write_samples(data[i : i + batch], site=site)
    ok = w.flush(timeout_s=600)
    elapsed = time.perf_counter() - t
    stats = w.stats()
    w.close()
    if not ok:
        raise RuntimeError(f"writer did not drain: {stats}")
    return elapsed, stats


def run_client(url: str, data: list[Sample], batch: int, site: str) -> float:
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.write_api import WriteOptions

    client = InfluxDBClient(url=url, token="bench", org="o")
    api = client.write_api(write_options=WriteOptions(batch_size=batch, flush_interval=1000))
    t = time.perf_counter()
    for s in data:
        line, station, name = s.signal.split("/", 2)
        p = (Point("signal").tag("site", site).tag("line", line).tag("station", station).tag("signal", name)
             .field("value", float(s.value)).field("quality", s.quality.value)
             .time(round(s.ts * 1000), WritePrecision.MS))
        api.write(bucket="b", org="o", record=p, write_precision=WritePrecision.MS)
    api.close()  # flushes the last batch and waits for it
    elapsed = time.perf_counter() - t
    client.close()
    return elapsed


PATHS = ("raw_post", "writer_lines", "writer")
SITE = {"raw_post": "r", "writer_lines": "l", "writer": "w"}  # same length: same payload bytes


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.influx", description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--client-points", type=int, default=50_000, help="points for the (slow) Point path")
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--spool-sync", choices=("full", "normal"), default="full")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of raw/writer runs; medians are reported")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)

    times: dict[str, list[float]] = {k: [] for k in PATHS}
    ratios: dict[str, list[float]] = {"writer_lines_vs_raw": [], "writer_vs_raw": []}
    with tempfile.TemporaryDirectory(prefix="bench-influx-") as tmp:
        root = Path(tmp)
        vm = Victoria(root)
        try:
            data = samples(args.points)
            build_s = statistics.median(run_build(data, args.batch_size) for _ in range(3))
            stats = {}
            for r in range(args.rounds):
                # Rotate the order so that no path always runs first (or last) in a round.
                order = PATHS[r % 3 :] + PATHS[: r % 3]
                got = {}
                for path in order:
                    site = f"{SITE[path]}{r}"
                    if path == "raw_post":
                        got[path] = run_raw(vm.url, data, args.batch_size, site)
                    else:
                        got[path], stats[path] = run_writer(
                            vm.url, data, args.batch_size, root / f"spool-{site}", args.spool_sync, site,
                            prebuilt=path == "writer_lines")
                    times[path].append(got[path])
                ratios["writer_lines_vs_raw"].append(got["raw_post"] / got["writer_lines"])
                ratios["writer_vs_raw"].append(got["raw_post"] / got["writer"])
            client_data = data[: args.client_points]
            client_s = run_client(vm.url, client_data, args.batch_size, "c0")
            arrived = {path: sum(vm.count(f"{SITE[path]}{r}") for r in range(args.rounds)) for path in PATHS}
            arrived["client_point_batching"] = vm.count("c0")
        finally:
            vm.stop()

    rates = {k: args.points / statistics.median(v) for k, v in times.items()}
    rates["client_point_batching"] = len(client_data) / client_s
    rates["build_lines_only"] = args.points / build_s
    out = {
        "points": args.points,
        "client_points": len(client_data),
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "spool_sync": args.spool_sync,
        "fsync_policy": ("one fdatasync per accepted write call (power-cut safe)" if args.spool_sync == "full"
                         else "no fsync: page cache only (survives kill -9, not a power cut)"),
        "points_per_s": {k: round(v) for k, v in rates.items()},
        "per_round_points_per_s": {k: [round(args.points / t) for t in v] for k, v in times.items()},
        "writer_lines_vs_raw": round(statistics.median(ratios["writer_lines_vs_raw"]), 3),
        "writer_vs_raw": round(statistics.median(ratios["writer_vs_raw"]), 3),
        "writer_vs_client": round(rates["writer"] / rates["client_point_batching"], 2),
        "targets": {"writer_vs_raw": 0.70, "writer_vs_client": 5.0},
        "arrived": arrived,
        "writer_stats": {k: {s: v[s] for s in ("written", "spooled", "retried", "rejected", "dropped")}
                         for k, v in stats.items()},
    }
    expected = {**{p: args.points * args.rounds for p in PATHS}, "client_point_batching": len(client_data)}
    if arrived != expected:
        raise RuntimeError(f"points missing at the server: {arrived} != {expected}")
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out["points_per_s"].items():
            print(f"{k:>24}: {v:>10,} points/s", file=sys.stderr)
        print(f"spool_sync={args.spool_sync}: {out['fsync_policy']}", file=sys.stderr)
        print(f"writer (pre-built lines) / raw POST: {out['writer_lines_vs_raw']:.2f} (target >= 0.70)", file=sys.stderr)
        print(f"writer (from Samples) / raw POST: {out['writer_vs_raw']:.2f}", file=sys.stderr)
        print(f"writer / client Point batching: {out['writer_vs_client']:.1f}x (target >= 5x)", file=sys.stderr)
        print(f"arrived: {arrived}", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
