"""Meter kinds the carbon accounting knows, the unit each one's activity is kept in, and the error
raised for meter data that cannot be accounted.

Counter readings become activity per clock hour in ``carbon/counters.py``; the ledger's records in
``carbon/ledger.py``.
"""

from __future__ import annotations

#: meter kind -> (dimension of its activity, unit activities are converted to)
KINDS: dict[str, tuple[str, str]] = {
    "grid_import": ("energy", "kWh"),
    "grid_export": ("energy", "kWh"),
    "pv": ("energy", "kWh"),
    "heat": ("energy", "GJ"),
    "natural_gas": ("normal_volume", "Nm3"),
    "diesel": ("mass", "kg"),
    "lpg": ("mass", "kg"),
    "coal": ("mass", "kg"),
    # compressed air is made with electricity already in the grid import: it is a shared load
    # to allocate, not an emission source, and accounting it again would double count
    "compressed_air": ("volume", "m3"),
}


class MeterDataError(ValueError):
    """Meter data that cannot be accounted: an unknown kind, a unit of the wrong dimension."""
