"""Record types shared by every package: what a source observed, and what the twin computed.

Keeping them here (the bottom floor) lets connectors produce and the twin consume them without
either importing the other (docs/architecture.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from enum import Enum
from typing import NamedTuple


class Quality(str, Enum):
    """Source status, reduced to the three OPC UA severities (Part 4, StatusCode top two bits)."""

    GOOD = "good"
    UNCERTAIN = "uncertain"
    BAD = "bad"


class TsKind(str, Enum):
    """Where a sample's timestamp came from (docs/architecture.md: source device, server or receiver)."""

    SOURCE = "source"
    SERVER = "server"
    RECEIVE = "receive"


class Sample(NamedTuple):
    """One observation of one signal.

    ``signal`` is ``<line>/<station>/<name>`` or ``site/<meter>/<name>``; ``ts`` is seconds since
    the Unix epoch, UTC; ``value`` is a float for gauges and counters, a string for states and
    products. A NamedTuple rather than a frozen dataclass: it is built once per value on the ingest
    hot path, where a frozen dataclass's constructor costs several times as much.
    """

    signal: str
    value: float | str
    ts: float
    quality: Quality = Quality.GOOD
    ts_kind: TsKind = TsKind.SOURCE

    @property
    def when(self) -> datetime:
        return datetime.fromtimestamp(self.ts, tz=timezone.utc)


#: The KPI fields every station, line, site and window item carries, in output order.
KPI_FIELDS = (
    "pot_s",
    "pbt_s",
    "apt_s",
    "asut_s",
    "adet_s",
    "adot_s",
    "unknown_s",
    "produced",
    "good",
    "scrap",
    "rework",
    "produced_in_gap",
    "failures",
    "availability",
    "performance",
    "quality",
    "oee",
    "nee",
    "mtbf_s",
    "mttr_s",
    "energy_kwh",
    "kwh_per_good",
    "co2e_kg",
)


def _finite_or_none(x: float | None) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass(slots=True)
class KpiWindow:
    """ISO 22400-2 time elements, counts and KPIs of one station, line or site over one window.

    Ratios that are undefined (no planned busy time, nothing produced) are ``None``, never 0 or 1.
    ``performance`` may exceed 1; ``flags`` then says so instead of capping it.
    """

    site: str
    line: str | None
    station: str | None
    start: float | None  # window start, epoch s (None: the whole run)
    end: float | None
    pot_s: float = 0.0
    pbt_s: float = 0.0
    apt_s: float = 0.0
    asut_s: float = 0.0
    adet_s: float = 0.0
    adot_s: float = 0.0
    unknown_s: float = 0.0
    produced: float = 0.0
    good: float = 0.0
    scrap: float = 0.0
    rework: float = 0.0
    produced_in_gap: float = 0.0  # parts counted across a gap (UNKNOWN time): in produced, not in performance
    failures: int = 0
    availability: float | None = None
    performance: float | None = None
    quality: float | None = None
    oee: float | None = None
    nee: float | None = None
    mtbf_s: float | None = None
    mttr_s: float | None = None
    energy_kwh: float | None = None
    kwh_per_good: float | None = None
    co2e_kg: float | None = None
    flags: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        out = {"site": self.site}
        if self.line is not None:
            out["line"] = self.line
        if self.station is not None:
            out["station"] = self.station
        if self.start is not None:
            out["start"] = iso_utc(self.start)
            out["end"] = iso_utc(self.end)
        for name in KPI_FIELDS:
            v = getattr(self, name)
            if name in ("produced", "good", "scrap", "rework", "produced_in_gap", "failures"):
                out[name] = int(round(v)) if float(v).is_integer() else float(v)
            else:
                out[name] = _finite_or_none(v)
        out["flags"] = list(self.flags)
        return out


@dataclass(frozen=True, slots=True)
class EmissionsRecord:
    """Emissions of one source over one clock hour of the site, with the factors that produced the figure.

    The ledger's identity is (site, source, scope, method, start, origin): writing the same identity
    again replaces the record. ``scope`` is "1" or "2"; ``method`` is "direct" (Scope 1 fuel),
    "location" (Scope 2 grid import and heat), "onsite" (self-consumed on-site generation, kWh,
    co2e 0) or "export" (exported generation, kWh, co2e 0). ``start`` is a clock-hour boundary of
    the site's time zone and ``end`` the next one. ``origin`` is "measured" (replay, run) or
    "simulated" (simulate, demo). Gas masses are in kg of the gas itself; ``co2e_kg`` applies the
    GWP set named in ``gwp_set``. ``data_quality`` is "estimated" when any part of the hour's
    activity was estimated (``estimated_activity`` of it, same unit); ``readings`` and ``resets``
    count the meter readings and counter decreases (reset, replaced meter) that fall in the hour;
    ``first_reading``/``last_reading`` are the times of its first and last reading (None: none).
    """

    site: str
    scope: str
    source: str
    method: str
    start: float
    end: float
    activity: float
    activity_unit: str
    co2e_kg: float
    co2_kg: float = 0.0
    ch4_kg: float = 0.0
    n2o_kg: float = 0.0
    factor_id: str = ""
    factor_version: str = ""
    gwp_set: str = ""
    data_quality: str = "measured"  # measured | estimated
    origin: str = "measured"  # measured | simulated
    estimated_activity: float = 0.0
    readings: int = 0
    resets: int = 0
    first_reading: float | None = None
    last_reading: float | None = None

    @property
    def key(self) -> tuple:
        """The ledger identity: (site, source, scope, method, start, origin)."""
        return (self.site, self.source, self.scope, self.method, self.start, self.origin)

    def to_json(self) -> dict:
        d = asdict(self)
        for name in ("start", "end", "first_reading", "last_reading"):
            d[name] = None if d[name] is None else iso_utc(d[name])
        return d


def iso_utc(ts: float) -> str:
    """RFC 3339 UTC text of an epoch time, millisecond precision."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def record_field_names(cls) -> list[str]:
    return [f.name for f in fields(cls)]
