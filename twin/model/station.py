"""One machine of a station, as a SimPy process: take a part, set up, process, inspect, pass it on.

Rules this model follows (each one shapes the KPIs, so they are stated here):

- Time between failures counts busy time only (processing and setup, ISO 22400 AUPT): each failure
  mode keeps an odometer target, so a machine that is starved, blocked or off does not wear. Each
  mode (and the micro-stop, booked as ADET like a failure) draws its next TBF when it fires.
  Because a machine's failure clock only runs while it works, the machine schedules its own next
  failure inside its work segments instead of being interrupted by a separate failure process; the
  outcome is the same as an interrupt and costs no extra events. ``force_down`` from outside (the live
  demo, scenarios) is a real ``simpy.Interrupt``.
- Processing, setup and repair only progress on shift. When a break or the end of a shift comes, a
  part in process is paused (state PLANNED_STOP or NO_SHIFT) and finished in the next working time;
  a repair likewise waits for the next shift, so DOWN time never lies outside planned busy time.
- A machine waiting for a part (STARVED) or for space (BLOCKED) shows PLANNED_STOP / NO_SHIFT instead
  while the calendar says so; the factory's calendar watcher flips those states at the boundaries.
- Actual cycle time = ideal cycle time x ``slowdown``. A product change costs ``setup_s`` of SETUP;
  the product in process is recorded when it changes.
- One uniform draw per finished part decides scrap (part leaves the line), rework (part goes to the
  rework lane of the ``rework.to`` station's input buffer) or good (part goes downstream).
- Every state change writes the state and the machine's cumulative ENERGY_KWH (exact: power is
  constant within a state); every finished part writes PRODUCED and one of GOOD, SCRAP or REWORK.
- A station with ``standby:`` is a ``StandbyMachine`` (twin/model/standby.py); one with ``shift_off``
  windows (its own or its line's) reads a calendar that is OFF inside them (docs/model-energy-policies.md).
"""

from __future__ import annotations

import math
import random
from typing import Callable

import simpy
from simpy.events import PENDING, Timeout

from factory_models.schema import Station
from factory_models.states import State
from twin.kpi.eventlog import N_CHANNELS, Channel

from twin.model.buffer import Buffer
from twin.model.calendar import ON, PAUSE_STATE, ShiftCalendar
from twin.model.distributions import sampler_s
from twin.model.recorder import Recorder

PRODUCING, SETUP, DOWN = int(State.PRODUCING), int(State.SETUP), int(State.DOWN)
STARVED, BLOCKED = int(State.STARVED), int(State.BLOCKED)
PRODUCED, GOOD, SCRAP, REWORK, ENERGY = (int(Channel.PRODUCED), int(Channel.GOOD), int(Channel.SCRAP),
                                         int(Channel.REWORK), int(Channel.ENERGY_KWH))


class Flow:
    """Parts in and out of one line: released = shipped + scrapped + work in progress."""

    def __init__(self) -> None:
        self.released = 0
        self.shipped = 0  # good parts that left the last station
        self.scrapped = 0


class Machine:
    """One machine (a unit with its own state, counters and PLC); ``machines: n`` gives n of these."""

    def __init__(self, env: simpy.Environment, calendar: ShiftCalendar, recorder: Recorder, spec: Station,
                 unit: int, products: list[str], first_product: int, inbuf: Buffer, outbuf: Buffer | None,
                 rework_buf: Buffer | None, rng: random.Random, flow: Flow):
        self.env, self.cal, self.rec, self.spec, self.unit, self.flow = env, calendar, recorder, spec, unit, flow
        self.t0 = recorder.t0  # epoch seconds of simulation time 0
        self.inbuf, self.outbuf, self.rework_buf, self.rng = inbuf, outbuf, rework_buf, rng
        self.cycle_s = [spec.cycle_time_s[p] * spec.slowdown for p in products]
        self.setup_s = spec.setup_s
        self.scrap_rate = spec.scrap_rate
        self.scrap_or_rework = spec.scrap_rate + (spec.rework.rate if spec.rework else 0.0)
        if self.scrap_or_rework > 1.0:
            raise ValueError(f"station {spec.name!r}: scrap_rate + rework.rate = {self.scrap_or_rework:g} exceeds 1")
        self.kw_by_state = spec.power_kw.as_list()
        modes = spec.failures + ([spec.micro_stop] if spec.micro_stop else [])
        self.tbf: list[Callable[[], float]] = [sampler_s(f.tbf, rng) for f in modes]
        self.ttr: list[Callable[[], float]] = [sampler_s(f.ttr, rng) for f in modes]
        self.odo = 0.0  # busy seconds so far
        self.fail_at = [draw() for draw in self.tbf]  # odometer reading of each mode's next failure
        self.fail_odo = min(self.fail_at, default=math.inf)
        self.produced = self.good = self.scrap = self.rework = 0
        self.failures = 0
        self.holding = False  # a part is inside the machine (being worked on or waiting to leave)
        self.asleep = False  # in standby (twin/model/standby.py)
        self.waiting: int | None = None  # the state shown while waiting on a buffer, else None
        self.product = first_product
        mode, _ = calendar.at(env.now)
        self.state = STARVED if mode == ON else int(PAUSE_STATE[mode])
        self.kw = self.kw_by_state[self.state]
        self.t_state = env.now
        self.energy_kws = 0.0
        recorder.step_power(env.now, self.kw)
        # bound once: show() runs at every state change
        self._step_power, self._log_state, self._log_count = recorder.step_power, recorder.state, recorder.count
        self._columns = recorder.columns()
        self._energy_key = unit * N_CHANNELS + ENERGY
        self.proc: simpy.Process | None = None

    def initial_readings(self) -> None:
        """State, product and zeroed counters at time 0, so every series starts at the run's start."""
        t, rec, u = self.t0 + self.env.now, self.rec, self.unit
        rec.state(t, u, self.state)
        rec.product(t, u, self.product)
        for channel in (PRODUCED, GOOD, SCRAP, REWORK, ENERGY):
            rec.count(t, u, channel, 0.0)

    def start(self) -> None:
        self.proc = self.env.process(self.run())

    # --- state and energy ---------------------------------------------------------------------

    # The hot paths below read ``env._now`` (SimPy's clock slot, what its ``now`` property returns):
    # a property call less per state change and per part, a few percent of a batch run.

    def show(self, code: int) -> None:
        """Enter state ``code``: book the energy of the state being left, log the change."""
        if code == self.state:
            return
        now = self.env._now
        kw = self.kw_by_state[code]
        old = self.kw
        self.energy_kws += old * (now - self.t_state)
        if kw != old:  # Recorder.step_power, inline: the site's station power and its integral
            rec = self.rec
            rec._station_kws += rec.station_kw * (now - rec._t_kw)
            rec._t_kw = now
            rec.station_kw += kw - old
        self.state, self.kw, self.t_state = code, kw, now
        t = self.t0 + now
        if self._columns is None:
            self._log_state(t, self.unit, code)
            self._log_count(t, self.unit, ENERGY, self.energy_kws / 3600.0)
        else:  # log.state and log.count, inline
            state_t, state_unit, state_code, count_t, count_key, count_value = self._columns
            state_t(t)
            state_unit(self.unit)
            state_code(code)
            count_t(t)
            count_key(self._energy_key)
            count_value(self.energy_kws / 3600.0)

    def show_waiting(self) -> None:
        """Show the waiting reason, or the calendar's pause state when off shift or on a break."""
        mode, _ = self.cal.at(self.env.now)
        self.show(self.waiting if mode == ON else int(PAUSE_STATE[mode]))

    def flush(self) -> None:
        """Write the cumulative energy at the current time without a state change (end of a run)."""
        now = self.env.now
        self.energy_kws += self.kw * (now - self.t_state)
        self.t_state = now
        self.rec.count(self.t0 + now, self.unit, ENERGY, self.energy_kws / 3600.0)

    # --- the process ------------------------------------------------------------------------

    def run(self):
        env, cal, t0, u, flow, rng = self.env, self.cal, self.t0, self.unit, self.flow, self.rng
        log_count, log_product = self.rec.count, self.rec.product
        columns = self._columns
        if columns is not None:  # the counters each part writes go straight into the log's columns
            _, _, _, count_t, count_key, count_value = columns
        k_produced, k_good = u * N_CHANNELS + PRODUCED, u * N_CHANNELS + GOOD
        inbuf, outbuf, rework_buf = self.inbuf, self.outbuf, self.rework_buf
        cycle_s, setup_s, scrap_rate, scrap_or_rework = self.cycle_s, self.setup_s, self.scrap_rate, self.scrap_or_rework
        # the calendar segment last looked up: (mode, end) holds for any time in [lookup, end)
        seg_mode, seg_end = ON, -math.inf
        while True:
            get = inbuf.get()
            # an available part is taken at once: no need to suspend on an already triggered event
            part = get._value  # (SimPy's slot: a property call less per part)
            if part is PENDING:
                # the common wait inline (a generator per wait was a tenth of the run time)
                self.waiting = STARVED
                now = env._now
                if now >= seg_end:
                    seg_mode, seg_end = cal.at(now)
                self.show(STARVED if seg_mode == ON else int(PAUSE_STATE[seg_mode]))
                try:
                    part = yield get
                except simpy.Interrupt as irq:
                    part = yield from self._wait_on(get, STARVED, irq)
                self.waiting = None
            self.holding = True
            if self.asleep:  # only a StandbyMachine dozes off: the part waits for it to wake up
                yield from self.wake()
            if part != self.product:
                self.product = part
                log_product(t0 + env.now, u, part)
                if setup_s > 0.0:
                    yield from self._hold(setup_s, SETUP)
            # Fast path, the common case: the whole cycle fits in the current working segment and no
            # failure is due. It does exactly what _hold would, without a nested generator.
            cycle = cycle_s[part]
            now = env._now
            if now >= seg_end:
                seg_mode, seg_end = cal.at(now)
            if seg_mode == ON and now + cycle <= seg_end and self.odo + cycle < self.fail_odo:
                if self.state != PRODUCING:
                    self.show(PRODUCING)
                try:
                    yield Timeout(env, cycle)  # env.timeout without its bound-class step
                    self.odo += cycle
                except simpy.Interrupt as irq:
                    done = env.now - now
                    self.odo += done
                    yield from self._hold(float(irq.cause), DOWN)
                    yield from self._hold(cycle - done, PRODUCING)
            else:
                yield from self._hold(cycle, PRODUCING)
            t = t0 + env._now
            self.produced += 1
            if columns is None:
                log_count(t, u, PRODUCED, self.produced)
            else:
                count_t(t)
                count_key(k_produced)
                count_value(self.produced)
            if scrap_or_rework > 0.0:
                draw = rng.random()
                if draw < scrap_or_rework:
                    self.holding = False
                    if draw < scrap_rate:
                        self.scrap += 1
                        flow.scrapped += 1
                        log_count(t, u, SCRAP, self.scrap)
                    else:
                        self.rework += 1
                        log_count(t, u, REWORK, self.rework)
                        rework_buf.put_rework(part)
                    continue
            self.good += 1
            if columns is None:
                log_count(t, u, GOOD, self.good)
            else:
                count_t(t)
                count_key(k_good)
                count_value(self.good)
            if outbuf is None:
                flow.shipped += 1
            else:
                put = outbuf.put(part)
                if put._value is PENDING:
                    self.waiting = BLOCKED
                    now = env._now
                    if now >= seg_end:
                        seg_mode, seg_end = cal.at(now)
                    self.show(BLOCKED if seg_mode == ON else int(PAUSE_STATE[seg_mode]))
                    try:
                        yield put
                    except simpy.Interrupt as irq:
                        yield from self._wait_on(put, BLOCKED, irq)
                    self.waiting = None
            self.holding = False

    def _wait_on(self, event: simpy.Event, reason: int, irq: simpy.Interrupt):
        """Forced down while waiting for a buffer event (a part, or space), showing ``reason``: the
        request stays queued and may be served meanwhile. Returns the event's value."""
        while True:
            self.waiting = None
            yield from self._hold(float(irq.cause), DOWN)
            if not event.triggered:
                self.waiting = reason
                self.show_waiting()
            try:
                value = yield event
                break
            except simpy.Interrupt as again:
                irq = again
        self.waiting = None
        return value

    def _hold(self, remaining: float, state: int):
        """Spend ``remaining`` working seconds in ``state`` (PRODUCING, SETUP or DOWN).

        Time only counts on shift; off shift and on breaks the machine pauses. While PRODUCING or
        SETUP the busy odometer runs and a due failure splits the segment with a repair.
        """
        env, cal = self.env, self.cal
        wears = state != DOWN
        while remaining > 0.0:
            now = env.now
            mode, change = cal.at(now)
            fail = False
            if mode != ON:
                self.show(int(PAUSE_STATE[mode]))
                wait = change - now
            else:
                self.show(state)
                wait = change - now
                if remaining < wait:
                    wait = remaining
                if wears and self.fail_odo - self.odo < wait:
                    wait = max(self.fail_odo - self.odo, 0.0)  # rounding after an interrupt can overshoot
                    fail = True
            try:
                yield Timeout(env, wait)
            except simpy.Interrupt as irq:
                if mode == ON:
                    done = env.now - now
                    remaining -= done
                    if wears:
                        self.odo += done
                if state == DOWN:
                    remaining += float(irq.cause)  # forced down while down: the stop gets longer
                else:
                    yield from self._hold(float(irq.cause), DOWN)
                continue
            if mode == ON:
                remaining = 0.0 if wait >= remaining else remaining - wait
                if wears:
                    self.odo += wait
                    if fail:
                        yield from self._fail()

    def _fail(self):
        """The failure mode whose odometer target was reached fires: draw its repair and next TBF."""
        i = self.fail_at.index(self.fail_odo)
        self.failures += 1
        repair_s = self.ttr[i]()
        self.fail_at[i] = self.odo + self.tbf[i]()
        self.fail_odo = min(self.fail_at)
        yield from self._hold(repair_s, DOWN)
