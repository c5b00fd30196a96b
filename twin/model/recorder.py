"""Where the model's observations go: the event log, an optional callback, and the site power sum.

The callback lets the live demo feed simulated PLCs and sensors from the same model without copying
its logic: ``on_event(kind, unit, t, value)`` with ``t`` in epoch seconds (UTC), ``unit`` the index
into ``Factory.unit_names()``, and ``kind`` one of

- ``"state"``: value is a ``State`` code;
- ``"product"``: value is the product's index in ``Factory.product_names()``;
- ``"produced"``, ``"good"``, ``"scrap"``, ``"rework"``, ``"energy_kwh"``, ``"volume"``: value is the
  cumulative counter (``Channel`` names, lower case);
- ``"power_kw"``: an instantaneous power gauge (site meters, when gauges are enabled).
"""

from __future__ import annotations

from typing import Callable

from twin.kpi.eventlog import Channel, EventLog

OnEvent = Callable[[str, int, float, float], None]
CHANNEL_KIND = [c.name.lower() for c in Channel]


class Recorder:
    """Writes readings into an EventLog; times are epoch seconds (simulation seconds + ``t0``).

    Without a callback the writing methods are the log's own bound methods (no extra call layer on
    the hot path). It also keeps the running sum of station electric power and its exact integral,
    so the grid meter can read the stations' energy over any interval in O(1) (power is constant
    between state changes); those take simulation seconds.
    """

    def __init__(self, log: EventLog, t0: float):
        self.log = log
        self.t0 = t0
        self.station_kw = 0.0
        self._station_kws = 0.0  # kW x s integrated up to _t_kw
        self._t_kw = 0.0
        if type(self) is Recorder:
            self.state, self.count, self.product, self.power = log.state, log.count, log.product, log.power

    def columns(self) -> tuple | None:
        """The log's state and counter column appenders ``(state t, unit, code, count t, key, value)``
        for a machine to write its rows without a call layer (the profile's largest share after
        SimPy itself), or None when every reading must pass through this recorder (a callback).
        The log keeps these lists for its lifetime (``freeze`` empties them in place)."""
        if type(self) is not Recorder:
            return None
        log = self.log
        return (log.state_t.append, log.state_unit.append, log.state_code.append,
                log.count_t.append, log.count_key.append, log.count_value.append)

    def step_power(self, now: float, delta_kw: float) -> None:
        # Machine.show does the same three lines inline (it runs at every state change): keep them alike
        self._station_kws += self.station_kw * (now - self._t_kw)
        self._t_kw = now
        self.station_kw += delta_kw

    def station_kws(self, now: float) -> float:
        """Energy drawn by all stations from time 0 to ``now`` (simulation seconds), in kW x s."""
        return self._station_kws + self.station_kw * (now - self._t_kw)


class CallbackRecorder(Recorder):
    """A Recorder that also reports every reading to ``on_event`` (after logging it)."""

    def __init__(self, log: EventLog, t0: float, on_event: OnEvent):
        super().__init__(log, t0)
        self.on_event = on_event

    def state(self, t: float, unit: int, code: int) -> None:
        self.log.state(t, unit, code)
        self.on_event("state", unit, t, code)

    def count(self, t: float, unit: int, channel: int, value: float) -> None:
        self.log.count(t, unit, channel, value)
        self.on_event(CHANNEL_KIND[channel], unit, t, value)

    def product(self, t: float, unit: int, code: int) -> None:
        self.log.product(t, unit, code)
        self.on_event("product", unit, t, code)

    def power(self, t: float, unit: int, kw: float) -> None:
        self.log.power(t, unit, kw)
        self.on_event("power_kw", unit, t, kw)
