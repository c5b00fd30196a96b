"""Soak test of ``factory-twin demo``: is resident memory flat once the demo has warmed up?

    python -m bench.soak [--minutes 10] [--speed 600] [--every 5] [--json]

Starts ``factory-twin demo --speed S --duration M*60 --no-store --json --dashboard-port 0`` as a
subprocess, reads its ``VmRSS`` from ``/proc`` every ``--every`` seconds, and prints

- ``rss_mb``: first, last and peak samples (the last and peak include the summary at the end);
- ``slope_mb_per_min``: the least-squares slope of RSS against wall time over the samples taken
  after the first ``--warm-up`` minutes (default 2: kernels loaded, windows filled) and before the
  demo's duration is over (the summary at the end is left out), against the
  goal of issue 15 (under 1 MB per minute);
- ``loop_lag_s``: the event loop's lag as the run's ``--json`` reports it, when it does.

Exit 0 when the slope meets the goal, 1 when it does not, 2 when the demo failed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

GOAL_MB_PER_MIN = 1.0


def rss_mb(pid: int) -> float | None:
    """Resident memory of ``pid`` in MB, or None once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


def slope_per_min(samples: list[tuple[float, float]], after_s: float) -> float | None:
    """Least-squares slope (MB per minute) of the (seconds, MB) samples taken at or after ``after_s``."""
    pts = [(t, m) for t, m in samples if t >= after_s]
    if len(pts) < 3:
        return None
    n = len(pts)
    mt = sum(t for t, _ in pts) / n
    mm = sum(m for _, m in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    if var == 0:
        return None
    cov = sum((t - mt) * (m - mm) for t, m in pts)
    return cov / var * 60.0


def _command() -> list[str]:
    exe = Path(sys.executable).with_name("factory-twin")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "twin.cli"]


def soak(minutes: float, speed: float, every_s: float, warm_up_min: float, seed: int = 0) -> dict:
    duration = max(1.0, minutes * 60.0)
    cmd = [*_command(), "demo", "--speed", str(speed), "--duration", str(duration), "--seed", str(seed),
           "--no-store", "--json", "--dashboard-port", "0"]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t_start = time.monotonic()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        samples: list[tuple[float, float]] = []
        while proc.poll() is None:
            m = rss_mb(proc.pid)
            # a few kB before the interpreter is exec'd: not the demo's memory yet
            if m is not None and m > 1.0:
                samples.append((time.monotonic() - t_start, m))
            try:
                proc.wait(timeout=every_s)
            except subprocess.TimeoutExpired:
                pass
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    doc = None
    try:
        doc = json.loads(stdout) if stdout.strip() else None
    except json.JSONDecodeError:
        doc = None
    # the end of the run (the whole-run summary, the sinks closing) is not the steady state
    steady = [(t, m) for t, m in samples if t <= duration]
    slope = slope_per_min(steady, warm_up_min * 60.0)
    return {
        "command": " ".join(cmd),
        "exit_code": proc.returncode,
        "minutes": minutes,
        "speed": speed,
        "samples": len(samples),
        "rss_mb": {"first": samples[0][1] if samples else None, "last": samples[-1][1] if samples else None,
                   "peak": max((m for _, m in samples), default=None)},
        "slope_mb_per_min": slope,
        "slope_after_min": warm_up_min,
        "goal_mb_per_min": GOAL_MB_PER_MIN,
        "loop_lag_s": (doc or {}).get("loop_lag_s"),
        "series": [[round(t, 1), round(m, 1)] for t, m in samples],
        "stderr_tail": stderr.strip().splitlines()[-5:] if proc.returncode else [],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0, help="wall minutes of demo (default 10)")
    ap.add_argument("--speed", type=float, default=600.0, help="simulated seconds per wall second (default 600)")
    ap.add_argument("--every", type=float, default=5.0, help="seconds between two RSS samples (default 5)")
    ap.add_argument("--warm-up", type=float, default=2.0, help="minutes left out of the slope (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true", help="print the whole result as JSON")
    a = ap.parse_args(argv)
    if a.minutes <= a.warm_up:
        print(f"soak: --minutes ({a.minutes}) must exceed --warm-up ({a.warm_up}) to measure a slope", file=sys.stderr)
        return 2
    res = soak(a.minutes, a.speed, a.every, a.warm_up, a.seed)
    if a.json:
        print(json.dumps(res, indent=2))
    else:
        r = res["rss_mb"]
        print(f"demo --speed {a.speed:g} for {a.minutes:g} min: exit {res['exit_code']}, {res['samples']} RSS samples")
        if r["first"] is not None:
            print(f"rss_mb: first {r['first']:.1f}, last {r['last']:.1f}, peak {r['peak']:.1f}")
        s = res["slope_mb_per_min"]
        print("slope after %g min: %s MB/min (goal < %g)"
              % (a.warm_up, "n/a" if s is None else f"{s:.2f}", GOAL_MB_PER_MIN))
        lag = res["loop_lag_s"]
        print("loop_lag_s: " + ("not reported" if lag is None else json.dumps(lag)))
        for line in res["stderr_tail"]:
            print(f"  {line}", file=sys.stderr)
    if res["exit_code"] not in (0, None) or res["slope_mb_per_min"] is None:
        return 2
    return 0 if res["slope_mb_per_min"] < GOAL_MB_PER_MIN else 1


if __name__ == "__main__":
    sys.exit(main())
