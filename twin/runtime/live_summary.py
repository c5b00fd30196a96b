"""The JSON document of a live run (``demo --json``, ``run --json``): the whole run's KPIs and
emissions, sample counts by source and reason, connection gaps, receive-to-KPI latency, and for the
demo the comparison with the model's ground truth and the end-of-shift forecast.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from factory_models import Factory
from factory_models.records import iso_utc
from twin.emissions.account import account_log
from twin.kpi import compute_kpis
from twin.model import FactorySim
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


def whole_run(factory: Factory, twin: LiveTwin, carbon, t0: float, t1: float):
    """(frozen log, KPI report, emissions) of the run over [t0, t1]; ``carbon`` is (config, registry)."""
    if twin.retained_from is not None and twin.retained_from > t0:
        t0 = twin.retained_from  # older rows were forgotten: the summary covers what is kept
    frozen = twin.frozen(t1)
    frozen.t_start = t0
    report = compute_kpis(frozen, factory, None)
    em = account_log(factory, frozen, report, *carbon)  # fills co2e_kg of stations, lines, site
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
        "emissions": em.summary,
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
