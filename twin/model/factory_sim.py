"""The offline twin: a SimPy model of a whole factory, recording into a columnar EventLog.

Simulation time 0 is ``factory.simulation.start``; the log is stamped in epoch seconds (UTC).
Same factory and seed give an identical log: every random draw comes from a per-component stream
derived from the seed (see ``distributions.stream``), and SimPy orders simultaneous events by
insertion, which is deterministic.
"""

from __future__ import annotations

import simpy
from simpy.events import Timeout

from factory_models.schema import Factory
from factory_models.states import State
from twin.kpi.eventlog import EventLog, FrozenLog

from twin.model.calendar import ON, PAUSE_STATE, ShiftCalendar
from twin.model.line import LineModel
from twin.model.meters import SiteMeters
from twin.model.recorder import CallbackRecorder, OnEvent, Recorder
from twin.model.station import Machine


class FactorySim:
    """A steppable factory model: build once, ``run(until_s)`` as often as needed.

    ``env`` may be a ``simpy.rt.RealtimeEnvironment`` (initial time 0) for the live demo; then
    ``run`` follows the wall clock, or the caller steps the environment itself and calls ``flush``.
    ``on_event(kind, unit, t, value)`` receives every reading as it is logged (see ``recorder``).

    ``retain_s`` bounds the log of a model that runs for ever (the live demo's ground truth): at each
    ``flush`` rows older than ``retain_s`` before now are forgotten, keeping every key's last row
    before that horizon (``EventLog.forget_before``), so KPIs of any span from ``retained_from`` on
    are those of the whole log. None (``simulate``): the log keeps everything.
    """

    def __init__(self, factory: Factory, seed: int = 0, *, meter_interval_s: float = 60.0,
                 on_event: OnEvent | None = None, power_gauges: bool = False,
                 env: simpy.Environment | None = None, retain_s: float | None = None):
        if meter_interval_s <= 0:
            raise ValueError(f"meter_interval_s must be > 0 seconds, got {meter_interval_s!r}")
        if retain_s is not None and not retain_s > 0:
            raise ValueError(f"retain_s must be > 0 seconds or None, got {retain_s!r}")
        self.factory, self.seed = factory, seed
        self.env = env if env is not None else simpy.Environment()
        if self.env.now != 0:
            raise ValueError(f"the environment must start at time 0 (= simulation.start), not {self.env.now}")
        self.t0 = factory.simulation.start.timestamp()
        units = factory.unit_names()
        n_stations = len(factory.station_units())
        self.log = EventLog(units=units, n_stations=n_stations, products=factory.product_names(),
                            t_start=self.t0, t_end=self.t0, incremental=retain_s is not None)
        self.retain_s = retain_s
        self.retained_from = self.t0  # epoch seconds: the log is complete from here on
        self.recorder = (Recorder(self.log, self.t0) if on_event is None
                         else CallbackRecorder(self.log, self.t0, on_event))
        self.calendar = ShiftCalendar(factory.calendar, factory.simulation.start)
        self.lines: list[LineModel] = []
        for line in factory.lines:
            first = sum(len(lm.machines) for lm in self.lines)
            self.lines.append(LineModel(self.env, factory, line, first, self.calendar, self.recorder, seed))
        self.machines: list[Machine] = [m for lm in self.lines for m in lm.machines]
        assert len(self.machines) == n_stations  # unit index = position in factory.unit_names()
        self._unit_index = {name: i for i, name in enumerate(units)}
        self.meters = SiteMeters(factory, self.calendar, self.recorder, seed, n_stations, power_gauges)
        self.meter_interval_s = float(meter_interval_s)

        for m in self.machines:
            m.initial_readings()
        self.meters.initial_readings()
        for lm in self.lines:
            lm.start(self.env)
        # one watcher per calendar: the site's, and each station's own with shift_off windows
        watched: dict[int, tuple] = {}
        for m in self.machines:
            watched.setdefault(id(m.cal), (m.cal, []))[1].append(m)
        for cal, machines in watched.values():
            if not cal.always_on:
                self.env.process(self._watch_calendar(cal, machines))
        if self.meters.meters:
            self.env.process(self._read_meters())

    # --- processes ------------------------------------------------------------------------------

    def _watch_calendar(self, cal, machines: list[Machine]):
        """At each boundary of ``cal``, show its state on those of ``machines`` that are waiting."""
        env = self.env
        while True:
            _, change = cal.at(env.now)
            yield env.timeout(change - env.now)
            mode, _ = cal.at(env.now)
            shown = None if mode == ON else int(PAUSE_STATE[mode])
            for m in machines:
                if m.waiting is not None:
                    m.show(m.waiting if shown is None else shown)

    def _read_meters(self):
        env, step = self.env, self.meter_interval_s
        k = 0
        while True:
            k += 1
            # multiples of the interval from time 0, so readings stay aligned however long the run
            yield Timeout(env, k * step - env.now)
            self.meters.read(env.now)

    # --- control ------------------------------------------------------------------------------

    def run(self, until_s: float) -> EventLog:
        """Advance to simulation second ``until_s`` and close the readings there (see ``flush``)."""
        if until_s < self.env.now:
            raise ValueError(f"cannot run back in time: now {self.env.now} s, until {until_s} s")
        self.env.run(until=until_s)
        self.flush()
        return self.log

    def flush(self) -> None:
        """Write every machine's energy and every meter at the current time, and set ``log.t_end``.

        The energy of a state is otherwise only written when the state ends; closing readings make
        the log complete up to ``now``. Extra readings of cumulative counters change no KPI.
        """
        for m in self.machines:
            m.flush()
        self.meters.read(self.env.now)
        self.log.t_end = self.t0 + self.env.now
        # forget in steps of 5 % of the span, so the merge and cut cost little per row kept
        if self.retain_s is not None and self.log.t_end - self.retained_from > self.retain_s * 1.05:
            self.forget_before(self.log.t_end - self.retain_s)

    def forget_before(self, horizon: float) -> int:
        """Forget the log's rows older than ``horizon`` (epoch seconds), keeping each key's last row
        before it; returns how many were forgotten. Needs ``retain_s`` (an incremental log)."""
        if not self.log.incremental:
            raise ValueError("forget_before needs a FactorySim built with retain_s")
        if horizon <= self.retained_from:
            return 0
        dropped = self.log.forget_before(horizon)
        self.retained_from = horizon
        return dropped

    def truth(self, t0: float, t1: float | None = None) -> FrozenLog:
        """The ground truth over [t0, t1] (epoch seconds; t1 defaults to now) as a frozen log for the
        KPI core. Raises ValueError when rows before ``t0`` were already forgotten."""
        if t0 < self.retained_from:
            raise ValueError(f"the ground truth is kept from {self.retained_from} on, not from {t0}")
        frozen = self.log.freeze()
        frozen.t_start, frozen.t_end = t0, self.log.t_end if t1 is None else t1
        return frozen

    def unit(self, unit: int | str) -> int:
        """A unit's index from its index or its name in ``factory.unit_names()`` (``line/station-k``)."""
        if isinstance(unit, int):
            if not 0 <= unit < len(self.machines):
                raise KeyError(f"unit {unit} is not a station unit (0..{len(self.machines) - 1})")
            return unit
        try:
            i = self._unit_index[unit]
        except KeyError:
            raise KeyError(f"unknown unit {unit!r}; station units are {list(self._unit_index)[:len(self.machines)]}") from None
        if i >= len(self.machines):
            raise KeyError(f"{unit!r} is a site meter, not a station")
        return i

    def station_state(self, unit: int | str) -> State:
        return State(self.machines[self.unit(unit)].state)

    def force_down(self, unit: int | str, seconds: float) -> None:
        """Stop a station now for ``seconds`` of working time (an operator-injected fault).

        A part in process is paused and finished after the stop; a waiting machine keeps its place in
        the queue. Call it from outside the simulation (between steps), not from an ``on_event``
        callback of the same machine. Repairs, like all work, only progress on shift.
        """
        if not seconds > 0:
            raise ValueError(f"force_down needs seconds > 0, got {seconds!r}")
        m = self.machines[self.unit(unit)]
        m.proc.interrupt(float(seconds))

    @property
    def now_epoch(self) -> float:
        return self.t0 + self.env.now

    def balance(self) -> dict[str, dict[str, int]]:
        """Per line: parts released, shipped good, scrapped, and in progress (released = the rest)."""
        return {lm.line.name: {"released": lm.flow.released, "shipped": lm.flow.shipped,
                               "scrapped": lm.flow.scrapped, "wip": lm.wip()} for lm in self.lines}


def simulate(factory: Factory, hours: float, seed: int = 0, *, meter_interval_s: float = 60.0,
             on_event: OnEvent | None = None, power_gauges: bool = False) -> EventLog:
    """Simulate ``hours`` from ``factory.simulation.start`` and return the event log."""
    if not hours > 0:
        raise ValueError(f"hours must be > 0, got {hours!r}")
    sim = FactorySim(factory, seed, meter_interval_s=meter_interval_s, on_event=on_event, power_gauges=power_gauges)
    return sim.run(hours * 3600.0)
