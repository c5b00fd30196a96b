"""Numba kernels of the KPI core: one pass over one frozen event-log stream per call.

``state_durations`` (states), ``failure_spells`` (states again: failures, repair time, micro-stops),
``counter_deltas`` and ``ideal_time`` (cumulative counters, with the product mix for the latter),
``gap_parts`` (PRODUCED readings that bracket UNKNOWN state time), ``trapezoid_energy`` (power). A stream is passed as one record with
``offsets``, ``t`` and ``value`` (an event log's ``Stream`` or a ``Csr``), the product mix as a
``Mix`` (``product_mix``). Each walks its stream one key at a time
(``walk``: records, window cursors, the driver that spreads groups of keys over threads) and books
what it reads into windows.

The rules (what a state, a reading or a power sample means) are the contract of
``twin.kpi.compute``; ``twin.kpi.reference`` states the same rules as plain Python and the property
tests hold the two together.

Two booking conventions:

- durations (states, continuous counters, power) are clipped to the half-open windows;
- discrete events at an instant (a counter reading, a failure) go to the window holding that
  instant. For counter readings the last window is closed on the right, so a final reading taken
  exactly at the end of the span (the usual end-of-run snapshot) is not lost. Failures are
  half-open: a DOWN that starts at the closing edge lasts no time in the span.

Threads: ``with kernels.threads(1): ...`` runs the kernels called in the block on one thread; by
default they use Numba's thread count (``NUMBA_NUM_THREADS``), and small calls stay in the caller.
"""

from twin.kpi.kernels.counters import Mix, counter_deltas, ideal_time, product_mix
from twin.kpi.kernels.energy import trapezoid_energy
from twin.kpi.kernels.failures import failure_spells
from twin.kpi.kernels.gaps import gap_parts
from twin.kpi.kernels.states import state_durations
from twin.kpi.kernels.walk import Csr, balanced_chunks, threads

__all__ = ["state_durations", "failure_spells", "counter_deltas", "ideal_time", "product_mix", "trapezoid_energy",
           "gap_parts", "Csr", "Mix",
           "balanced_chunks", "threads"]
