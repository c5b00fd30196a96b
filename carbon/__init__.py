"""Carbon accounting: emission factors with provenance, Scope 1 and 2, allocation, reports.

Stands on ``factory_models`` alone (docs/architecture.md). Typical use::

    cfg, reg = load_carbon_config("configs/carbon.yaml")    # or CarbonConfig.for_site(site), Registry.default()
    edges = hour_edges(t0, t1, "Asia/Shanghai")             # the site's clock hours
    acts = [hourly_activity("grid", "grid_import", "kWh", ts, readings, edges)]   # per meter
    book = ledger_records(acts, cfg, reg, site="smt1", origin="measured")   # book.records: one per source and hour
    emissions_summary(book.records)                          # the `emissions` block of the run summaries
    write_report(records, allocation, reg, "pdf", "out.pdf", (t0, t1), "smt1", cfg)
"""

from .allocation import (
    Allocation,
    AllocationError,
    ProductFootprint,
    ProductOutput,
    SharedLoad,
    StationUse,
    allocate,
)
from .claims import Claim, claim
from .config import CarbonConfig, Instrument, load_carbon_config
from .counters import HourlyActivity, hourly_activity
from .grid_series import SeriesCoverageError, StepSeries
from .hours import hour_edges, hour_floor, site_day_bounds, site_time
from .inventory import build_inventory, inputs_digest
from .ledger import Ledger, ledger_records
from .meters import MeterDataError
from .registry import Factor, Registry, UnknownFactorError
from .reports import FORMATS, write_report
from .scope1 import fuel_emissions
from .summary import (
    effective_intensity,
    emissions_summary,
    grid_intensity_kg_per_kwh,
    overlap,
    station_co2e,
)
from .units import Quantity, UnitError, convert

__all__ = [
    "FORMATS",
    "Allocation",
    "AllocationError",
    "CarbonConfig",
    "Claim",
    "Factor",
    "HourlyActivity",
    "Instrument",
    "Ledger",
    "MeterDataError",
    "ProductFootprint",
    "ProductOutput",
    "Quantity",
    "Registry",
    "SeriesCoverageError",
    "SharedLoad",
    "StationUse",
    "StepSeries",
    "UnitError",
    "UnknownFactorError",
    "allocate",
    "build_inventory",
    "claim",
    "convert",
    "effective_intensity",
    "emissions_summary",
    "fuel_emissions",
    "grid_intensity_kg_per_kwh",
    "hour_edges",
    "hour_floor",
    "hourly_activity",
    "inputs_digest",
    "ledger_records",
    "load_carbon_config",
    "overlap",
    "site_day_bounds",
    "site_time",
    "station_co2e",
    "write_report",
]
