"""``/metrics``: the state document and the health document in the Prometheus text format (0.0.4).

Names follow the Prometheus conventions (base units in the name, ``_total`` for counters, a
``_ratio`` for 0..1 figures). The station state is a StateSet: one gauge per possible state, 1 for
the current one, so a query like ``factory_twin_station_state{state="DOWN"} == 1`` finds what is down.
KPI gauges are shift-to-date, like the dashboard. A figure that is undefined (no planned busy time
yet, no meter) is left out rather than written as 0, as in the InfluxDB schema.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from factory_models import State

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

_KPI_GAUGES = (
    ("oee", "oee_ratio", "Overall equipment effectiveness, shift to date (ISO 22400-2)"),
    ("availability", "availability_ratio", "Availability APT/PBT, shift to date (ISO 22400-2)"),
    ("performance", "performance_ratio", "Effectiveness (performance), shift to date; may exceed 1"),
    ("quality", "quality_ratio", "Quality ratio good/produced, shift to date"),
    ("good", "good_parts", "Good parts, shift to date"),
    ("produced", "produced_parts", "Produced parts, shift to date"),
    ("energy_kwh", "shift_energy_kwh", "Electric energy, shift to date (kWh)"),
    ("co2e_kg", "shift_co2e_kg", "CO2e of the energy, shift to date (kg)"),
)
_TIME_ELEMENTS = ("apt_s", "asut_s", "adet_s", "adot_s", "pbt_s", "unknown_s")


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(v) -> str | None:
    if v is None:
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(x):
        return None
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


class _Family:
    def __init__(self, name: str, kind: str, help_: str):
        self.name, self.kind, self.help = name, kind, help_
        self.samples: list[tuple[dict, str]] = []

    def add(self, value, **labels) -> None:
        text = _number(value)
        if text is not None:
            self.samples.append(({k: v for k, v in labels.items() if v is not None}, text))

    def lines(self) -> Iterable[str]:
        if not self.samples:
            return
        yield f"# HELP {self.name} {self.help}"
        yield f"# TYPE {self.name} {self.kind}"
        for labels, text in self.samples:
            if labels:
                inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
                yield f"{self.name}{{{inner}}} {text}"
            else:
                yield f"{self.name} {text}"


class _Registry:
    def __init__(self, prefix: str):
        self.prefix = prefix
        self.families: dict[str, _Family] = {}

    def family(self, name: str, kind: str, help_: str) -> _Family:
        full = f"{self.prefix}_{name}"
        fam = self.families.get(full)
        if fam is None:
            fam = self.families[full] = _Family(full, kind, help_)
        return fam

    def text(self) -> str:
        out = [line for fam in self.families.values() for line in fam.lines()]
        return "\n".join(out) + "\n"


def render_metrics(state: dict | None, health: dict | None, server: dict | None = None, *,
                   prefix: str = "factory_twin") -> str:
    """The exposition text of one state document, one health document and the server's own counters.

    Either document may be None (its provider failed); what is known is still exposed, and
    ``factory_twin_up{part=...}`` says which part is missing.
    """
    reg = _Registry(prefix)
    up = reg.family("up", "gauge", "1 if the part's provider answered for this scrape")
    up.add(1 if state is not None else 0, part="state")
    up.add(1 if health is not None else 0, part="health")
    if health is not None:
        _health(reg, health)
    if state is not None:
        _state(reg, state)
    if server:
        _server(reg, server)
    return reg.text()


def _samples(reg: _Registry, samples: dict) -> None:
    for key, help_ in (("received", "Samples received from every source"),
                       ("used", "Samples used by the twin"),
                       ("rejected", "Samples rejected, with a counted and logged reason")):
        reg.family(f"samples_{key}_total", "counter", help_).add(samples.get(key))
    by_reason = reg.family("samples_rejected_by_reason_total", "counter", "Samples rejected, by reason")
    for reason, n in sorted((samples.get("rejected_by_reason") or {}).items()):
        by_reason.add(n, reason=reason)


def _connections(reg: _Registry, connections: dict) -> None:
    fam = reg.family("connection_up", "gauge", "1 if the source's connection is up, 0 if down or stale")
    for source, status in sorted(connections.items()):
        if isinstance(status, dict):  # a richer per-source record: {"state": "up", ...}
            status = status.get("state", status.get("status"))
        fam.add(1 if str(status) == "up" else 0, source=source)


def _sources(reg: _Registry, sources: dict) -> None:
    """Per source (twin/runtime/diagnostics.py): reconnects, samples by outcome and reason, silent signals."""
    reconnects = reg.family("source_reconnects_total", "counter", "Reconnections of the source since the run began")
    failures = reg.family("source_connect_failures_total", "counter", "Failed connection attempts of the source")
    sent = reg.family("source_samples_sent_total", "counter", "Samples the source put on the twin's queue")
    used = reg.family("source_samples_used_total", "counter", "Samples of the source's signals the twin used")
    rejected = reg.family("source_samples_rejected_total", "counter",
                          "Samples of the source rejected by the source or the twin, by reason")
    never = reg.family("source_signals_never_received", "gauge", "Signals the source names that never delivered")
    for name, block in sorted(sources.items()):
        if not isinstance(block, dict):
            continue
        samples = block.get("samples") or {}
        reconnects.add(block.get("reconnects"), source=name)
        failures.add(block.get("connect_failures"), source=name)
        sent.add(samples.get("sent"), source=name)
        used.add(samples.get("used"), source=name)
        for reason, n in sorted((samples.get("rejected_by_reason") or {}).items()):
            rejected.add(n, source=name, reason=reason)
        never.add(block.get("never_received_count"), source=name)


def _health(reg: _Registry, health: dict) -> None:
    if isinstance(health.get("samples"), dict):
        _samples(reg, health["samples"])
    if isinstance(health.get("connections"), dict):
        _connections(reg, health["connections"])
    if isinstance(health.get("sources"), dict):
        _sources(reg, health["sources"])
    spool = health.get("spool")
    if isinstance(spool, dict):
        for key, name, kind, help_ in (
            ("spool_depth", "spool_depth_points", "gauge", "Points accepted into the InfluxDB spool, not yet acknowledged"),
            ("spool_bytes", "spool_bytes", "gauge", "Bytes of line protocol in the spool"),
            ("oldest_age_s", "spool_oldest_age_seconds", "gauge", "Age of the oldest unacknowledged point (s)"),
            ("written", "spool_written_total", "counter", "Points acknowledged by InfluxDB"),
            ("dropped", "spool_dropped_total", "counter", "Points dropped by the spool's overflow policy"),
        ):
            reg.family(name, kind, help_).add(spool.get(key))


def _kpi(reg: _Registry, kpi: dict | None, **labels) -> None:
    if not isinstance(kpi, dict):
        return
    for key, name, help_ in _KPI_GAUGES:
        reg.family(name, "gauge", help_).add(kpi.get(key), **labels)
    te = reg.family("time_element_seconds", "gauge", "ISO 22400-2 time elements, shift to date (s)")
    for key in _TIME_ELEMENTS:
        te.add(kpi.get(key), element=key[:-2], **labels)


def _state(reg: _Registry, doc: dict) -> None:
    site = doc.get("site")
    # the health document is the primary source of these; the state document carries them too
    if f"{reg.prefix}_samples_received_total" not in reg.families and isinstance(doc.get("samples"), dict):
        _samples(reg, doc["samples"])
    if f"{reg.prefix}_connection_up" not in reg.families and isinstance(doc.get("connections"), dict):
        _connections(reg, doc["connections"])

    state_fam = reg.family("station_state", "gauge", "1 for the station's current state (one series per state)")
    power = reg.family("power_kw", "gauge", "Electric power of the station (kW)")
    buf = reg.family("buffer_level_parts", "gauge", "Parts in the buffer after the station")
    cap = reg.family("buffer_capacity_parts", "gauge", "Capacity of the buffer after the station")
    bottleneck = reg.family("bottleneck", "gauge", "1 for the station that is the line's bottleneck")
    for line in doc.get("lines") or []:
        ln = line.get("line")
        for st in line.get("stations") or []:
            labels = {"site": site, "line": ln, "station": st.get("station")}
            current = st.get("state")
            for s in State:
                state_fam.add(1 if s.name == current else 0, state=s.name, **labels)
            power.add(st.get("power_kw"), **labels)
            buf.add(st.get("buffer_after"), **labels)
            cap.add(st.get("buffer_capacity"), **labels)
            bottleneck.add(1 if line.get("bottleneck") == st.get("station") else 0, **labels)
            _kpi(reg, st.get("kpi"), **labels)
        _kpi(reg, line.get("kpi"), site=site, line=ln)
    _kpi(reg, doc.get("site_kpi"), site=site)

    energy = doc.get("energy") or {}
    reg.family("site_power_kw", "gauge", "Electric power of the site, metered (kW)").add(energy.get("power_kw"), site=site)
    reg.family("site_shift_energy_kwh", "gauge", "Electric energy of the site, metered, shift to date (kWh)").add(
        energy.get("shift_kwh"), site=site)
    rate = reg.family("co2e_rate_kg_per_hour", "gauge", "CO2e emission rate of the power drawn now (kg/h)")
    for method, v in sorted((energy.get("co2e_rate_kg_per_h") or {}).items()):
        rate.add(v, site=site, method=method)
    total = reg.family("shift_co2e_kg", "gauge", "CO2e of the energy, shift to date (kg)")
    for method, v in sorted((energy.get("shift_co2e_kg") or {}).items()):
        total.add(v, site=site, method=method)

    shift = doc.get("shift") or {}
    reg.family("shift_plan_good_parts", "gauge", "Planned good output of the shift").add(shift.get("plan_good"), site=site)
    forecast = shift.get("forecast") or {}
    reg.family("forecast_good_parts", "gauge", "Expected good output at the end of the shift").add(
        forecast.get("expected_good"), site=site)
    reg.family("forecast_oee_ratio", "gauge", "Expected OEE at the end of the shift").add(forecast.get("oee"), site=site)

    alarms = reg.family("alarms", "gauge", "Active alarms, by level and kind")
    counts: dict[tuple[str, str], int] = {}
    for a in doc.get("alarms") or []:
        key = (str(a.get("level")), str(a.get("kind")))
        counts[key] = counts.get(key, 0) + 1
    for (level, kind), n in sorted(counts.items()):
        alarms.add(n, level=level, kind=kind)


def _server(reg: _Registry, server: dict) -> None:
    reg.family("dashboard_clients", "gauge", "Live pages connected to /events").add(server.get("clients"))
    reg.family("dashboard_events_sent_total", "counter", "State events pushed to pages").add(server.get("events_sent"))
    reg.family("dashboard_state_errors_total", "counter", "Failed calls of the state provider").add(server.get("state_errors"))
    reg.family("dashboard_refused_total", "counter", "Requests refused for lack of a valid token").add(server.get("refused"))
    reg.family("dashboard_misdirected_total", "counter",
               "Requests answered 421: their Host header named another server (DNS rebinding)").add(server.get("misdirected"))
