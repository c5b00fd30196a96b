"""Replications on a real Dask cluster of worker processes on loopback: the same numbers for 1 and 2
workers and as run in this process, complete and identical results when a worker dies in the middle
of a replication, and a clear error for a scheduler that does not answer."""

from __future__ import annotations

import copy
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import yaml
from distributed import Client, LocalCluster

from factory_models import ConfigError
from twin.experiment.cluster import ReplicationFailed, SchedulerUnreachable, run_all
from twin.experiment.replication import run_replication

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 120.0


def demo() -> dict:
    return yaml.safe_load((ROOT / "configs/demo_smt.yaml").read_text())


def faster_placer(doc: dict) -> dict:
    out = copy.deepcopy(doc)
    placer = next(s for s in out["lines"][0]["stations"] if s["name"] == "placer-chip")
    placer["cycle_time_s"]["ctrl-board"] = 34
    return out


def serial(tasks) -> list[dict]:
    return [{"scenario": name, **run_replication(doc, h, w, seed)} for name, doc, h, w, seed in tasks]


def test_same_results_for_one_and_two_workers_and_in_process(capsys):
    base = demo()
    tasks = [(name, doc, 24, 2, seed) for seed in (1, 2, 3) for name, doc in (("base", base), ("faster", faster_placer(base)))]
    one = run_all(tasks, workers=1, progress=False)
    quiet = capsys.readouterr()
    two = run_all(tasks, workers=2, progress=True)
    shown = capsys.readouterr()
    assert quiet.err == "" and quiet.out == "" and shown.out == ""
    assert "replications" in shown.err and "6/6" in shown.err  # the bar, on stderr, complete
    assert one == two == serial(tasks)
    assert [(r["scenario"], r["seed"]) for r in two] == [(t[0], t[4]) for t in tasks]  # task order
    # common random numbers: the faster placer changes the outcome of the same seed
    assert two[0] != {**two[1], "scenario": "base"}


def _die_if_busy(dask_worker, note: str):
    """Run in a worker's event loop: if a replication is executing in its task thread right now,
    note its key and end the process at once (as a crash would), mid-replication."""
    busy = [ts.key for ts in dask_worker.state.executing if str(ts.key).startswith("replication-")]
    if not busy:
        return False
    Path(note).write_text(str(busy[0]))
    os._exit(1)


def test_a_worker_killed_mid_replication_still_gives_complete_identical_results(tmp_path):
    base = demo()
    tasks = [("base", base, 72, 2, seed) for seed in range(1, 9)]
    expected = serial(tasks)
    note = tmp_path / "killed"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None,
                      scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"}) as cluster, \
            Client(cluster, set_as_default=False) as observer:
        out: dict = {}
        runner = threading.Thread(target=lambda: out.update(results=run_all(
            tasks, scheduler=cluster.scheduler_address, progress=False)))
        runner.start()
        victim = None
        deadline = time.monotonic() + DEADLINE_S
        while victim is None and runner.is_alive() and time.monotonic() < deadline:
            for address in list(observer.scheduler_info()["workers"]):
                try:
                    observer.run(_die_if_busy, note=str(note), workers=[address])
                except Exception:  # noqa: BLE001 (the worker ended while answering: the kill)
                    if note.exists():
                        victim = address
                        break
        runner.join(DEADLINE_S)
        assert victim is not None, "no worker was caught executing a replication"
        assert not runner.is_alive()
        killed_key = note.read_text()
        assert killed_key.startswith("replication-")
        # the scheduler saw the worker go (its nanny starts a new one at another address)
        while victim in observer.scheduler_info()["workers"] and time.monotonic() < deadline:
            observer.scheduler_info()
        assert victim not in observer.scheduler_info()["workers"]
    assert out["results"] == expected  # every replication, the killed one included, same numbers


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_scheduler_is_a_clear_error_naming_the_address():
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there any more
    started = time.monotonic()
    with pytest.raises(SchedulerUnreachable) as err:
        run_all([("base", demo(), 1, 0, 1)], scheduler=address, progress=False, connect_timeout_s=2)
    assert str(err.value) == f"cannot reach the Dask scheduler at {address}: no answer within 2 s"
    assert "\n" not in str(err.value)
    assert time.monotonic() - started < 30
    with pytest.raises(SchedulerUnreachable, match="at localhost:8786: not a scheduler address"):
        run_all([("base", demo(), 1, 0, 1)], scheduler="localhost:8786", progress=False)


def test_a_bad_model_fails_before_any_cluster_is_reached():
    doc = demo()
    doc["lines"][0]["stations"][0]["buffer_after"] = -1
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(ConfigError, match=r"scenario bad: lines\[0\]\.stations\[0\]\.buffer_after"):
        run_all([("base", demo(), 1, 0, 1), ("bad", doc, 1, 0, 1)], scheduler=address, progress=False)


def test_local_cluster_is_loopback_only_one_thread_per_worker_without_dashboard():
    import urllib.error
    import urllib.request

    from twin.experiment.cluster import open_client

    with open_client(workers=2) as client:
        info = client.scheduler_info()
        assert info["address"].startswith("tcp://127.0.0.1:")
        assert sorted(w["nthreads"] for w in info["workers"].values()) == [1, 1]
        assert all(a.startswith("tcp://127.0.0.1:") for a in info["workers"])
        assert len(set(client.run(os.getpid).values()) - {os.getpid()}) == 2  # processes, not threads
        http = client.cluster.scheduler.http_server
        ports = {s.getsockname() for s in http._sockets.values()}
        assert all(host == "127.0.0.1" and port != 8787 for host, port in ports)
        (host, port), = ports
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"http://{host}:{port}/status", timeout=10)
        assert err.value.code == 404  # no dashboard page


def test_bad_numbers_or_carbon_settings_fail_before_any_cluster_is_reached():
    address = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(ValueError, match=r"task 1 \(scenario base\): hours must be a finite number > 0"):
        run_all([("base", demo(), 1, 0, 1), ("base", demo(), 0, 0, 2)], scheduler=address, progress=False)
    doc = demo()
    doc["carbon"] = {"grid_factor": "no-such-factor"}
    with pytest.raises(ConfigError, match="scenario hourly: .*grid_factor: unknown emission factor id 'no-such-factor'"):
        run_all([("hourly", doc, 1, 0, 1)], scheduler=address, progress=False)


def test_a_lost_scheduler_is_a_clear_error_naming_it():
    import subprocess
    import sys

    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--port", "0", "--no-dashboard", "--dashboard-address", "127.0.0.1:0"],
                                 stderr=subprocess.PIPE, text=True)
    worker = None
    try:
        address = None
        for line in scheduler.stderr:  # its log says where it listens
            if "Scheduler at:" in line:
                address = line.split("Scheduler at:")[1].strip()
                break
        assert address and address.startswith("tcp://127.0.0.1:")
        worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nthreads", "1",
                                   "--no-nanny", "--host", "127.0.0.1", "--no-dashboard"], stderr=subprocess.DEVNULL)
        tasks = [("base", demo(), 72, 0, seed) for seed in range(1, 9)]
        out: dict = {}

        def run():
            try:
                run_all(tasks, scheduler=address, progress=False)
            except Exception as exc:  # noqa: BLE001 (what the test looks at)
                out["error"] = exc

        with Client(address, set_as_default=False, timeout=30) as observer:
            observer.wait_for_workers(1, timeout=DEADLINE_S)
            runner = threading.Thread(target=run)
            runner.start()
            deadline = time.monotonic() + DEADLINE_S
            while runner.is_alive() and time.monotonic() < deadline:
                if any(str(k).startswith("replication-") for keys in observer.processing().values() for k in keys):
                    break  # the worker has replications to run
            assert runner.is_alive(), "the run ended before the scheduler could be lost"
        scheduler.kill()  # mid-run
        runner.join(DEADLINE_S)
        assert not runner.is_alive()
        err = out.get("error")
        assert isinstance(err, ReplicationFailed), err
        assert f"lost the Dask scheduler at {address}" in str(err)
    finally:
        for proc in (worker, scheduler):
            if proc is not None:
                proc.kill()
                proc.wait(30)
