"""``unit:`` of a mapping entry: the unit a value arrives in, converted to the signal's own unit.

The twin's signal vocabulary (factory_models/signals.py) fixes one unit per signal name: power in
kW, energy in kWh, natural gas in Nm3, compressed air in m3, parts in counts. A device that sends
watts says ``unit: W`` and its values are divided by 1000 on the way in; a unit that cannot become
the signal's unit (``unit: W`` on an energy counter) is a configuration error naming the entry,
found when the mapping is loaded, never a value silently read in the wrong unit.

Conversion factors come from pint. The registry knows two things pint does not: the normal cubic
metre (``Nm3``, gas volume at 0 °C and 101.325 kPa), which is its own dimension because turning a
measured m3 into Nm3 needs the gas's pressure and temperature, and pieces (``pcs``, ``piece``; pint
reads ``pcs`` as parsecs). ``m3``, ``ft3`` and the like are read as ``m**3``, ``ft**3``.

``conversion_factor`` runs once per signal when a source builds its rules, never per value: the
factor is folded into the entry's ``scale`` and ``offset``.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import Annotated

from pydantic import AfterValidator

from factory_models.signals import signal_name

#: The unit of each numeric signal name of the vocabulary (text signals have none).
SIGNAL_UNITS: dict[str, str] = {
    "power_kw": "kW",
    "energy_kwh": "kWh",
    "volume_nm3": "Nm3",
    "volume_m3": "m3",
    "produced": "count",
    "good": "count",
    "scrap": "count",
    "rework": "count",
}

_POWER_SUFFIX = re.compile(r"(?<=[A-Za-z])([23])\b")  # m3 -> m**3, ft2 -> ft**2


@cache
def _registry():
    import pint  # here, not at the top: only a mapping with units pays for loading pint

    ureg = pint.UnitRegistry()
    ureg.define("normal_cubic_metre = [normal_volume] = Nm3")
    ureg.define("normal_litre = 0.001 * normal_cubic_metre = Nl = NL")
    ureg.define("piece = count = pcs")
    ureg.define("dozen = 12 * count")
    return ureg


_NUMBER = re.compile(r"(?<![A-Za-z^*])\d")  # a number of its own ("2 W", "W/100"), not an exponent (m3, m^3)


def _quantity(unit: str):
    """pint's quantity of 1 ``unit``; ValueError when pint cannot read it. A unit is units only:
    a number in it (``1e3 W``) is a scale, which ``scale:`` says."""
    ureg = _registry()
    text = unit.strip()
    if text and not _NUMBER.search(text):
        for candidate in (text, _POWER_SUFFIX.sub(r"**\1", text)):
            try:
                return ureg.Quantity(1.0, candidate)
            except Exception:  # pint's parser raises many kinds (undefined, syntax, zero division ...)
                continue
    raise ValueError(f"unknown unit {unit!r} (examples: W, kW, MWh, MJ, m3, l, Nm3, count; a factor goes in scale:)")


def signal_unit(signal: str) -> str | None:
    """The vocabulary's unit of ``signal`` (``line1/printer/power_kw`` -> ``kW``); None for text."""
    return SIGNAL_UNITS.get(signal_name(signal))


@lru_cache(maxsize=4096)
def unit_factor(unit: str, target: str) -> float:
    """The number a value in ``unit`` is multiplied by to be in ``target``; ValueError naming both
    when one cannot become the other (W to kWh) or a unit is unknown."""
    import pint

    q = _quantity(unit)
    try:
        factor = q.to(_quantity(target).units).magnitude
    except pint.errors.DimensionalityError:
        raise ValueError(f"unit {unit!r} cannot be converted to {target!r} "
                         f"({q.dimensionality} is not {_quantity(target).dimensionality})") from None
    if isinstance(factor, complex) or not 0 < abs(factor) < float("inf"):
        raise ValueError(f"unit {unit!r} has no usable factor to {target!r}")
    return float(f"{factor:.15g}")  # 1 l is 0.001 m3, not 0.0010000000000000002


def conversion_factor(unit: str | None, signal: str) -> float:
    """The factor that turns a value of ``signal`` given in ``unit`` into the signal's own unit:
    1.0 when ``unit`` is None. ValueError (naming the signal and both units) when it cannot."""
    if unit is None:
        return 1.0
    target = signal_unit(signal)
    if target is None:
        raise ValueError(f"{signal} is text and has no unit; remove unit {unit!r}")
    try:
        return unit_factor(unit, target)
    except ValueError as exc:
        raise ValueError(f"{signal} is in {target}: {exc}") from None


def _known(unit: str) -> str:
    _quantity(unit)  # ValueError, reported by pydantic with the field's file and line
    return unit


#: The type of a ``unit:`` field: a unit pint can read, checked when the mapping is loaded (whether
#: it fits the signals an entry feeds is checked against the factory: connectors/mapping.py).
UnitName = Annotated[str, AfterValidator(_known)]
