"""Shop-floor models: the schema of a factory and the record types every package shares."""

from .loading import ConfigError, load_factory, load_model
from .records import EmissionsRecord, KpiWindow, Quality, Sample, TsKind
from .schema import Factory
from .states import N_STATES, State, parse_state

__all__ = [
    "ConfigError",
    "EmissionsRecord",
    "Factory",
    "KpiWindow",
    "N_STATES",
    "Quality",
    "Sample",
    "State",
    "TsKind",
    "load_factory",
    "load_model",
    "parse_state",
]
