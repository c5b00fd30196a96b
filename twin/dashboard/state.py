"""The live state document: what the operators' dashboard shows, built from a live-twin snapshot.

One JSON-ready dict per tick (shape documented in twin/dashboard/README.md): per station its state,
shift-so-far KPIs, power and buffer level; the bottleneck; output against plan and the end-of-shift
forecast; power, energy and CO2e (location- and market-based); alarms; sample and connection counts;
and the recent history (site OEE, power, good parts) that the page's chart draws as soon as it opens.
"""

from __future__ import annotations

from collections.abc import Callable
from weakref import WeakKeyDictionary

from factory_models import Factory
from factory_models.records import iso_utc
from twin.shadow.live_twin import LiveTwin, Snapshot, shift_bounds


def plan_good(factory: Factory, line_name: str, pbt_s: float) -> float | None:
    """Planned good output of a line over ``pbt_s`` of planned busy time: the line's slowest station
    at its ideal cycle time (ISO 22400 PRU), weighted by the product shares, per parallel machine."""
    line = next(ln for ln in factory.lines if ln.name == line_name)
    shares = {p.name: p.share for p in factory.products}
    total = sum(shares.values()) or 1.0
    slowest = 0.0
    for st in line.stations:
        cycle = sum(st.cycle_time_s[p] * w / total for p, w in shares.items()) / st.machines
        slowest = max(slowest, cycle)
    return pbt_s / slowest if slowest > 0 else None


def bottleneck(stations: list[dict]) -> str | None:
    """The station busiest relative to its planned busy time (APT + setup + delays over PBT): the
    one that starves least and is blocked least (a utilisation-based bottleneck rule)."""
    best, best_u = None, -1.0
    for st in stations:
        k = st["kpi"]
        if k["pbt_s"] > 0:
            u = (k["apt_s"] + k["asut_s"] + k["adet_s"]) / k["pbt_s"]
            if u > best_u:
                best, best_u = st["station"], u
    return best


#: Readable names of the router's rejection reasons (twin/shadow/router.py), singular and plural.
REASON_WORDS = {
    "duplicate": ("duplicate", "duplicates"),
    "unknown_signal": ("unknown signal", "unknown signals"),
    "bad_value": ("bad value", "bad values"),
    "nan": ("NaN or infinite value", "NaN or infinite values"),
    "unknown_state": ("unknown state", "unknown states"),
    "unknown_product": ("unknown product", "unknown products"),
    "bad_quality": ("marked bad by its source", "marked bad by their source"),
}


def rejected_text(total: int, by_reason: dict[str, int]) -> str:
    """``"14 samples rejected: 10 unknown signals, 4 duplicates"``: the most frequent reason first."""
    parts = []
    for reason, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        one, many = REASON_WORDS.get(reason, (reason.replace("_", " "),) * 2)
        parts.append(f"{n} {one if n == 1 else many}")
    head = f"{total} sample{'' if total == 1 else 's'} rejected"
    return f"{head}: {', '.join(parts)}" if parts else head


class History:
    """The recent past of the site for the page's chart: plant time, site OEE, power and good parts
    (shift so far), one point per tick, bounded in memory and on the wire.

    Points older than ``span_s`` (plant time) are dropped, and time is cut into steps of
    ``span_s / (max_points - 1)``: a point in the same step as the one before replaces it, so a fast
    tick (a real-time run ticks twice a second) keeps at most ``max_points`` (the last of each
    step), while the slow ticks of the demo (30 s of plant time) each keep their own point. The
    newest point is always the current figures.
    """

    def __init__(self, span_s: float = 3600.0, max_points: int = 360):
        if not span_s > 0 or max_points < 2:
            raise ValueError(f"History needs span_s > 0 and max_points >= 2, got {span_s!r}, {max_points!r}")
        self.span_s, self.max_points = float(span_s), int(max_points)
        self.step_s = self.span_s / (self.max_points - 1)
        self.t: list[float] = []
        self.oee: list[float | None] = []
        self.power_kw: list[float | None] = []
        self.good: list[float | None] = []

    def __len__(self) -> int:
        return len(self.t)

    def add(self, t: float, *, oee: float | None, power_kw: float | None, good: float | None) -> None:
        cols = (self.t, self.oee, self.power_kw, self.good)
        if self.t and t < self.t[-1]:  # the clock went back (a new run on the same twin): start again
            for c in cols:
                c.clear()
        if self.t and t // self.step_s == self.t[-1] // self.step_s:
            for c in cols:
                c.pop()
        for c, v in zip(cols, (t, oee, power_kw, good), strict=True):
            c.append(v)
        cut = 0
        while t - self.t[cut] > self.span_s:
            cut += 1
        if cut or len(self.t) > self.max_points:
            cut = max(cut, len(self.t) - self.max_points)
            for c in cols:
                del c[:cut]

    def to_json(self) -> dict:
        """Columns, ready for a chart: ``t`` in Unix seconds (UTC), then the figures at each ``t``."""
        return {"span_s": self.span_s, "t": list(self.t), "oee": list(self.oee),
                "power_kw": list(self.power_kw), "good": list(self.good)}


#: One history per live twin for callers that do not keep their own: every caller of build_state
#: then serves the chart's history without wiring, and it goes away with the twin.
_HISTORIES: WeakKeyDictionary[LiveTwin, History] = WeakKeyDictionary()


def history_of(twin: LiveTwin) -> History:
    hist = _HISTORIES.get(twin)
    if hist is None:
        hist = _HISTORIES[twin] = History()
    return hist


def build_state(factory: Factory, twin: LiveTwin, snap: Snapshot, *, factors_kg_per_kwh: dict[str, float],
                buffers: Callable[[str], tuple[int, int] | None] | None = None,
                forecast: dict | None = None, rejected_alarm_after: int = 1,
                history: History | None = None) -> dict:
    """The dashboard's state document for ``snap``; ``buffers(unit)`` gives (level, capacity) when known.

    Each call adds the snapshot's point to ``history`` (by default the one kept for ``twin``)."""
    shift = snap.shift
    by_unit = {f"{w.line}/{w.station}": w for w in shift.stations}
    lines = []
    power_total = 0.0
    alarms: list[dict] = []
    for line_kpi in shift.lines:
        stations = []
        for unit, w in by_unit.items():
            if w.line != line_kpi.line:
                continue
            state = snap.states.get(unit, "UNKNOWN")
            kw = twin.latest_kw.get(f"{unit}/power_kw")
            if kw is not None:
                power_total += kw[1]
            level = buffers(unit) if buffers else None
            stations.append({
                "station": w.station, "state": state, "power_kw": None if kw is None else kw[1],
                "buffer_after": None if level is None else level[0],
                "buffer_capacity": None if level is None else level[1],
                "kpi": w.to_json(),
            })
            if state == "DOWN":
                alarms.append({"level": "error", "kind": "station_down", "text": f"{unit} is down",
                               "since": iso_utc(snap.now)})
        lines.append({"line": line_kpi.line, "bottleneck": bottleneck(stations), "stations": stations,
                      "kpi": line_kpi.to_json(),
                      "plan_good": plan_good(factory, line_kpi.line, line_kpi.pbt_s / max(len(stations), 1))})
    for meter in factory.meters:
        kw = twin.latest_kw.get(f"site/{meter.name}/power_kw")
        if kw is not None and meter.kind == "grid_import":
            power_total = kw[1]  # the site boundary meter, when there is one, is the truth
    for source, state in snap.connections.items():
        if state != "up":
            gap = next((g for g in reversed(snap.gaps) if g["source"] == source and g["end"] is None), None)
            alarms.append({"level": "error", "kind": "connection_lost", "text": f"source {source} is disconnected",
                           "since": iso_utc(gap["start"]) if gap else iso_utc(snap.now)})
    if snap.samples["rejected"] >= rejected_alarm_after:
        alarms.append({"level": "warning", "kind": "rejected_samples",
                       "text": rejected_text(snap.samples["rejected"], snap.samples["rejected_by_reason"]),
                       "since": iso_utc(snap.now)})
    site = shift.site
    shift_kwh = site.energy_kwh or 0.0
    loc, mkt = factors_kg_per_kwh.get("location", 0.0), factors_kg_per_kwh.get("market", 0.0)
    history = history_of(twin) if history is None else history
    history.add(snap.now, oee=site.oee, power_kw=power_total, good=site.good)
    return {
        "now": iso_utc(snap.now),
        "site": factory.site.name,
        "timezone": factory.calendar.timezone,
        "shift": {"name": snap.shift_name, "start": iso_utc(shift_bounds(factory, snap.now)[0]),
                  "end": iso_utc(snap.shift_end),
                  "plan_good": sum(ln["plan_good"] or 0 for ln in lines), "forecast": forecast},
        "lines": lines,
        "site_kpi": site.to_json(),
        "energy": {"power_kw": power_total, "shift_kwh": shift_kwh,
                   "co2e_rate_kg_per_h": {"location": power_total * loc, "market": power_total * mkt},
                   "shift_co2e_kg": {"location": shift_kwh * loc, "market": shift_kwh * mkt}},
        "alarms": alarms,
        "samples": snap.samples,
        "connections": snap.connections,
        "history": history.to_json(),
    }
