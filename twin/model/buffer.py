"""A buffer between two stations: a bounded SimPy store with an unbounded priority lane for rework.

Rework flows backwards (a station sends a part to an earlier one). If it had to wait for space in a
full buffer, the inspecting station could block on a station that is itself blocked on it, and the
line would deadlock. So rework parts bypass the capacity and are taken before new parts.
"""

from __future__ import annotations

from collections import deque

import simpy


class Buffer(simpy.Store):
    """``capacity`` parts from upstream, plus any number of rework parts served first."""

    def __init__(self, env: simpy.Environment, capacity: float = float("inf")):
        super().__init__(env, capacity)
        self.items = deque()  # popleft is O(1); Store only appends and checks len()
        self.rework: deque = deque()

    def _do_get(self, event) -> None:
        if self.rework:
            event.succeed(self.rework.popleft())
        elif self.items:
            event.succeed(self.items.popleft())

    def put_rework(self, part) -> None:
        """Return a part for rework: never blocks, served before the regular queue."""
        self.rework.append(part)
        self._trigger_get(None)

    def __len__(self) -> int:
        return len(self.items) + len(self.rework)
