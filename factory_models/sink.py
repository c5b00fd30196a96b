"""The interface every sink implements: where the twin's records go (docs/architecture.md).

A sink takes KPI windows, emissions records and samples, answers ``health()`` while it runs and,
on ``close()``, returns its block of the ``sinks`` document a command prints (what it wrote). The
runtime holds a list of sinks and hands each one the same records; a sink that has no use for a
kind of record accepts it and returns 0. Writes are idempotent upserts, so a window written again
(a late sample, a re-run of the same period) replaces its row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Protocol, runtime_checkable

from factory_models.records import EmissionsRecord, KpiWindow, Sample


@runtime_checkable
class Sink(Protocol):
    #: the key of this sink's block in the ``sinks`` document ("store", "influxdb", "dashboard")
    sink_name: ClassVar[str]

    def write_windows(self, records: Iterable[KpiWindow]) -> int:
        """KPI windows (station, line and site rows); returns how many were taken."""
        ...

    def write_emissions(self, records: Iterable[EmissionsRecord]) -> int:
        """Emissions records; returns how many were taken."""
        ...

    def write_samples(self, samples: Iterable[Sample], site: str) -> int:
        """Used samples of ``site``; returns how many were taken."""
        ...

    def health(self) -> dict:
        """How the sink is doing now (JSON-ready), for ``/health`` and the page."""
        ...

    def close(self) -> dict:
        """Finish (flush what is pending) and return this sink's block of the ``sinks`` document."""
        ...
