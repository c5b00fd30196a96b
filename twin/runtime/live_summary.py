"""The JSON document of a live run (``demo --json``, ``run --json``): the whole run's KPIs and
emissions, sample counts by source and reason, connection gaps, receive-to-KPI latency, and for the
demo the comparison with the model's ground truth and the end-of-shift forecast.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any

import numpy as np

from carbon import emissions_summary
from factory_models import Factory
from factory_models.records import iso_utc
from twin.emissions.account import account_log, fill_co2e, site_hours
from twin.kpi import compute_kpis
from twin.model import FactorySim
from twin.runtime.batch import emissions_json
from twin.runtime.summary import kpi_json
from twin.shadow.live_twin import LiveTwin


def compare(truth, live) -> dict:
    """Ground truth (the model's own log) against the twin (what came over the wire), per station."""
    out = []
    for a, b in zip(truth.stations, live.stations):
        item = {"line": a.line, "station": a.station}
        for key in ("apt_s", "produced", "good", "availability", "oee", "energy_kwh"):
            item[key] = {"truth": getattr(a, key), "twin": getattr(b, key)}
        out.append(item)
    return {"stations": out}


def samples_block(twin: LiveTwin, sources) -> dict:
    """The ``samples`` counts: what the router saw plus what each source refused before it."""
    counts = twin.router.counts()
    by_reason = dict(counts["rejected_by_reason"])
    received = counts["received"]
    per_source = {}
    for src in sources:
        st = src.stats()
        per_source[src.name] = st
        received += st.get("rejected", 0)
        for reason, n in st.get("rejected_by_reason", {}).items():
            by_reason[f"{src.name}:{reason}"] = by_reason.get(f"{src.name}:{reason}", 0) + n
    rejected = sum(by_reason.values())
    return {"received": received, "used": counts["used"], "rejected": rejected,
            "rejected_by_reason": dict(sorted(by_reason.items())), "sources": per_source}


def latency(twin: LiveTwin) -> dict:
    lat = np.asarray(twin.latency_s or [0.0])
    return {"p50": float(np.percentile(lat, 50)), "p99": float(np.percentile(lat, 99)), "n": len(twin.latency_s)}


def whole_run(factory: Factory, twin: LiveTwin, carbon, t0: float, t1: float, writer=None):
    """(frozen log, KPI report, emissions) of the run over [t0, t1]; ``carbon`` is (config, registry).

    With the run's ``LiveWriter``, the emissions are the ledger records it wrote hour by hour (the
    store holds exactly those), so every figure the summary prints is a stored figure; the rows and
    windows of the report take their CO2e from the same records."""
    if twin.retained_from is not None and twin.retained_from > t0:
        t0 = twin.retained_from  # older rows were forgotten: the summary covers what is kept
    frozen = twin.frozen(t1)
    frozen.t_start = t0
    report = compute_kpis(frozen, factory, None)
    if writer is None or not writer.sinks:  # nothing was written: the ledger of the run as it stands
        em = account_log(factory, frozen, report, *carbon, origin=writer.origin if writer else "measured")
        return frozen, report, em
    records = writer.records
    em = account_log(factory, frozen, report, *carbon, origin=writer.origin)
    edges = site_hours(factory, min([t0, *(r.start for r in records)]), max([t1, *(r.end for r in records)]))
    fill_co2e(report, records, edges, *carbon, frozen, None, factory)
    if records:
        report.site.co2e_kg = math.fsum(r.co2e_kg for r in records if r.scope == "1" or r.method == "location")
    em = dataclasses.replace(em, records=records, summary=emissions_summary(records))
    em.written = True  # write_final leaves the emissions alone: each hour went out once
    return frozen, report, em


def live_summary(factory: Factory, config: Path, twin: LiveTwin, sources, frozen, report, em, *,
                 sim: FactorySim | None = None, forecast: dict | None = None,
                 extra: dict | None = None) -> dict[str, Any]:
    """The summary document; the caller adds the ``sinks`` block once the sinks are closed, and
    computes the demo's ``forecast`` (``forecast_shift_end``) off the event loop."""
    t0, t1 = frozen.t_start, frozen.t_end
    doc: dict[str, Any] = {
        "command": "demo" if sim is not None else "run",
        "config": str(config),
        "start": iso_utc(t0),
        "end": iso_utc(t1),
        **kpi_json(report, with_windows=False),
        "emissions": emissions_json(em),
        "samples": samples_block(twin, sources),
        "connections": {"gaps": twin.gaps, "state": twin.connections},
        "latency_s": latency(twin),
    }
    if sim is not None:
        truth_log = sim.truth(t0, t1)  # refuses loudly should the kept truth ever not cover the span
        truth = compute_kpis(truth_log, factory, None)
        doc["ground_truth"] = compare(truth, report)
        doc["forecast"] = forecast
    if extra:
        doc["demo"] = extra
    return doc
