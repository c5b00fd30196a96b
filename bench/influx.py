"""Benchmark: points/s through the InfluxDB writer (spool included) against two baselines, same run.

    python -m bench.influx [--points N] [--batch-size B] [--spool-sync full|normal] [--json]

All three paths write `signal` points to one VictoriaMetrics on loopback (started here, its own
temporary data dir), each under its own `site` tag:

- raw:    pre-built line protocol POSTed to /api/v2/write, batch by batch, one keep-alive
          connection (the ceiling: no building, no spool);
- writer: ``InfluxWriter.write_samples`` from Sample objects, through the durable spool, timed
          until ``flush()`` returns (every point acknowledged);
- client: influxdb-client's batching ``WriteApi`` with ``Point`` objects, the path most users
          take, timed until ``close()`` returns.

Targets (issue 4): writer >= 70 % of raw, >= 5x client. The points that arrived are counted back
from the server, so a path that drops data cannot look fast.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
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


def run_raw(url: str, data: list[Sample], batch: int) -> float:
    import urllib3

    build = SignalLines("ms")
    bodies = ["\n".join(build.line("raw", s) for s in data[i : i + batch]).encode() for i in range(0, len(data), batch)]
    pool = urllib3.PoolManager()
    target = f"{url}/api/v2/write?org=o&bucket=b&precision=ms"
    t = time.perf_counter()
    for body in bodies:
        r = pool.request("POST", target, body=body, headers={"Content-Type": "text/plain; charset=utf-8"})
        if r.status // 100 != 2:
            raise RuntimeError(f"raw POST answered {r.status}")
    return time.perf_counter() - t


def run_writer(url: str, data: list[Sample], batch: int, spool: Path, sync: str) -> tuple[float, dict]:
    cfg = InfluxConfig(url=url, org="o", bucket="b", spool_path=spool, batch_size=batch, flush_interval_s=0.05,
                       spool_sync=sync)
    w = InfluxWriter(cfg)
    t = time.perf_counter()
    for i in range(0, len(data), batch):
        w.write_samples(data[i : i + batch], site="writer")
    ok = w.flush(timeout_s=600)
    elapsed = time.perf_counter() - t
    stats = w.stats()
    w.close()
    if not ok:
        raise RuntimeError(f"writer did not drain: {stats}")
    return elapsed, stats


def run_client(url: str, data: list[Sample], batch: int) -> float:
    from influxdb_client import InfluxDBClient, Point, WritePrecision
    from influxdb_client.client.write_api import WriteOptions

    client = InfluxDBClient(url=url, token="bench", org="o")
    api = client.write_api(write_options=WriteOptions(batch_size=batch, flush_interval=1000))
    t = time.perf_counter()
    for s in data:
        line, station, name = s.signal.split("/", 2)
        p = (Point("signal").tag("site", "client").tag("line", line).tag("station", station).tag("signal", name)
             .field("value", float(s.value)).field("quality", s.quality.value)
             .time(round(s.ts * 1000), WritePrecision.MS))
        api.write(bucket="b", org="o", record=p, write_precision=WritePrecision.MS)
    api.close()  # flushes the last batch and waits for it
    elapsed = time.perf_counter() - t
    client.close()
    return elapsed


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="python -m bench.influx", description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=200_000)
    ap.add_argument("--client-points", type=int, default=50_000, help="points for the (slow) Point path")
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--spool-sync", choices=("full", "normal"), default="full")
    ap.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench-influx-") as tmp:
        root = Path(tmp)
        vm = Victoria(root)
        try:
            data = samples(args.points)
            raw_s = run_raw(vm.url, data, args.batch_size)
            writer_s, stats = run_writer(vm.url, data, args.batch_size, root / "spool.sqlite", args.spool_sync)
            client_data = data[: args.client_points]
            client_s = run_client(vm.url, client_data, args.batch_size)
            arrived = {site: vm.count(site) for site in ("raw", "writer", "client")}
        finally:
            vm.stop()

    rates = {
        "raw_post": args.points / raw_s,
        "writer": args.points / writer_s,
        "client_point_batching": len(client_data) / client_s,
    }
    out = {
        "points": args.points,
        "client_points": len(client_data),
        "batch_size": args.batch_size,
        "spool_sync": args.spool_sync,
        "points_per_s": {k: round(v) for k, v in rates.items()},
        "writer_vs_raw": round(rates["writer"] / rates["raw_post"], 3),
        "writer_vs_client": round(rates["writer"] / rates["client_point_batching"], 2),
        "targets": {"writer_vs_raw": 0.70, "writer_vs_client": 5.0},
        "arrived": arrived,
        "writer_stats": {k: stats[k] for k in ("written", "spooled", "retried", "rejected", "dropped")},
    }
    if args.json:
        print(json.dumps(out))
    else:
        for k, v in out["points_per_s"].items():
            print(f"{k:>24}: {v:>10,} points/s", file=sys.stderr)
        print(f"writer / raw POST: {out['writer_vs_raw']:.2f} (target >= 0.70)", file=sys.stderr)
        print(f"writer / client Point batching: {out['writer_vs_client']:.1f}x (target >= 5x)", file=sys.stderr)
        print(f"arrived: {arrived}", file=sys.stderr)
    return out


if __name__ == "__main__":
    main()
