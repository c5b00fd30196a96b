"""End-of-shift forecast: fork the live twin's "now" into SimPy runs of the rest of the shift.

The live twin knows each station's state and the shift so far, not the parts inside the buffers;
so each replication warms a fresh model up for ``warmup_s`` before "now", puts the stations that are
down now into DOWN for their mean time to repair, and runs to the end of the shift. The forecast
adds the simulated remainder to the measured shift so far, by time elements and counts (never by
averaging ratios), and reports the mean over the replications with their spread.
"""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np

from factory_models import Factory, KpiWindow
from factory_models.records import iso_utc

from twin.kpi import compute_kpis
from twin.model import FactorySim


def _mean_ttr_s(factory: Factory, unit: str) -> float:
    for ln, st, name in factory.station_units():
        if f"{ln.name}/{name}" == unit and st.failures:
            return float(np.mean([f.ttr.mean_s for f in st.failures]))
    return 600.0


def _combine(a: KpiWindow, b: KpiWindow) -> dict:
    """OEE, output and energy of two consecutive spans, from their summed time elements and counts."""
    apt = a.apt_s + b.apt_s
    pbt = a.pbt_s + b.pbt_s
    ideal = (a.performance or 0.0) * a.apt_s + (b.performance or 0.0) * b.apt_s
    produced, good = a.produced + b.produced, a.good + b.good
    avail = apt / pbt if pbt > 0 else None
    perf = ideal / apt if apt > 0 else None
    qual = good / produced if produced > 0 else None
    oee = avail * perf * qual if None not in (avail, perf, qual) else None
    energy = None if a.energy_kwh is None and b.energy_kwh is None else (a.energy_kwh or 0.0) + (b.energy_kwh or 0.0)
    return {"good": good, "produced": produced, "oee": oee, "energy_kwh": energy}


def forecast_shift_end(factory: Factory, twin, *, sim_seed: int = 0, replications: int = 3,
                       warmup_s: float = 3600.0) -> dict | None:
    """The ``forecast`` block: expected good output, OEE and energy of the site at the end of the shift."""
    snap = twin.last_snapshot or twin.snapshot()
    now, end = snap.now, snap.shift_end
    if end <= now or replications < 1:
        return None
    start = datetime.fromtimestamp(now - warmup_s, tz=timezone.utc)
    forked = factory.model_copy(update={"simulation": factory.simulation.model_copy(update={"start": start})})
    runs = []
    for r in range(replications):
        sim = FactorySim(forked, seed=sim_seed * 1000 + r + 1)
        sim.env.run(until=warmup_s)
        for unit, state in snap.states.items():
            if state == "DOWN":
                sim.force_down(unit, _mean_ttr_s(factory, unit))
        sim.run(warmup_s + (end - now))
        log = sim.log.freeze()
        log.t_start, log.t_end = now, end
        runs.append(_combine(snap.shift.site, compute_kpis(log, forked).site))
    out = {"shift": snap.shift_name, "at": iso_utc(now), "shift_end": iso_utc(end), "replications": replications}
    for key in ("good", "oee", "energy_kwh"):
        values = [r[key] for r in runs if r[key] is not None]
        out[f"expected_{key}" if key == "good" else key] = float(np.mean(values)) if values else None
        out[f"{key}_min" if key != "good" else "expected_good_min"] = float(np.min(values)) if values else None
        out[f"{key}_max" if key != "good" else "expected_good_max"] = float(np.max(values)) if values else None
    out["good_so_far"] = snap.shift.site.good
    return out
