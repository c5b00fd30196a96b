"""Quantities with units checked by dimension.

A unit is ``<scale unit> [<substance>]`` optionally over ``/<scale unit>``: ``kWh``, ``Nm3``,
``kg CO2e``, ``t CO2/TJ``, ``kg CH4/TJ``, ``MJ/Nm3``, ``TJ/Gg``. Conversion is allowed only within
one dimension (energy, normal volume, volume, mass, dimensionless) and, for masses of a gas, only
within one substance: kg CO2 never turns into kg CO2e, g and t are converted, never mixed
(GHG Protocol Corporate Standard ch. 6: report each gas separately, then CO2e).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: scale to the base unit of each dimension (J, Nm3, m3, kg, 1)
_SIMPLE: dict[str, tuple[str, float]] = {
    "J": ("energy", 1.0),
    "kJ": ("energy", 1e3),
    "MJ": ("energy", 1e6),
    "GJ": ("energy", 1e9),
    "TJ": ("energy", 1e12),
    "Wh": ("energy", 3.6e3),
    "kWh": ("energy", 3.6e6),
    "MWh": ("energy", 3.6e9),
    "GWh": ("energy", 3.6e12),
    # normal cubic metres (0 degC, 101.325 kPa) are a measure of amount of gas, not a volume at
    # line conditions, so they get their own dimension and never convert to m3.
    "Nm3": ("normal_volume", 1.0),
    "m3": ("volume", 1.0),
    "L": ("volume", 1e-3),
    "g": ("mass", 1e-3),
    "kg": ("mass", 1.0),
    "t": ("mass", 1e3),
    "Gg": ("mass", 1e6),
    "1": ("dimensionless", 1.0),
    "piece": ("count", 1.0),
}

#: substances a mass may be "of": the greenhouse gases, CO2e, and elemental carbon (carbon content)
SUBSTANCES = ("CO2", "CO2e", "CH4", "N2O", "SF6", "C")


class UnitError(ValueError):
    """A unit that cannot be parsed, or a conversion that is not dimensionally valid."""


@dataclass(frozen=True)
class Unit:
    """A parsed unit: numerator (dimension, scale, substance) over an optional denominator."""

    text: str
    dim: str
    scale: float
    substance: str | None = None
    per_dim: str | None = None
    per_scale: float = 1.0

    @property
    def dimension(self) -> str:
        num = self.dim + (f"[{self.substance}]" if self.substance else "")
        return num if self.per_dim is None else f"{num}/{self.per_dim}"


def _parse_simple(text: str, whole: str) -> tuple[str, float, str | None]:
    parts = text.split()
    if not parts or len(parts) > 2:
        raise UnitError(f"cannot parse unit {whole!r}: expected e.g. 'kWh', 'kg CO2e', 't CO2/TJ'")
    if parts[0] not in _SIMPLE:
        raise UnitError(f"unknown unit {parts[0]!r} in {whole!r}; known: {', '.join(_SIMPLE)}")
    dim, scale = _SIMPLE[parts[0]]
    substance = None
    if len(parts) == 2:
        substance = parts[1]
        if substance not in SUBSTANCES:
            raise UnitError(f"unknown substance {substance!r} in {whole!r}; known: {', '.join(SUBSTANCES)}")
        if dim != "mass":
            raise UnitError(f"{whole!r}: only a mass can be of a substance, {parts[0]!r} is {dim}")
    return dim, scale, substance


def parse_unit(text: str) -> Unit:
    """Parse ``text`` into a Unit; UnitError names what was not understood."""
    if not isinstance(text, str) or not text.strip():
        raise UnitError(f"empty or non-text unit {text!r}")
    num, sep, den = text.strip().partition("/")
    dim, scale, substance = _parse_simple(num.strip(), text)
    if not sep:
        return Unit(text.strip(), dim, scale, substance)
    if "/" in den:
        raise UnitError(f"{text!r}: at most one '/' in a unit")
    per_dim, per_scale, per_sub = _parse_simple(den.strip(), text)
    if per_sub is not None:
        raise UnitError(f"{text!r}: a substance belongs in the numerator only")
    return Unit(text.strip(), dim, scale, substance, per_dim, per_scale)


def conversion_factor(from_unit: str, to_unit: str) -> float:
    """The number to multiply a value in ``from_unit`` by to express it in ``to_unit``."""
    a, b = parse_unit(from_unit), parse_unit(to_unit)
    if a.dimension != b.dimension:
        raise UnitError(f"cannot convert {from_unit!r} ({a.dimension}) to {to_unit!r} ({b.dimension})")
    return (a.scale / a.per_scale) / (b.scale / b.per_scale)


def convert(value, from_unit: str, to_unit: str):
    """``value`` (float or float64 array) in ``from_unit`` expressed in ``to_unit``."""
    k = conversion_factor(from_unit, to_unit)
    if isinstance(value, np.ndarray):
        return value.astype(np.float64) * k
    return float(value) * k


def require_dimension(unit: str, dimension: str, what: str) -> Unit:
    """Parse ``unit`` and check it has ``dimension`` (e.g. 'energy'); UnitError says what was expected."""
    u = parse_unit(unit)
    if u.dimension != dimension:
        raise UnitError(f"{what}: unit {unit!r} is {u.dimension}, expected {dimension}")
    return u


@dataclass(frozen=True)
class Quantity:
    """A value (float or float64 array) with its unit."""

    value: float | np.ndarray
    unit: str

    def __post_init__(self):
        parse_unit(self.unit)

    def to(self, unit: str) -> "Quantity":
        return Quantity(convert(self.value, self.unit, unit), unit)

    def __add__(self, other: "Quantity") -> "Quantity":
        if not isinstance(other, Quantity):
            raise UnitError(f"cannot add a bare number to {self.unit!r}")
        return Quantity(self.value + convert(other.value, other.unit, self.unit), self.unit)

    def times_factor(self, value: float, unit: str) -> "Quantity":
        """This activity times a factor in ``unit`` (e.g. 'kg CO2/kWh'); the denominator must fit."""
        f = parse_unit(unit)
        if f.per_dim is None:
            raise UnitError(f"factor unit {unit!r} has no '/<activity unit>'")
        mine = parse_unit(self.unit)
        if mine.substance is not None or mine.per_dim is not None or mine.dim != f.per_dim:
            raise UnitError(
                f"a factor in {unit!r} applies to {f.per_dim}, but the activity is {self.unit!r} ({mine.dimension})"
            )
        num_unit = unit.split("/")[0].strip()
        per_unit = unit.split("/")[1].strip()
        activity = convert(self.value, self.unit, per_unit)
        return Quantity(activity * value, num_unit)
