"""Replications as tasks on Dask distributed: a local cluster of the machine's cores, or any cluster
whose scheduler address is given.

``run_all(tasks, workers=None, scheduler=None, progress=True) -> list[dict]`` runs every task
``(scenario_name, factory_doc, hours, warmup_hours, seed)`` (a sixth item, the config file the doc
came from, is optional: see ``replication.run_replication``) and returns the replications' dicts in
task order, each with its ``scenario`` added.

- Local (``scheduler`` None): a ``LocalCluster`` of worker processes, ``workers`` of them (default:
  the cores this process may run on), one thread each (the twin holds the GIL: threads would not run
  in parallel), no dashboard, everything bound to 127.0.0.1. It is closed when the run ends.
- ``scheduler="tcp://HOST:8786"``: a ``Client`` of that cluster; its workers need factory-twin
  installed. An address that does not answer within ``connect_timeout_s`` is ``SchedulerUnreachable``
  naming the address (the CLI's exit 2).
- A task depends only on its arguments (same doc and seed, same numbers: ``replication``), so
  running it twice is harmless. Its key is derived from its position and arguments. ``retries``: a
  task that raises is run again up to that many times; the tasks of a worker that dies are
  rescheduled by the scheduler on the workers left (a nanny restarts the dead one). Results are
  therefore identical whatever the number of workers or which of them ran what.
- Every task's numbers and every factory doc (with its carbon settings) are checked before anything
  is submitted, so a bad model is one ConfigError and not N failed tasks. A task that still fails
  after its retries is ``ReplicationFailed`` naming its scenario and seed; the rest are cancelled.
- ``progress``: a rich bar of replications done, on stderr.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import dask
from distributed import Client, LocalCluster, as_completed
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from factory_models import ConfigError
from twin.experiment.replication import carbon_for, check_args, factory_from_doc, run_replication

#: reruns of a task that raised (a worker's death is handled by the scheduler, not counted here)
RETRIES = 2
CONNECT_TIMEOUT_S = 10.0
_ADDRESS = re.compile(r"^(tcp|tls)://[^\s/:]+(:\d+)?$")


class SchedulerUnreachable(ConnectionError):
    """No Dask scheduler answered at ``address`` (or the address is not one)."""

    def __init__(self, address: str, why: str):
        self.address = address
        super().__init__(f"cannot reach the Dask scheduler at {address}: {why}")


class ReplicationFailed(RuntimeError):
    """A replication still failed after its retries."""


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _normalise(task: Sequence, i: int) -> tuple:
    if not isinstance(task, (tuple, list)) or len(task) not in (5, 6):
        raise ValueError(f"task {i}: expected (scenario_name, factory_doc, hours, warmup_hours, seed"
                         f"[, config_path]), got {type(task).__name__} of {len(task) if hasattr(task, '__len__') else '?'} items")
    name, doc, hours, warmup, seed, *rest = task
    return (str(name), doc, hours, warmup, seed, rest[0] if rest else None)


def _validate(tasks: list[tuple]) -> None:
    """Each task's numbers and each distinct factory doc once: a bad one fails here, before the
    cluster starts."""
    seen: set[int] = set()
    for i, (name, doc, hours, warmup, seed, path) in enumerate(tasks):
        try:
            check_args(hours, warmup, seed)
        except ValueError as exc:
            raise ValueError(f"task {i} (scenario {name}): {exc}") from None
        if id(doc) not in seen:
            seen.add(id(doc))
            factory = factory_from_doc(doc, str(path) if path else f"scenario {name}")
            try:  # its carbon settings too (an unknown factor id), loaded once per setting
                carbon_for(factory, path)
            except ConfigError as exc:
                raise ConfigError(f"scenario {name}", exc.problems) from None


def _replicate(name: str, doc: dict, hours: float, warmup: float, seed: int, path) -> dict:
    """The task a worker runs: one replication, tagged with its scenario."""
    return {"scenario": name, **run_replication(doc, hours, warmup, seed, config_path=path)}


def warm(client: Client) -> None:
    """Load the KPI kernels (Numba) and the twin's modules in every worker, so no timed task pays for it."""
    client.run(_warm_worker)


def _warm_worker() -> bool:
    from twin.kpi.warmup import compile_kernels

    compile_kernels()
    return True


@contextmanager
def open_client(workers: int | None = None, scheduler: str | None = None,
                connect_timeout_s: float = CONNECT_TIMEOUT_S) -> Iterator[Client]:
    """A Client of a new local cluster (``workers`` processes) or of the cluster at ``scheduler``."""
    if workers is not None and scheduler is not None:
        raise ValueError("give either a number of workers (a local cluster) or a scheduler address, not both")
    if scheduler is not None:
        client = connect(scheduler, connect_timeout_s)
        try:
            yield client
        finally:
            client.close()
        return
    n = default_workers() if workers is None else workers
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    # the scheduler's HTTP server (health and metrics routes) starts even without a dashboard, by
    # default on port 8787: a free loopback port instead, so runs side by side neither clash nor warn
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None, silence_logs=logging.ERROR,
                           scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"})
    try:
        client = Client(cluster, set_as_default=False)
        try:
            yield client
        finally:
            client.close()
    finally:
        cluster.close()


def connect(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Client:
    """A Client of the scheduler at ``address`` (``tcp://HOST:PORT``), or SchedulerUnreachable."""
    if not isinstance(address, str) or not _ADDRESS.match(address):
        raise SchedulerUnreachable(str(address), "not a scheduler address (expected tcp://HOST:PORT)")
    try:
        return Client(address, timeout=timeout_s, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        # Dask's own text repeats the address and the timeout: said once here
        detail = "" if why.startswith("Timed out trying to connect") else f" ({why})"
        raise SchedulerUnreachable(address, f"no answer within {timeout_s:g} s{detail}") from None


def _bar(total: int) -> Progress:
    return Progress(TextColumn("replications"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    TextColumn("left"), TimeRemainingColumn(), console=Console(stderr=True), transient=False)


def run_on(client: Client, tasks: Sequence[Sequence], progress: bool = True, retries: int = RETRIES) -> list[dict]:
    """Run ``tasks`` on an open client; results in task order (see the module's docstring)."""
    norm = [_normalise(t, i) for i, t in enumerate(tasks)]
    _validate(norm)
    if not norm:
        return []
    # one graph update for all tasks (a submit each cost the scheduler ~6 ms per task); a doc is
    # tokenised once, however many replications share it
    tokens: dict[int, str] = {}
    keys = [f"replication-{i}-" + dask.base.tokenize(n, tokens.setdefault(id(d), dask.base.tokenize(d)), h, w, s, p)
            for i, (n, d, h, w, s, p) in enumerate(norm)]
    futures = client.map(_replicate, *zip(*norm), key=keys, retries=retries, pure=False)
    index = {f.key: i for i, f in enumerate(futures)}
    bar = _bar(len(futures)) if progress else None
    try:
        if bar is not None:
            bar.start()
            job = bar.add_task("replications", total=len(futures))
        for fut in as_completed(futures, loop=client.loop):
            i = index[fut.key]
            if fut.status != "finished":
                raise _failure(client, fut, norm[i], i, retries)
            if bar is not None:
                bar.advance(job)
        # fetched at the end in one gather per worker: a result() per future was a round trip each
        results = client.gather(futures)
    finally:
        if bar is not None:
            bar.stop()
        client.cancel(futures)
    return results


def _failure(client: Client, fut, task: tuple, i: int, retries: int) -> ReplicationFailed:
    name, _d, _h, _w, seed, _p = task
    what = f"replication {i} (scenario {name}, seed {seed})"
    if fut.status == "error":
        exc = fut.exception()
        return ReplicationFailed(f"{what} failed after {retries} retries: {type(exc).__name__}: {exc}")
    # cancelled without an error of its own: the scheduler went away (or forgot the task)
    return ReplicationFailed(f"{what} did not finish ({fut.status}): lost the Dask scheduler at "
                             f"{client.scheduler.address}, or it lost the task")


def run_all(tasks: Sequence[Sequence], workers: int | None = None, scheduler: str | None = None,
            progress: bool = True, *, connect_timeout_s: float = CONNECT_TIMEOUT_S,
            retries: int = RETRIES) -> list[dict]:
    """Every replication of ``tasks`` on Dask, in task order: see the module's docstring."""
    norm = [_normalise(t, i) for i, t in enumerate(tasks)]
    _validate(norm)  # before a cluster is started or reached
    if not norm:
        return []
    with open_client(workers, scheduler, connect_timeout_s) as client:
        return run_on(client, norm, progress=progress, retries=retries)
