"""The shift calendar as a function of simulation time: on shift, on a break, or off shift.

Rules (documented here because KPIs depend on them):
- A shift belongs to the local date it starts on: a Friday night shift 20:00-08:00 runs into
  Saturday morning even when Saturday is not a workday; a shift starting on a holiday or a
  non-workday is not worked.
- Shift and break times are local wall-clock times in ``calendar.timezone`` (zoneinfo), so a
  daylight-saving change moves them in UTC; a break lasts its minutes of real time.
- Overlapping shifts are merged; a break of one shift inside another shift's working time is on shift.
- No shifts at all means the line runs around the clock, every day (the schema's documented default),
  so workdays and holidays only apply to declared shifts.

Time is seconds since ``simulation.start``. The calendar is generated lazily in chunks of days, so a
live twin can run for months without building the whole year up front.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from factory_models.schema import WEEKDAYS, Calendar, Shift
from factory_models.states import State

ON, BREAK, OFF = 0, 1, 2
#: The state a station shows while the calendar keeps it from working.
PAUSE_STATE = {BREAK: State.PLANNED_STOP, OFF: State.NO_SHIFT}
_DAY = timedelta(days=1)


class ShiftCalendar:
    """Mode (``ON``, ``BREAK``, ``OFF``) at any simulation second, and time spent in each mode."""

    def __init__(self, calendar: Calendar, start: datetime, *, chunk_days: int = 14):
        self.tz = ZoneInfo(calendar.timezone)
        self.t0 = start.timestamp()
        self.always_on = not calendar.shifts
        self._shifts = calendar.shifts
        self._workdays = {WEEKDAYS.index(d) for d in calendar.workdays}
        self._holidays = set(calendar.holidays)
        self._chunk_s = chunk_days * 86400.0
        self._work: list[tuple[float, float]] = []
        self._breaks: list[tuple[float, float]] = []
        # the day before the start: its overnight shift may still be running at time 0
        self._next_date = start.astimezone(self.tz).date() - _DAY
        self.horizon = math.inf if self.always_on else -math.inf
        self.bounds: list[float] = [-math.inf, math.inf]
        self.modes: list[int] = [ON if self.always_on else OFF]
        self._i = 0
        if not self.always_on:
            self._extend(0.0)

    def _midnight_s(self, day) -> float:
        return datetime.combine(day, datetime.min.time(), tzinfo=self.tz).timestamp() - self.t0

    def _add_day(self, day) -> None:
        if day.weekday() not in self._workdays or day in self._holidays:
            return
        for sh in self._shifts:
            a = datetime.combine(day, sh.start, tzinfo=self.tz).timestamp() - self.t0
            end_day = day if sh.end > sh.start else day + _DAY
            b = datetime.combine(end_day, sh.end, tzinfo=self.tz).timestamp() - self.t0
            cuts = []
            for br in sh.breaks:
                br_day = day if br.start >= sh.start else day + _DAY
                ba = datetime.combine(br_day, br.start, tzinfo=self.tz).timestamp() - self.t0
                bb = ba + br.minutes * 60.0
                if ba < a or bb > b:
                    raise ValueError(
                        f"shift {sh.name!r}: break at {br.start.isoformat('minutes')} for {br.minutes:g} min "
                        f"does not lie within the shift {sh.start.isoformat('minutes')}-{sh.end.isoformat('minutes')}"
                    )
                cuts.append((ba, bb))
                self._breaks.append((ba, bb))
            cursor = a
            for ba, bb in sorted(cuts):
                if ba > cursor:
                    self._work.append((cursor, ba))
                cursor = max(cursor, bb)
            if b > cursor:
                self._work.append((cursor, b))

    def _extend(self, t: float) -> None:
        """Generate days until the horizon lies at least one chunk beyond ``t``, then re-segment."""
        target = t + self._chunk_s
        while self.horizon <= target:
            self._add_day(self._next_date)
            self._next_date += _DAY
            # shifts of dates not yet generated start at or after this local midnight
            self.horizon = self._midnight_s(self._next_date)
        events = [(a, 0, 1) for a, _ in self._work] + [(b, 0, -1) for _, b in self._work]
        events += [(a, 1, 1) for a, _ in self._breaks] + [(b, 1, -1) for _, b in self._breaks]
        events.sort()
        counts = [0, 0]
        bounds, modes = [-math.inf], [OFF]
        i = 0
        while i < len(events):
            t_ev = events[i][0]
            while i < len(events) and events[i][0] == t_ev:
                counts[events[i][1]] += events[i][2]
                i += 1
            if t_ev >= self.horizon:
                break
            mode = ON if counts[0] > 0 else BREAK if counts[1] > 0 else OFF
            if mode != modes[-1]:
                bounds.append(t_ev)
                modes.append(mode)
        bounds.append(self.horizon)
        self.bounds, self.modes = bounds, modes
        self._i = 0

    def at(self, t: float) -> tuple[int, float]:
        """The mode at simulation second ``t`` and the second at which it may next change.

        The second value can be the end of the generated horizon rather than a real change; asking
        again at that time extends the calendar. Amortised O(1) for non-decreasing ``t``.
        """
        b = self.bounds
        i = self._i
        if t < b[i]:
            i = bisect_right(b, t) - 1
        while t >= b[i + 1]:
            if i + 2 == len(b):
                self._extend(t)
                b = self.bounds
                i = bisect_right(b, t) - 1
                continue
            i += 1
        self._i = i
        return self.modes[i], b[i + 1]

    def seconds_by_mode(self, a: float, b: float) -> list[float]:
        """Seconds of ``[a, b)`` spent ON, on a BREAK and OFF (indexable by those constants)."""
        out = [0.0, 0.0, 0.0]
        if b <= a:
            return out
        mode, _ = self.at(b)  # also makes sure the generated horizon reaches b
        bounds, modes = self.bounds, self.modes
        if bounds[self._i] <= a:  # the common case: [a, b) lies within one segment
            out[mode] = b - a
            return out
        i = bisect_right(bounds, a) - 1
        while a < b:
            end = min(bounds[i + 1], b)
            out[modes[i]] += end - a
            a = end
            i += 1
        return out


class SwitchedOffCalendar:
    """A station's own view of the site calendar: OFF inside its ``shift_off`` windows, else the site's.

    The windows are generated as the shifts of a calendar of their own (same zone, their days), so
    they follow local time and daylight saving as shifts do. Only ``at`` is needed: the site meters
    keep reading the site calendar.
    """

    def __init__(self, site: ShiftCalendar, calendar: Calendar, windows, start: datetime):
        self.site = site
        self.always_on = False
        # one pseudo-calendar per window: each has its own days
        self._off = [ShiftCalendar(Calendar(timezone=calendar.timezone, workdays=list(w.days),
                                            shifts=[Shift(name="off", start=w.start, end=w.end)]), start)
                     for w in windows]

    def at(self, t: float) -> tuple[int, float]:
        mode, change = self.site.at(t)
        off_until = None
        for cal in self._off:
            in_window, edge = cal.at(t)
            if in_window == ON:
                off_until = edge if off_until is None else max(off_until, edge)
            elif edge < change:
                change = edge
        if off_until is not None:
            # overlapping windows: the latest end found; asking again there finds any window still on
            return OFF, off_until
        return mode, change
