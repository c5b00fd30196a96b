"""The schema of a shop floor: site, lines, stations, buffers, products, shifts, failures, meters.

Pure data and validation (pydantic). Units are in the field names: ``_s`` seconds, ``_kw``
kilowatts, ``_kwh`` kilowatt-hours, ``_nm3`` normal cubic metres. Every model forbids unknown
fields, so a typo in a config is an error that names the field, not a silently ignored key.
"""

from __future__ import annotations

import math
from datetime import date, datetime, time
from typing import Annotated, Any, Literal, Union
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

# the building blocks and the site meters live beside the schema; imported from here as before
from .base import NAME, Fraction, Name, NonNegative, Positive, Strict  # noqa: F401
from .policies import ShiftOff, Standby
from .site_meters import (  # noqa: F401
    AirMeter,
    BaseLoad,
    ExportMeter,
    GasMeter,
    GridMeter,
    Meter,
    PvMeter,
    Rollover,
)
from .states import State

# --- distributions of time between failures and time to repair --------------------------------


class Fixed(Strict):
    dist: Literal["fixed"]
    value_s: Positive

    @property
    def mean_s(self) -> float:
        return self.value_s


class Exponential(Strict):
    dist: Literal["exponential"]
    mean_s: Positive


class Lognormal(Strict):
    """Lognormal by its arithmetic mean and the sigma of the underlying normal (a shape, no unit)."""

    dist: Literal["lognormal"]
    mean_s: Positive
    sigma: Annotated[float, Field(gt=0, le=3)]

    @property
    def mu(self) -> float:
        return math.log(self.mean_s) - self.sigma**2 / 2


class Weibull(Strict):
    """Weibull by scale (eta, characteristic life) and shape (beta); beta > 1 means wear-out."""

    dist: Literal["weibull"]
    scale_s: Positive
    shape: Annotated[float, Field(gt=0, le=20)]

    @property
    def mean_s(self) -> float:
        return self.scale_s * math.gamma(1 + 1 / self.shape)


Distribution = Annotated[Union[Fixed, Exponential, Lognormal, Weibull], Field(discriminator="dist")]


class Failure(Strict):
    """One failure mode. ``tbf`` counts operating (busy) time only: a machine that is off does not wear."""

    name: Name
    tbf: Distribution
    ttr: Distribution


# --- power --------------------------------------------------------------------------------------


class PowerProfile(Strict):
    """Electric power drawn in each state, kW. STARVED and BLOCKED default to IDLE."""

    producing: NonNegative
    setup: NonNegative
    down: NonNegative
    idle: NonNegative
    starved: NonNegative | None = None
    blocked: NonNegative | None = None
    planned_stop: NonNegative
    no_shift: NonNegative

    def kw(self, state: State) -> float:
        value = getattr(self, state.name.lower(), None) if state != State.UNKNOWN else None
        if value is None and state in (State.STARVED, State.BLOCKED):
            return self.idle
        return 0.0 if value is None else value

    def as_list(self) -> list[float]:
        return [self.kw(s) for s in State]


# --- products and stations ------------------------------------------------------------------


class Product(Strict):
    name: Name
    mass_kg: Positive | None = None  # per unit; needed for CBAM-style tables
    share: Fraction = 1.0  # share of released orders (normalised over the line's products)


class Rework(Strict):
    rate: Fraction
    to: Name  # an earlier station on the same line


class Station(Strict):
    name: Name
    kind: str = "machine"
    machines: Annotated[int, Field(ge=1, le=64)] = 1  # identical machines in parallel
    cycle_time_s: dict[Name, Positive]  # ideal cycle time (ISO 22400 PRU) per product
    setup_s: NonNegative = 0.0  # changeover on product change
    scrap_rate: Fraction = 0.0
    rework: Rework | None = None
    failures: list[Failure] = []
    micro_stop: Failure | None = None  # short stops, booked as ADET like failures
    power_kw: PowerProfile
    buffer_after: Annotated[int, Field(ge=1, le=100_000)] = 10  # parts between this station and the next
    slowdown: Annotated[float, Field(ge=1.0, le=5.0)] = 1.0  # actual / ideal cycle time
    standby: Standby | None = None  # energy-saving standby after idle time (factory_models/policies.py)
    shift_off: list[ShiftOff] = []  # windows in which the station is switched off (NO_SHIFT)


class Release(Strict):
    """How work enters a line: batches of one product at a time, product drawn by share."""

    batch_size: Annotated[int, Field(ge=1)] = 100


class Line(Strict):
    name: Name
    stations: Annotated[list[Station], Field(min_length=1)]
    release: Release = Release()
    output_station: Name | None = None  # whose good output is the line's output (default: last)
    shift_off: list[ShiftOff] = []  # windows in which every station of the line is switched off

    @model_validator(mode="after")
    def _check_routing(self) -> "Line":
        names = [s.name for s in self.stations]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"station names must be unique within a line; repeated: {sorted(dup)}")
        for i, st in enumerate(self.stations):
            if st.rework is not None and st.rework.to not in names[: i + 1]:
                raise ValueError(
                    f"station {st.name!r}: rework.to must name this or an earlier station of line "
                    f"{self.name!r} ({', '.join(names[: i + 1])}), got {st.rework.to!r}"
                )
        if self.output_station is not None and self.output_station not in names:
            raise ValueError(f"output_station {self.output_station!r} is not a station of line {self.name!r}")
        return self

    @property
    def output(self) -> str:
        return self.output_station or self.stations[-1].name


# --- shift calendar ---------------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Break(Strict):
    start: time
    minutes: Annotated[float, Field(gt=0, le=240)]


class Shift(Strict):
    name: Name
    start: time
    end: time  # may be earlier than start: the shift runs past midnight
    breaks: list[Break] = []

    @model_validator(mode="after")
    def _breaks_inside(self) -> "Shift":
        for i, b in enumerate(self.breaks):
            offset = (b.start.hour * 3600 + b.start.minute * 60 - self.start.hour * 3600 - self.start.minute * 60) % 86400
            if offset + b.minutes * 60 > self.length_s:
                raise ValueError(
                    f"shift {self.name!r}: breaks[{i}] ({b.start.strftime('%H:%M')}, {b.minutes:g} min) does not lie "
                    f"inside the shift {self.start.strftime('%H:%M')}-{self.end.strftime('%H:%M')}"
                )
        return self

    @property
    def length_s(self) -> float:
        a = self.start.hour * 3600 + self.start.minute * 60
        b = self.end.hour * 3600 + self.end.minute * 60
        return (b - a) % 86400 or 86400


class Calendar(Strict):
    timezone: str = "UTC"
    workdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] = list(WEEKDAYS[:5])
    holidays: list[date] = []
    shifts: list[Shift] = []  # empty: the line runs around the clock, every day

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {v!r} (e.g. 'Asia/Shanghai', 'UTC')") from None
        return v


# --- site meters ------------------------------------------------------------------------------


class Simulation(Strict):
    start: datetime = datetime.fromisoformat("2026-01-05T00:00:00+00:00")  # a Monday
    warmup_s: NonNegative = 0.0  # simulated first and left out of simulate's KPIs (fills the buffers)

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        if v.tzinfo is None:
            raise ValueError("must carry a UTC offset, e.g. 2026-01-05T00:00:00+08:00")
        return v


class KpiSettings(Strict):
    """How counters read from the plant are interpreted.

    ``counter_rollover``: the modulus of counters that wrap, by signal name, e.g. ``{produced:
    65536}`` for a PLC's 16-bit part counter. A decrease of more than half the modulus is then a
    rollover (counted on); any other decrease is a reset (the counter restarted at 0).
    """

    counter_rollover: dict[Literal["produced", "good", "scrap", "rework", "energy_kwh"], Annotated[int, Field(ge=2)]] = {}


class LiveSettings(Strict):
    """Limits on a live run's sample times (``demo``, ``run``; ``replay`` reads history and keeps it).

    A sample stamped more than ``max_clock_skew_s`` ahead of its receive time (in the twin's clock)
    is rejected as ``clock_skew``; one older than ``max_sample_age_s`` as ``too_old``: a device
    whose clock jumped to 2001 or 2096 would otherwise write into another year's KPIs.
    """

    max_clock_skew_s: Positive = 300.0
    max_sample_age_s: Positive = 86400.0


class Site(Strict):
    name: Name
    country: str = "CN"
    grid_region: str | None = None  # e.g. "east" for China's East grid
    #: IANA zone of the site's clock hours and days (the emissions ledger, report periods); when
    #: not given, the calendar's zone (``Factory`` fills it in, so it is never None there)
    timezone: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        return v if v is None else Calendar._tz(v)
    #: a DOWN spell with less DOWN time than this is a micro-stop: in ADET, but no failure for MTBF/MTTR
    micro_stop_s: NonNegative = 120.0


class Factory(Strict):
    """One site: its lines, products, shift calendar and meters."""

    site: Site
    products: Annotated[list[Product], Field(min_length=1)]
    calendar: Calendar = Calendar()
    lines: Annotated[list[Line], Field(min_length=1)]
    meters: list[Meter] = []
    simulation: Simulation = Simulation()
    kpi: KpiSettings = KpiSettings()
    live: LiveSettings = LiveSettings()
    #: carbon accounting settings (factors, methods, certificates); validated by ``carbon`` itself,
    #: which this floor does not import. None: the defaults for the site's country and grid region.
    carbon: dict[str, Any] | None = None

    @model_validator(mode="before")
    @classmethod
    def _site_timezone(cls, data: Any) -> Any:
        """``site.timezone`` and ``calendar.timezone`` name one zone: either given fills the other."""
        if not isinstance(data, dict) or not isinstance(data.get("site"), (dict, Site)):
            return data
        site, cal = data["site"], data.get("calendar")
        site_tz = site.get("timezone") if isinstance(site, dict) else site.timezone
        cal_tz = cal.get("timezone") if isinstance(cal, dict) else getattr(cal, "timezone", None)
        if site_tz is not None and cal_tz is not None and site_tz != cal_tz:
            raise ValueError(f"site.timezone {site_tz!r} and calendar.timezone {cal_tz!r} differ; give one zone")
        data = dict(data)
        if site_tz is None:
            tz = cal_tz or "UTC"
            data["site"] = {**site, "timezone": tz} if isinstance(site, dict) else site.model_copy(update={"timezone": tz})
        elif cal_tz is None:
            if cal is None:
                data["calendar"] = {"timezone": site_tz}
            elif isinstance(cal, dict):
                data["calendar"] = {**cal, "timezone": site_tz}
            else:
                data["calendar"] = cal.model_copy(update={"timezone": site_tz})
        return data

    @model_validator(mode="after")
    def _check_references(self) -> "Factory":
        products = {p.name for p in self.products}
        lines = [ln.name for ln in self.lines]
        if len(set(lines)) != len(lines) or "site" in lines:
            raise ValueError(f"line names must be unique and not 'site'; got {lines}")
        meters = [m.name for m in self.meters]
        if len(set(meters)) != len(meters):
            raise ValueError(f"meter names must be unique; got {meters}")
        for ln in self.lines:
            for st in ln.stations:
                missing = products - set(st.cycle_time_s)
                unknown = set(st.cycle_time_s) - products
                if unknown:
                    raise ValueError(
                        f"line {ln.name!r} station {st.name!r}: cycle_time_s names unknown products "
                        f"{sorted(unknown)}; products are {sorted(products)}"
                    )
                if missing:
                    raise ValueError(
                        f"line {ln.name!r} station {st.name!r}: cycle_time_s lacks products {sorted(missing)}"
                    )
        return self

    def station_units(self) -> list[tuple[Line, Station, str]]:
        """Every machine as (line, station spec, unit name), in declaration order.

        A station with ``machines: n > 1`` is n machines in parallel, named ``<station>-1`` ..
        ``<station>-n``: each has its own PLC, its own state and its own KPIs.
        """
        out = []
        for ln in self.lines:
            for st in ln.stations:
                if st.machines == 1:
                    out.append((ln, st, st.name))
                else:
                    out.extend((ln, st, f"{st.name}-{i}") for i in range(1, st.machines + 1))
        return out

    def unit_names(self) -> list[str]:
        """The event log's unit index: ``line/station`` for each machine, then ``site/meter``."""
        return [f"{ln.name}/{u}" for ln, _, u in self.station_units()] + [f"site/{m.name}" for m in self.meters]

    def product_names(self) -> list[str]:
        return [p.name for p in self.products]
