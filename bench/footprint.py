"""Footprint of ``factory-twin demo`` on a small edge PC: time to the first OEE, and peak memory.

    python -m bench.footprint [--duration 30] [--cores 2] [--warm-up] [--json]

Starts ``factory-twin demo --json --no-store --dashboard-port 0 --duration D`` twice as a
subprocess pinned to ``--cores`` CPUs: first *cold*, with ``NUMBA_CACHE_DIR`` pointing at a fresh
empty directory (no compiled kernel, as right after an install), then *warm*, with the directory the
cold run filled. For each run it prints

- ``first_oee_s``: wall seconds from the start of the process to the first ``/api/state`` document
  whose ``site_kpi.oee`` is not null (the dashboard's URL is read from the process's stderr, else
  found among the ports it listens on);
- ``first_state_s``: the same for the first state document at all;
- ``peak_rss_mb``: peak resident memory over the whole run, summary included: the larger of the
  process's own peak (``ru_maxrss`` from ``wait4``, also ``process_peak_rss_mb``) and the largest
  sum of the process's and its children's RSS sampled while it runs (a warm-up compiler child
  counts: an edge PC has to hold both);

``--warm-up`` starts the demo through ``python -c`` with ``twin.kpi.warm_up()`` called first, the
call the runtime makes (or would make) at the start of ``demo``; ``--warm-up thread`` compiles in a
thread of the demo process instead of a child process (for comparison). Each figure is printed against the
issue's goal (first OEE within 15 s cold, 5 s warm; peak RSS at most
400 MB) as a ratio: at most 1.0 meets the goal.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL = {"cold": {"first_oee_s": 15.0, "peak_rss_mb": 400.0}, "warm": {"first_oee_s": 5.0, "peak_rss_mb": 400.0}}
URL = re.compile(r"(http://[0-9A-Za-z.\-\[\]:]+:\d+)")
POLL_S = 0.1
FALLBACK_AFTER_S = 20.0  # seconds without a dashboard URL on stderr before probing the listening ports


#: ``--warm-up``: the demo as if its command started ``twin.kpi.warm_up()`` first (the runtime's call)
WARM_UP_FIRST = ("import sys, twin.kpi; twin.kpi.warm_up(child={child}); "
                 "from twin.cli import app; sys.argv[0] = 'factory-twin'; app()")


def _command(warm_up: str | None) -> list[str]:
    if warm_up:
        return [sys.executable, "-c", WARM_UP_FIRST.format(child=warm_up == "child")]
    exe = Path(sys.executable).with_name("factory-twin")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "twin.cli"]


def _get_json(url: str, timeout_s: float = 2.0) -> dict | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError):
        return None


class _Stderr(threading.Thread):
    """Drains the child's stderr (so it never blocks on a full pipe) and keeps the dashboard URL."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream, self.url, self.lines = stream, None, []

    def run(self) -> None:
        for raw in self.stream:
            line = raw.decode(errors="replace")
            self.lines.append(line)
            m = URL.search(line) if self.url is None and "dashboard" in line else None
            if m:
                self.url = m.group(1)


def _listening_urls(pid: int) -> list[str]:
    """Fallback when stderr does not name the dashboard: every loopback port the child listens on."""
    try:
        import psutil

        conns = psutil.Process(pid).net_connections(kind="tcp")
    except Exception:  # noqa: BLE001 (psutil missing, or the process is gone)
        return []
    return [f"http://127.0.0.1:{c.laddr.port}" for c in conns if c.status == "LISTEN"]


def _tree_rss_mb(pid: int) -> float:
    """Resident memory of the process and its children (a warm-up compiler, say) at this moment."""
    try:
        import psutil

        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]) / 2**20
    except Exception:  # noqa: BLE001 (psutil missing, or the process just ended)
        return 0.0


def _reap(pid: int):
    """(pid, status, rusage) if the child has ended (and is now reaped), else None."""
    ended = os.wait4(pid, os.WNOHANG)
    return ended if ended[0] else None


def run_once(cache_dir: Path, duration_s: float, cores: int, config: str | None, timeout_s: float,
             warm_up: str | None = None) -> dict:
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache_dir), "PYTHONUNBUFFERED": "1"}
    cmd = [*_command(warm_up), "demo", "--json", "--no-store", "--dashboard-port", "0", "--duration", str(duration_s)]
    if config:
        cmd += ["--config", config]
    cpus = sorted(os.sched_getaffinity(0))[:cores]
    out = tempfile.TemporaryFile()
    start = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.PIPE,
                            preexec_fn=lambda: os.sched_setaffinity(0, cpus))
    err = _Stderr(proc.stderr)
    err.start()
    first_state = first_oee = None
    tree_mb = 0.0
    candidates: list[str] = []
    deadline = start + timeout_s
    ended = None  # (pid, status, rusage) once reaped here: never through Popen, which would lose the rusage
    while first_oee is None and time.monotonic() < deadline:
        ended = _reap(proc.pid)
        if ended:
            break
        tree_mb = max(tree_mb, _tree_rss_mb(proc.pid))
        if err.url:
            candidates = [err.url]
        elif time.monotonic() - start > FALLBACK_AFTER_S:
            candidates = _listening_urls(proc.pid)
        for base in candidates:
            # a port that is not the dashboard (the PLC, the broker) never answers: give it little time
            doc = _get_json(base + "/api/state", timeout_s=2.0 if base == err.url else 0.3)
            if isinstance(doc, dict) and "site_kpi" in doc:
                now = time.monotonic() - start
                first_state = first_state if first_state is not None else now
                if doc["site_kpi"].get("oee") is not None:
                    first_oee = now
                candidates = [base]
                break
        time.sleep(POLL_S)
    if first_oee is None and not ended:
        proc.send_signal(signal.SIGINT)  # no OEE in time: stop the run, the memory figure still counts
    while not ended:
        tree_mb = max(tree_mb, _tree_rss_mb(proc.pid))
        ended = _reap(proc.pid)
        if not ended and time.monotonic() > deadline + duration_s + 120:
            proc.kill()
        time.sleep(0.2)
    _pid, status, usage = ended
    proc.returncode = os.waitstatus_to_exitcode(status)
    err.join(timeout=5)
    out.close()
    return {"first_state_s": first_state, "first_oee_s": first_oee, "wall_s": time.monotonic() - start,
            "peak_rss_mb": max(usage.ru_maxrss / 1024, tree_mb), "process_peak_rss_mb": usage.ru_maxrss / 1024,
            "exit_code": proc.returncode,
            "stderr_tail": "".join(err.lines[-5:]) if proc.returncode else ""}


def _ratio(value, goal):
    return None if value is None else value / goal


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.footprint", description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=30.0, help="demo wall seconds after start-up (default 30)")
    parser.add_argument("--cores", type=int, default=2, help="CPUs the demo may use (default 2)")
    parser.add_argument("--config", default=None, help="factory model (default: the demo's)")
    parser.add_argument("--timeout", type=float, default=90.0, help="give up waiting for an OEE after this (s)")
    parser.add_argument("--warm-up", nargs="?", const="child", choices=("child", "thread"), default=None,
                        help="start twin.kpi.warm_up() before the demo command, as the runtime would; "
                             "'thread': compile in a thread of the demo instead of a child process")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    args = parser.parse_args(argv)
    if args.cores < 1 or args.duration < 1:
        parser.error("--cores and --duration must be >= 1")
    cache = Path(tempfile.mkdtemp(prefix="footprint-numba-"))
    try:
        result = {"cores": min(args.cores, len(os.sched_getaffinity(0))), "duration_s": args.duration,
                  "warm_up": args.warm_up, "runs": {}}
        for kind in ("cold", "warm"):
            r = run_once(cache, args.duration, args.cores, args.config, args.timeout, args.warm_up)
            r["vs_goal"] = {k: _ratio(r[k], g) for k, g in GOAL[kind].items()}
            result["runs"][kind] = r
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    if args.json:
        json.dump(result, sys.stdout)
        print()
        return 0
    how = f" with twin.kpi.warm_up() ({args.warm_up})" if args.warm_up else ""
    print(f"factory-twin demo{how} on {result['cores']} cores; "
          "goal: first OEE <= 15 s cold, <= 5 s warm; peak RSS <= 400 MB")
    print(f"{'run':<6} {'first state':>12} {'first OEE':>10} {'vs goal':>8} {'peak RSS':>10} {'vs goal':>8} "
          f"{'exit':>5}")
    for kind, r in result["runs"].items():
        fmt = lambda x, unit: "-" if x is None else f"{x:.1f} {unit}"  # noqa: E731
        ratio = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
        print(f"{kind:<6} {fmt(r['first_state_s'], 's'):>12} {fmt(r['first_oee_s'], 's'):>10} "
              f"{ratio(r['vs_goal']['first_oee_s']):>8} {fmt(r['peak_rss_mb'], 'MB'):>10} "
              f"{ratio(r['vs_goal']['peak_rss_mb']):>8} {r['exit_code']:>5}")
        if r["stderr_tail"]:
            print(f"  {kind} run failed; its stderr ends with:\n{r['stderr_tail']}", end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
