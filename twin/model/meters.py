"""Site meters: grid import, rooftop PV, natural gas and compressed air, read as cumulative counters.

Every reading integrates its interval exactly: calendar-dependent rates are split at shift and
break boundaries (on shift = inside a shift, breaks included: lights, heating and compressors keep
running through a break), station energy is exact (constant power per state), and PV is integrated
analytically over a half-sine clear-sky day, hour by hour with a seeded cloud factor.

Grid import = stations + base load + compressor electric input - PV self-consumption, netted per
meter interval (what an import register with that interval would show; surplus PV is exported and
counted by a ``grid_export`` meter if there is one). Station and compressor loads and all PV are booked on the first grid meter; further
grid meters carry only their own base load.
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from factory_models.schema import AirMeter, ExportMeter, Factory, GasMeter, GridMeter, PvMeter
from twin.kpi.eventlog import Channel

from twin.model.calendar import OFF, ON, BREAK, ShiftCalendar
from twin.model.distributions import stream
from twin.model.recorder import Recorder

ENERGY, VOLUME = int(Channel.ENERGY_KWH), int(Channel.VOLUME)


def pv_clear_sky_kw(peak_kw: float, sunrise_h: float, sunset_h: float, hour: float) -> float:
    """Clear-sky AC power at local solar ``hour``: ``peak_kw * sin(pi * (h - sunrise) / day length)``.

    A half-sine is the usual first-order shape of a fixed panel's daily output on a clear day (it
    tracks the cosine of the solar zenith angle over the day); it is not a substitute for a
    plane-of-array model (e.g. pvlib) when real irradiance matters.
    """
    if hour <= sunrise_h or hour >= sunset_h:
        return 0.0
    return peak_kw * math.sin(math.pi * (hour - sunrise_h) / (sunset_h - sunrise_h))


def pv_clear_sky_kwh(peak_kw: float, sunrise_h: float, sunset_h: float, hour_a: float, hour_b: float) -> float:
    """Clear-sky energy between local solar hours ``hour_a`` and ``hour_b`` (same day): the exact
    integral of :func:`pv_clear_sky_kw`, in kWh."""
    a, b = max(hour_a, sunrise_h), min(hour_b, sunset_h)
    if b <= a:
        return 0.0
    day_h = sunset_h - sunrise_h
    return peak_kw * day_h / math.pi * (math.cos(math.pi * (a - sunrise_h) / day_h)
                                        - math.cos(math.pi * (b - sunrise_h) / day_h))


def compressed_air_m3(compressor_kw: float, specific_power_kw_per_m3_min: float, load_s: float) -> float:
    """Free air delivered by a compressor running ``load_s`` full-load-equivalent seconds, m3.

    Specific power (kW per m3/min of free air delivery) is the figure compressor datasheets give
    (ISO 1217 annex C/E test); ~6-7 kW/(m3/min) is typical of oil-injected screw compressors at 7 bar.
    """
    return compressor_kw / specific_power_kw_per_m3_min * load_s / 60.0


class _Pv:
    """One PV meter's cloud factors: one seeded clearness draw per local clock hour, in hour order."""

    def __init__(self, meter: PvMeter, rng, tz: ZoneInfo):
        self.meter, self.rng, self.tz = meter, rng, tz
        self.factors: dict[tuple, float] = {}
        self._hour: tuple[float, float, float, tuple] | None = None  # (epoch from, epoch to, local h, key)

    def clearness(self, key: tuple) -> float:
        f = self.factors.get(key)
        if f is None:
            c = self.meter.cloudiness
            # Beta with mean 1 - cloudiness (concentration 4: hours range from overcast to clear)
            f = 1.0 if c == 0.0 else 0.0 if c == 1.0 else self.rng.betavariate(4.0 * (1.0 - c), 4.0 * c)
            self.factors[key] = f
        return f

    def _local_hour(self, t: float) -> tuple[float, float, float, tuple]:
        """The local clock hour containing epoch ``t``: (its start, its end in epoch s, hour of day, key).

        Cached: meters read every minute, the zone lookup is needed once an hour.
        """
        h = self._hour
        if h is not None and h[0] <= t < h[1]:
            return h
        local = datetime.fromtimestamp(t, self.tz)
        into = local.minute * 60 + local.second + local.microsecond / 1e6
        self._hour = h = (t - into, t - into + 3600.0, float(local.hour), (local.date(), local.hour))
        return h

    def kwh(self, a: float, b: float) -> float:
        """PV energy between epoch seconds a and b (local clock hours used as solar hours)."""
        m, out = self.meter, 0.0
        h = self._hour
        if h is not None and h[0] <= a < b <= h[1]:
            # the common case, one meter interval inside the cached hour: the loop below, once
            start, _, hour, key = h
            f = self.factors[key]
            if hour + 1.0 <= m.sunrise_h or hour >= m.sunset_h or f <= 0.0:
                return out  # no sun this hour: the loop would add nothing
            return out + f * pv_clear_sky_kwh(m.peak_kw, m.sunrise_h, m.sunset_h,
                                              hour + (a - start) / 3600.0, hour + (b - start) / 3600.0)
        while a < b:
            start, end, hour, key = self._local_hour(a)
            piece_end = min(b, end)
            f = self.clearness(key)
            if f > 0.0:
                out += f * pv_clear_sky_kwh(m.peak_kw, m.sunrise_h, m.sunset_h,
                                            hour + (a - start) / 3600.0, hour + (piece_end - start) / 3600.0)
            a = piece_end
        return out

    def kw(self, t: float) -> float:
        start, _, hour, key = self._local_hour(t)
        m = self.meter
        return self.clearness(key) * pv_clear_sky_kw(m.peak_kw, m.sunrise_h, m.sunset_h, hour + (t - start) / 3600.0)


class SiteMeters:
    """Reads every site meter over ``[last reading, now]`` and writes its cumulative counter."""

    def __init__(self, factory: Factory, calendar: ShiftCalendar, recorder: Recorder, seed: int,
                 first_unit: int, power_gauges: bool = False):
        self.cal, self.rec, self.power_gauges = calendar, recorder, power_gauges
        tz = ZoneInfo(factory.calendar.timezone)
        self.meters = list(factory.meters)
        self.units = list(range(first_unit, first_unit + len(self.meters)))
        self.total = [0.0] * len(self.meters)  # cumulative kWh, Nm3 or m3
        self.pv = {i: _Pv(m, stream(seed, f"site/{m.name}"), tz) for i, m in enumerate(self.meters)
                   if isinstance(m, PvMeter)}
        self.grids = [(i, m) for i, m in enumerate(self.meters) if isinstance(m, GridMeter)]
        self.main_grid = self.grids[0][0] if self.grids else None
        self.airs = [(i, m) for i, m in enumerate(self.meters) if isinstance(m, AirMeter)]
        self.gases = [(i, m) for i, m in enumerate(self.meters) if isinstance(m, GasMeter)]
        self.exports = [i for i, m in enumerate(self.meters) if isinstance(m, ExportMeter)]
        self.channels = [self.channel(i) for i in range(len(self.meters))]
        # plain floats per meter for read(), which runs every meter interval (pydantic attribute
        # reads were most of its cost); the same operands in the same order, so the same sums
        self._pvs = list(self.pv.items())
        self._air = [(i, m.on_shift_load, m.off_shift_load, m.compressor_kw,
                      m.compressor_kw / m.specific_power_kw_per_m3_min) for i, m in self.airs]
        self._gas = [(i, m.on_shift_nm3_per_h, m.off_shift_nm3_per_h) for i, m in self.gases]
        self._grid = [(i, m.base_load.on_shift_kw, m.base_load.off_shift_kw) for i, m in self.grids]
        self.t_last = 0.0
        self.station_kws_last = 0.0

    def channel(self, i: int) -> int:
        return ENERGY if isinstance(self.meters[i], (GridMeter, PvMeter, ExportMeter)) else VOLUME

    def initial_readings(self) -> None:
        for i, u in enumerate(self.units):
            self.rec.count(self.rec.t0 + self.t_last, u, self.channels[i], 0.0)

    def read(self, now: float) -> None:
        a, b = self.t_last, now
        if b <= a:
            return
        t0 = self.rec.t0
        by_mode = self.cal.seconds_by_mode(a, b)
        on_s, off_s = by_mode[ON] + by_mode[BREAK], by_mode[OFF]
        station_kws = self.rec.station_kws(b)
        load_kwh = (station_kws - self.station_kws_last) / 3600.0
        delta = [0.0] * len(self.total)
        pv_kwh = 0.0
        for i, pv in self._pvs:
            delta[i] = kwh = pv.kwh(t0 + a, t0 + b)
            pv_kwh += kwh
        for i, on_load, off_load, kw, kw_per_flow in self._air:
            load_s = on_s * on_load + off_s * off_load
            delta[i] = kw_per_flow * load_s / 60.0  # compressed_air_m3, its operands in its order
            load_kwh += kw * load_s / 3600.0
        for i, on_rate, off_rate in self._gas:
            delta[i] = (on_rate * on_s + off_rate * off_s) / 3600.0
        surplus = max(pv_kwh - load_kwh, 0.0)
        for i, on_kw, off_kw in self._grid:
            delta[i] = (on_kw * on_s + off_kw * off_s) / 3600.0
            if i == self.main_grid:
                surplus = max(pv_kwh - delta[i] - load_kwh, 0.0)  # what the export register counts
                delta[i] = max(delta[i] + load_kwh - pv_kwh, 0.0)
        for i in self.exports:  # the first export meter sees the surplus (one connection point)
            delta[i] = surplus if i == self.exports[0] else 0.0
        t = t0 + b
        count, total, channels = self.rec.count, self.total, self.channels
        for i, u in enumerate(self.units):
            total[i] += delta[i]
            count(t, u, channels[i], total[i])
        if self.power_gauges:
            self._gauges(b)
        self.t_last, self.station_kws_last = b, station_kws

    def _gauges(self, now: float) -> None:
        """Instantaneous power of the grid and PV meters at ``now`` (kW), for dashboards and PLC feeds."""
        mode, _ = self.cal.at(now)
        on = mode != OFF
        t = self.rec.t0 + now
        pv_kw = {i: p.kw(t) for i, p in self.pv.items()}
        air_kw = sum(m.compressor_kw * (m.on_shift_load if on else m.off_shift_load) for _, m in self.airs)
        for i, kw in pv_kw.items():
            self.rec.power(t, self.units[i], kw)
        for i, m in self.grids:
            kw = m.base_load.on_shift_kw if on else m.base_load.off_shift_kw
            if i == self.main_grid:
                kw = max(kw + self.rec.station_kw + air_kw - sum(pv_kw.values()), 0.0)
            self.rec.power(t, self.units[i], kw)
