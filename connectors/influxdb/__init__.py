"""InfluxDB sink: line protocol for `signal`, `station_kpi` and `emissions`, a durable spool, a writer.

See README.md in this folder for the schema, the configuration and the overflow policy.
"""

from .lineprotocol import LineProtocolError, SignalLines, emissions_line, kpi_line
from .spool import Spool, SpoolError
from .writer import InfluxConfig, InfluxWriter, load_token

__all__ = [
    "InfluxConfig",
    "InfluxWriter",
    "LineProtocolError",
    "SignalLines",
    "Spool",
    "SpoolError",
    "emissions_line",
    "kpi_line",
    "load_token",
]
