"""What ``compute_kpis`` accepts: the rollover modulus, window edges and the frozen log, checked with
one-line messages before any kernel runs."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from factory_models.schema import Factory
from twin.kpi.eventlog import N_CHANNELS, Channel, FrozenLog


def counter_modulus_array(counter_modulus: float | Mapping | None) -> np.ndarray:
    """Per-channel rollover modulus (0: none) from None, one number for all channels, or a mapping.

    The mapping's keys are ``Channel`` members, channel codes or names ("produced", "energy_kwh").
    """
    out = np.zeros(N_CHANNELS)
    if counter_modulus is None:
        return out
    if isinstance(counter_modulus, Mapping):
        for key, m in counter_modulus.items():
            if isinstance(key, str):
                if key.upper() not in Channel.__members__:
                    raise ValueError(f"counter_modulus: unknown channel {key!r}; expected one of "
                                     f"{', '.join(c.name.lower() for c in Channel)}")
                ch = Channel[key.upper()]
            else:
                ch = Channel(int(key))
            out[ch] = _check_modulus(m)
        return out
    out[:] = _check_modulus(counter_modulus)
    return out


def _check_modulus(m) -> float:
    m = float(m)
    if not (math.isfinite(m) and m >= 0):
        raise ValueError(f"counter_modulus must be a finite number >= 0 (0: no rollover), got {m!r}")
    return m


def check_edges(edges) -> np.ndarray:
    e = np.asarray(edges, dtype=np.float64)
    if e.ndim != 1 or e.shape[0] < 2:
        raise ValueError(f"edges must be a 1-D array of at least 2 window edges, got shape {e.shape}")
    if not np.all(np.isfinite(e)):
        raise ValueError("edges must be finite epoch seconds")
    if not np.all(np.diff(e) > 0):
        raise ValueError("edges must be strictly increasing (windows are [edges[i], edges[i+1]))")
    return e


def check_log(log: FrozenLog, factory: Factory) -> None:
    expected = factory.unit_names()
    if list(log.units) != expected:
        raise ValueError(f"the event log's units {log.units[:5]}... do not match the factory's unit "
                         f"names {expected[:5]}... ({len(log.units)} vs {len(expected)} units)")
    if log.n_stations != len(factory.station_units()):
        raise ValueError(f"log.n_stations = {log.n_stations}, the factory has {len(factory.station_units())} machines")
    if not (math.isfinite(log.t_start) and math.isfinite(log.t_end) and log.t_end >= log.t_start):
        raise ValueError(f"log span must be finite with t_end >= t_start, got [{log.t_start}, {log.t_end}]")
    for name in ("states", "counters", "power", "products_stream"):
        t = getattr(log, name).t
        n_bad = int(np.count_nonzero(~np.isfinite(t)))
        if n_bad:
            raise ValueError(f"log.{name}: {n_bad} samples have a non-finite timestamp")
