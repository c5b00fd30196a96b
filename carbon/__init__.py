"""Carbon accounting: emission factors with provenance, Scope 1 and 2, allocation, reports.

Stands on ``factory_models`` alone (docs/architecture.md). Typical use::

    cfg, reg = load_carbon_config("configs/carbon.yaml")    # or CarbonConfig.for_site(site), Registry.default()
    records = account(meter_series, cfg, reg, t0, t1, windows=3600, site="smt1")
    emissions_summary(records)                               # the `emissions` block of simulate/replay JSON
    write_report(records, allocation, reg, "pdf", "out.pdf", (t0, t1), "smt1", cfg)
"""

from .accounting import account, window_edges
from .allocation import Allocation, AllocationError, ProductFootprint, ProductOutput, SharedLoad, StationUse, allocate
from .config import CarbonConfig, Instrument, load_carbon_config
from .grid_series import SeriesCoverageError, StepSeries
from .inventory import build_inventory, inputs_digest
from .meters import MeterDataError, MeterSeries, series_from_cumulative
from .registry import Factor, Registry, UnknownFactorError
from .reports import FORMATS, write_report
from .scope1 import fuel_emissions
from .scope2 import InstrumentError, InstrumentLedger
from .summary import emissions_summary, grid_intensity_kg_per_kwh, station_co2e
from .units import Quantity, UnitError, convert

__all__ = [
    "Allocation", "AllocationError", "CarbonConfig", "FORMATS", "Factor", "Instrument", "InstrumentError",
    "InstrumentLedger", "MeterDataError", "MeterSeries", "ProductFootprint", "ProductOutput", "Quantity",
    "Registry", "SeriesCoverageError", "SharedLoad", "StationUse", "StepSeries", "UnitError", "UnknownFactorError",
    "account", "allocate", "build_inventory", "convert", "emissions_summary", "fuel_emissions",
    "grid_intensity_kg_per_kwh", "inputs_digest", "load_carbon_config", "series_from_cumulative",
    "station_co2e", "window_edges", "write_report",
]
