"""The twin's signal names: what a mapping may feed, and what type each value takes.

A signal is ``<line>/<station>/<name>`` for a machine (station names are the unit names of
``Factory.station_units()``, so parallel machines are ``cnc-1`` .. ``cnc-n``) or
``site/<meter>/<name>`` for a site meter (docs/architecture.md, Contracts). Connection changes travel in-band as
``connection/<source>`` with the value ``"up"`` or ``"down"``.
"""

from __future__ import annotations

import math

from .schema import Factory
from .states import parse_state

#: Per-station signal names and their kind. Counters only grow (a reset is a PLC restart); gauges
#: are instantaneous; ``state`` carries a State name; ``product`` the product being made.
STATION_SIGNALS: dict[str, str] = {
    "state": "state",
    "produced": "counter",
    "good": "counter",
    "scrap": "counter",
    "rework": "counter",
    "power_kw": "gauge",
    "energy_kwh": "counter",
    "product": "text",
}

#: Site-meter signal names by meter kind (factory_models.schema Meter.kind).
METER_SIGNALS: dict[str, dict[str, str]] = {
    "grid_import": {"energy_kwh": "counter", "power_kw": "gauge"},
    "pv": {"energy_kwh": "counter", "power_kw": "gauge"},
    "grid_export": {"energy_kwh": "counter"},
    "natural_gas": {"volume_nm3": "counter"},
    "compressed_air": {"volume_m3": "counter"},
}

#: Signal names whose values are strings; every other signal carries a float.
TEXT_NAMES = frozenset({"state", "product"})

#: Line name that marks a site meter signal, and prefix of the in-band connection signals.
SITE = "site"
CONNECTION = "connection"


def station_signals(line: str, station: str) -> list[str]:
    """Every signal of one machine, in STATION_SIGNALS order."""
    return [f"{line}/{station}/{name}" for name in STATION_SIGNALS]


def meter_signals(meter: str, kind: str) -> list[str]:
    """Every signal of one site meter of the given kind."""
    return [f"{SITE}/{meter}/{name}" for name in METER_SIGNALS[kind]]


def known_signals(factory: Factory) -> set[str]:
    """All signals a source may feed into the twin built from ``factory``."""
    out: set[str] = set()
    for ln, _, unit in factory.station_units():
        out.update(station_signals(ln.name, unit))
    for m in factory.meters:
        out.update(meter_signals(m.name, m.kind))
    return out


def signal_name(signal: str) -> str:
    """The last path segment of a signal (``line1/printer/state`` -> ``state``)."""
    return signal.rsplit("/", 1)[-1]


def is_text(signal: str) -> bool:
    """True when the signal's value is a string (state, product, connection), else a float."""
    return signal.startswith(CONNECTION + "/") or signal_name(signal) in TEXT_NAMES


def signal_kind(signal: str) -> str:
    """``state``, ``counter``, ``gauge`` or ``text`` for a known signal name; KeyError otherwise."""
    name = signal_name(signal)
    if signal.startswith(SITE + "/"):
        for names in METER_SIGNALS.values():
            if name in names:
                return names[name]
        raise KeyError(f"unknown site meter signal name {name!r} in {signal!r}")
    return STATION_SIGNALS[name]


def connection_signal(source_name: str) -> str:
    """The in-band signal reporting whether ``source_name`` is connected (value "up" or "down")."""
    return f"{CONNECTION}/{source_name}"


class BadValue(ValueError):
    """A value a signal cannot take; ``reason`` is the counted rejection reason."""

    def __init__(self, reason: str, message: str):
        self.reason = reason
        super().__init__(message)


def coerce(signal: str, raw: object) -> float | str:
    """The value of ``signal`` as the twin takes it: a float, or a string for text signals.

    A ``state`` may arrive as a State name (any case) or its integer code (PLCs often publish the
    code); it leaves as the State name. Booleans are refused for numbers: a PLC bit mapped onto a
    counter is a mapping mistake, not a 0/1 count. NaN and infinities are refused (``not_finite``).
    """
    name = signal_name(signal)
    if name == "state":
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise BadValue("wrong_type", f"{signal}: a state must be a name or code, got {type(raw).__name__}")
        if isinstance(raw, float):
            if not raw.is_integer():
                raise BadValue("wrong_type", f"{signal}: state code must be an integer, got {raw!r}")
            raw = int(raw)
        try:
            return parse_state(str(raw)).name
        except ValueError as exc:
            raise BadValue("bad_state", f"{signal}: {exc}") from None
    if is_text(signal):
        if isinstance(raw, str):
            return raw
        raise BadValue("wrong_type", f"{signal}: expected a string, got {type(raw).__name__}")
    if isinstance(raw, bool) or not isinstance(raw, (int, float, str)):
        raise BadValue("wrong_type", f"{signal}: expected a number, got {type(raw).__name__}")
    try:
        value = float(raw)
    except (ValueError, OverflowError):
        raise BadValue("wrong_type", f"{signal}: expected a number, got {raw!r}"[:200]) from None
    if not math.isfinite(value):
        raise BadValue("not_finite", f"{signal}: {value!r} is not a finite number")
    return value
