"""The composition root: wires sources to the twin and the twin to its sinks (docs/architecture.md).

Only this package (and the CLI above it) imports every package. ``live`` runs ``demo`` and ``run``
(with ``demo_plant``, ``terminal`` and ``live_summary``), ``batch`` runs ``simulate``, ``replay``
and ``check``, ``sinks`` holds the sinks every command writes to. The names the CLI uses are
re-exported here.
"""

from connectors.influxdb import InfluxConfig
from twin.runtime.batch import describe, print_description, replay_summary, simulate_summary, text_footer
from twin.runtime.sinks import Sinks, write_sinks

__all__ = ["InfluxConfig", "Sinks", "describe", "print_description", "replay_summary", "simulate_summary",
           "text_footer", "write_sinks"]
