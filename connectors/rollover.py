"""``rollover:``: a device counter that wraps at its maximum, made continuous before the twin sees it.

A 16-bit PLC counter counts 65534, 65535, 0, 1: the part after 65535 is one part, not a reset. An
entry's ``rollover: 65535`` (the counter's maximum, in the device's counts before ``scale``) lets
the source tell the two apart per entry, where the factory's ``kpi.counter_rollover`` can only say
it once per signal name for the whole plant. The source adds ``rollover + 1`` for every wrap it sees
and forwards the running total, so the twin's counter handling reads a counter that only grows
between real resets; its reset rule then applies unchanged.

The rule for a decrease is the KPI core's (twin/kpi/reference.py): with modulus M = rollover + 1,
a drop of more than M/2 is a wrap (the counter went round once), a smaller drop is a reset (a PLC
restart, a counter cleared by hand), after which the total starts again from the device's value.
Without ``rollover`` every decrease is a reset. A value above the maximum cannot come from such a
counter and is rejected (``out_of_range``). The wraps seen are kept across reconnects (the device's
counter goes on counting while the connection is down; a wrap inside a gap still reads as one as
long as the counter moved less than M/2 past its maximum); they are lost when the twin restarts,
which the twin reads as one reset.
"""

from __future__ import annotations

from factory_models.signals import BadValue


class Unwrap:
    """Per signal: the last raw value and the wraps counted so far."""

    __slots__ = ("_last", "wraps", "resets")

    def __init__(self) -> None:
        self._last: dict[str, tuple[float, int]] = {}
        self.wraps: dict[str, int] = {}  # signal -> wraps seen (diagnostics)
        self.resets: dict[str, int] = {}  # signal -> decreases read as resets

    def total(self, signal: str, raw: float, maximum: int) -> float:
        """The continuous count for ``raw`` (a Good reading of a counter whose maximum is
        ``maximum``); BadValue ``out_of_range`` above the maximum or below zero."""
        if raw > maximum or raw < 0:
            raise BadValue("out_of_range", f"{signal}: {raw!r} is outside 0..{maximum} (its rollover)")
        modulus = maximum + 1
        last = self._last.get(signal)
        wraps = 0
        if last is not None:
            prev, wraps = last
            if raw < prev:
                if prev - raw > modulus / 2:
                    wraps += 1
                    self.wraps[signal] = self.wraps.get(signal, 0) + 1
                else:
                    wraps = 0
                    self.resets[signal] = self.resets.get(signal, 0) + 1
        self._last[signal] = (raw, wraps)
        return raw + wraps * modulus
