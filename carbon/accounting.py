"""Factor helpers of the ledger: the grid factor of each hour, a single-gas factor as record fields.

The ledger itself (meter activity per clock hour to records) is ``carbon/ledger.py``; counter
readings to hourly activity is ``carbon/counters.py``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .grid_series import StepSeries
from .registry import Factor

FUEL_KINDS = ("natural_gas", "diesel", "lpg", "coal")
_SERIES_CACHE: dict[tuple[str, float, str], StepSeries] = {}


def _series(factor: Factor) -> StepSeries:
    path = Path(factor.series_file)
    key = (str(path), path.stat().st_mtime, factor.unit)
    if key not in _SERIES_CACHE:
        _SERIES_CACHE[key] = StepSeries.from_csv(path, factor.id, factor.unit)
    return _SERIES_CACHE[key]


def grid_factor_per_interval(factor: Factor, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """kg per kWh for each interval: the annual value, or the hourly series averaged over it."""
    if factor.kind == "grid_hourly":
        return _series(factor).mean_over(start, end)
    return np.full(len(start), factor.value_in(f"kg {factor.gas}/kWh"))


def grid_factor_or_nan(factor: Factor, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """``grid_factor_per_interval``, NaN for intervals an hourly series does not cover (a fallback
    for hours without meter data, where a missing factor is no error)."""
    if factor.kind not in ("grid_hourly", "grid_electricity", "supplier_electricity"):
        return np.full(len(start), np.nan)
    if factor.kind != "grid_hourly":
        return grid_factor_per_interval(factor, start, end)
    series = _series(factor)
    inside = (start >= series.start) & (end <= series.end)
    out = np.full(len(start), np.nan)
    if inside.any():
        out[inside] = series.mean_over(start[inside], end[inside])
    return out


def _gas_split(factor: Factor, mass_kg: np.ndarray) -> dict[str, np.ndarray]:
    """A single-gas factor's mass as record fields: CO2 counts as CO2e (GWP 1)."""
    z = np.zeros_like(mass_kg)
    if factor.gas == "CO2":
        return {"co2e_kg": mass_kg, "co2_kg": mass_kg, "ch4_kg": z, "n2o_kg": z}
    return {"co2e_kg": mass_kg, "co2_kg": z, "ch4_kg": z, "n2o_kg": z}
