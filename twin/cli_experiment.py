"""``factory-twin experiment``: what-if scenarios of a plan, replicated on Dask, compared with the base.

Every bad input (the plan, an option, ``--out``, an unreachable scheduler) is one line on stderr and
exit 2 before anything is written; ``--out`` is written all at once at the end (twin/experiment/report.py).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import typer

from factory_models import ConfigError
from twin.cli_options import JsonOpt, VerboseOpt, fail, setup_logging
from twin.runtime.summary import console, dump_json


def experiment(
    plan_file: Path = typer.Argument(..., metavar="PLAN.yaml", help="Experiment plan: a base model and scenarios "
                                     "as overrides of it (e.g. configs/experiment_smt.yaml)."),
    replications: Optional[int] = typer.Option(None, "--replications", "-n",
                                               help="Replications per scenario (at least 2); default: the plan's."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes of the local Dask cluster "
                                          "(default: the machine's cores)."),
    scheduler: Optional[str] = typer.Option(None, "--scheduler", help="Use the Dask cluster at this scheduler "
                                            "address (tcp://HOST:8786) instead of a local one."),
    target_halfwidth: list[str] = typer.Option(
        [], "--target-halfwidth", metavar="KPI=VALUE", help="Sequential mode: add replications until the 95 % "
        "interval of KPI in every scenario is no wider than +-VALUE (repeatable), up to --max-replications."),
    max_replications: int = typer.Option(200, "--max-replications", help="The sequential mode's cap per scenario."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Directory for experiment.json, replications.csv "
                                       "and experiment.png (written all at once)."),
    json_out: bool = JsonOpt,
    verbose: bool = VerboseOpt,
) -> None:
    """Compare what-if scenarios: N replications each with the same seeds (paired), mean and 95 % interval
    per KPI, the difference to the base and a verdict."""
    from twin.experiment import report
    from twin.experiment.plan import check_replications, load_plan
    from twin.experiment.runner import parse_targets, run_experiment

    setup_logging(verbose)
    if workers is not None and scheduler is not None:
        fail("give --workers (a local cluster) or --scheduler (an existing one), not both")
    if workers is not None and workers < 1:
        fail(f"--workers {workers}: expected at least 1")
    try:
        plan = load_plan(plan_file)
        if replications is not None:
            check_replications(replications)
        targets = parse_targets(target_halfwidth)
        if targets and max_replications < (replications or plan.replications):
            raise ValueError(f"--max-replications {max_replications} is below the "
                             f"{replications or plan.replications} replications to start with")
        if out is not None:
            report.check_out(out)
    except ConfigError as exc:
        fail(str(exc))
    except ValueError as exc:
        text = str(exc)
        fail(f"--replications {text}" if replications is not None and text.startswith(f"{replications} is below") else text)

    from twin.experiment.cluster import ReplicationFailed, SchedulerUnreachable

    if not verbose:  # the scheduler runs in this process and logs every worker and key at INFO
        logging.getLogger("distributed").setLevel(logging.ERROR)
    try:
        outcome = run_experiment(plan, replications=replications, workers=workers, scheduler=scheduler,
                                 progress=True, targets=targets, max_replications=max_replications)
    except SchedulerUnreachable as exc:
        fail(str(exc))
    except ConfigError as exc:
        fail(str(exc))
    except ReplicationFailed as exc:
        fail(str(exc), 1)
    except KeyboardInterrupt:  # the cluster is closed on the way out; --out untouched
        fail("experiment: interrupted; nothing written", 130)
    if out is not None:
        try:
            report.write_out(outcome.doc, outcome.results, out)
        except (OSError, ValueError) as exc:
            fail(f"--out {out}: nothing written: {exc}", 1 if isinstance(exc, OSError) else 2)
    if json_out:
        dump_json(outcome.doc)
    else:
        report.print_table(outcome.doc, console())
        if out is not None:
            typer.echo(f"wrote {out}/: {', '.join(report.OUT_FILES)}")
