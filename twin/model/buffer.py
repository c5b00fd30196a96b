"""A buffer between two stations: a bounded FIFO of parts with an unbounded priority lane for rework.

Rework flows backwards (a station sends a part to an earlier one). If it had to wait for space in a
full buffer, the inspecting station could block on a station that is itself blocked on it, and the
line would deadlock. So rework parts bypass the capacity and are taken before new parts.

It behaves exactly as a ``simpy.Store`` would (same requests, same order of service, the same events
scheduled in the same order, so the same event log), written without SimPy's generic resource layer:
``Store.get``/``put`` go through a bound-class call, three ``__init__`` levels and a queue scan for
every part, which was a fifth of the twin's run time. The rules kept:

- A request is queued, then only the *first* queued request of its kind is tried (a Store serves
  one request per trigger); a served request is triggered (scheduled) at once.
- When a get is processed, the first queued put is tried; when a put is processed, the first queued
  get is tried (SimPy's callbacks, run in the event's turn, not when the request is made).
"""

from __future__ import annotations

from collections import deque

import simpy
from simpy.events import NORMAL, Event


class Request(Event):
    """A get or put request: a SimPy event born with its one callback (the buffer's trigger)."""

    def __init__(self, env: simpy.Environment, callback):
        self.env = env
        self.callbacks = [callback]


class Buffer:
    """``capacity`` parts from upstream, plus any number of rework parts served first."""

    def __init__(self, env: simpy.Environment, capacity: float = float("inf")):
        if capacity <= 0:
            raise ValueError(f"buffer capacity must be > 0, got {capacity!r}")
        self._env = env
        self.capacity = capacity
        self.items: deque = deque()
        self.rework: deque = deque()
        self.put_queue: deque[Event] = deque()  # requests not yet served, oldest first
        self.get_queue: deque[Event] = deque()
        # bound once: every request carries one of these as its callback
        self._on_get_done = self._trigger_put
        self._on_put_done = self._trigger_get
        self._schedule = env.schedule

    def get(self) -> Event:
        """Request a part; the event's value is the part (triggered at once when one is waiting)."""
        event = Request(self._env, self._on_get_done)
        queue = self.get_queue
        queue.append(event)
        # _trigger_get inlined: this runs once per part and station
        if self.rework:
            first = queue.popleft()
            first._ok, first._value = True, self.rework.popleft()
            self._schedule(first, NORMAL)
        elif self.items:
            first = queue.popleft()
            first._ok, first._value = True, self.items.popleft()
            self._schedule(first, NORMAL)
        return event

    def put(self, part) -> Event:
        """Request space for ``part`` (triggered at once when the buffer has room)."""
        event = Request(self._env, self._on_put_done)
        event.item = part
        queue = self.put_queue
        queue.append(event)
        if len(self.items) < self.capacity:  # _trigger_put inlined
            first = queue.popleft()
            self.items.append(first.item)
            first._ok, first._value = True, None
            self._schedule(first, NORMAL)
        return event

    def put_rework(self, part) -> None:
        """Return a part for rework: never blocks, served before the regular queue."""
        self.rework.append(part)
        self._trigger_get(None)

    def _trigger_get(self, _put_event) -> None:
        queue = self.get_queue
        if queue:
            if self.rework:
                first = queue.popleft()
                first._ok, first._value = True, self.rework.popleft()
                self._schedule(first, NORMAL)
            elif self.items:
                first = queue.popleft()
                first._ok, first._value = True, self.items.popleft()
                self._schedule(first, NORMAL)

    def _trigger_put(self, _get_event) -> None:
        queue = self.put_queue
        if queue and len(self.items) < self.capacity:
            first = queue.popleft()
            self.items.append(first.item)
            first._ok, first._value = True, None
            self._schedule(first, NORMAL)

    def __len__(self) -> int:
        return len(self.items) + len(self.rework)
