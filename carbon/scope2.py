"""Scope 2: purchased electricity and heat, dual reported (GHG Protocol Scope 2 Guidance, 2015).

- Location-based (ch. 6.6): kWh x the grid-average factor of where the energy is used, an annual
  factor or an hourly series; the hourly ledger holds these figures (``carbon.ledger``).
- Market-based (ch. 6.7): consumption covered by contractual instruments (certificates, PPAs,
  supplier contracts) takes the instrument's factor, the rest the residual mix. The instruments are
  claimed when a report is made, once, from the ledger's grid-import hours (``carbon.claims``);
  ``carbon.inventory.market_hourly`` prices each hour.
- On-site generation that is self-consumed has zero Scope 2 emissions and is reported apart.
"""

from __future__ import annotations

import numpy as np


def location_co2_kg(energy_kwh, factor_kg_per_kwh):
    """Location-based CO2 (kg): energy times the grid-average factor (scalar or per interval)."""
    return np.asarray(energy_kwh, dtype=np.float64) * factor_kg_per_kwh


def market_co2_kg(energy_kwh, covered_kwh, instrument_kg_per_kwh, residual_kg_per_kwh):
    """Market-based CO2 (kg): covered energy at the instrument factor, the rest at the residual mix."""
    e = np.asarray(energy_kwh, dtype=np.float64)
    c = np.asarray(covered_kwh, dtype=np.float64)
    return c * instrument_kg_per_kwh + (e - c) * residual_kg_per_kwh
