"""What the KPI core counts besides the KPIs: per unit, the readings it rejected or could not place."""

from __future__ import annotations

import numpy as np

from twin.kpi.eventlog import N_CHANNELS, Channel, FrozenLog


def diagnostics_of(m, log: FrozenLog, layout, modulus: np.ndarray) -> dict:
    """The ``KpiReport.diagnostics`` of one measurement (``compute._Measured``) of the whole span:
    rejected readings, resets, rollovers, micro-stops and unknown products per unit, and the meters."""
    def per_key(arr: np.ndarray) -> dict:
        return {f"{log.units[u]}/{Channel(c).name.lower()}": int(arr[u, c])
                for u, c in zip(*np.nonzero(arr))}

    def per_unit(arr: np.ndarray) -> dict:
        return {log.units[u]: int(arr[u]) for u in np.nonzero(arr)[0]}

    unknown_units = m.unknown_units.sum(axis=1)
    micro = m.micro_stops.sum(axis=1)
    meters = {}
    for u, meter in layout.meters:
        vol = float(m.delta[u, Channel.VOLUME, 0]) if m.readings[u, Channel.VOLUME] >= 2 else None
        meters[meter.name] = {"kind": meter.kind, "energy_kwh": layout.meter_energy(m, u, 0), "volume": vol}
    return {
        "span": [float(log.t_start), float(log.t_end)],
        "counter_modulus": {Channel(c).name.lower(): float(modulus[c]) for c in range(N_CHANNELS) if modulus[c] > 0},
        "counter_resets": per_key(m.resets),
        "counter_rollovers": per_key(m.rollovers),
        "bad_counter_readings": per_key(m.bad_counts),
        "bad_power_samples": per_unit(m.power_bad),
        "invalid_state_codes": per_unit(m.invalid_states),
        "micro_stop_s": float(layout.factory.site.micro_stop_s),
        "micro_stops": per_unit(micro),
        "unknown_product_units": {log.units[u]: float(unknown_units[u]) for u in np.nonzero(unknown_units)[0]},
        "units_with_unknown_product": [log.units[u] for u in np.nonzero(unknown_units)[0]],
        "meters": meters,
    }
