"""A production line: its release of work, its buffers and its machines, wired in station order.

Buffers: station i takes from buffer i and puts into buffer i + 1, whose capacity is station i's
``buffer_after``. The first buffer is the release queue in front of the line (it holds one batch);
the last station has no buffer after it: its good parts leave the line (an unbounded sink), so its
``buffer_after`` is not used. Parallel machines of one station share its input and output buffers.
"""

from __future__ import annotations

import random
from bisect import bisect_right
from itertools import accumulate

import simpy

from factory_models.schema import Factory, Line

from twin.model.buffer import Buffer
from twin.model.calendar import ShiftCalendar, SwitchedOffCalendar
from twin.model.distributions import stream
from twin.model.recorder import Recorder
from twin.model.standby import StandbyMachine
from twin.model.station import Flow, Machine


class Release:
    """Work entering a line: batches of ``batch_size`` parts of one product, drawn by product share.

    Orders are unlimited (the line is never IDLE for lack of orders); the release waits while the
    queue in front of the first station is full. A part is counted as released when it enters that
    queue.
    """

    def __init__(self, env: simpy.Environment, queue: Buffer, shares: list[float], batch_size: int,
                 rng: random.Random, flow: Flow, line_name: str):
        total = sum(shares)
        if total <= 0.0:
            raise ValueError(f"line {line_name!r}: product shares sum to 0; give at least one product a share > 0")
        self.env, self.queue, self.batch_size, self.rng, self.flow = env, queue, batch_size, rng, flow
        self._cumulative = [c / total for c in accumulate(shares)]
        self.product = self._draw()  # the first batch: machines start set up for it

    def _draw(self) -> int:
        # min(): guards the last cumulative share rounding to just below 1.0
        return min(bisect_right(self._cumulative, self.rng.random()), len(self._cumulative) - 1)

    def run(self):
        queue, flow = self.queue, self.flow
        while True:
            for _ in range(self.batch_size):
                put = queue.put(self.product)
                if not put.triggered:
                    yield put
                flow.released += 1
            self.product = self._draw()


class LineModel:
    """The SimPy objects of one line: release, buffers, machines (in unit order), and its part flow."""

    def __init__(self, env: simpy.Environment, factory: Factory, line: Line, first_unit: int,
                 calendar: ShiftCalendar, recorder: Recorder, seed: int):
        self.line = line
        self.flow = Flow()
        products = factory.product_names()
        shares = [p.share for p in factory.products]
        stations = line.stations
        self.buffers = [Buffer(env, line.release.batch_size)] + [Buffer(env, st.buffer_after) for st in stations[:-1]]
        self.release = Release(env, self.buffers[0], shares, line.release.batch_size,
                               stream(seed, f"{line.name}/release"), self.flow, line.name)
        index = {st.name: i for i, st in enumerate(stations)}
        self.machines: list[Machine] = []
        unit = first_unit
        for i, st in enumerate(stations):
            outbuf = self.buffers[i + 1] if i + 1 < len(stations) else None
            rework_buf = self.buffers[index[st.rework.to]] if st.rework is not None else None
            names = [st.name] if st.machines == 1 else [f"{st.name}-{k}" for k in range(1, st.machines + 1)]
            windows = line.shift_off + st.shift_off
            cal = (calendar if not windows else
                   SwitchedOffCalendar(calendar, factory.calendar, windows, factory.simulation.start))
            kind = StandbyMachine if st.standby is not None else Machine
            for name in names:
                self.machines.append(kind(env, cal, recorder, st, unit, products, self.release.product,
                                          self.buffers[i], outbuf, rework_buf,
                                          stream(seed, f"{line.name}/{name}"), self.flow))
                unit += 1

    def start(self, env: simpy.Environment) -> None:
        env.process(self.release.run())
        for m in self.machines:
            m.start()

    def wip(self) -> int:
        """Parts in the line: in buffers (including rework lanes) and inside machines."""
        return sum(len(b) for b in self.buffers) + sum(m.holding for m in self.machines)
