"""Machine time and output per product, from the event log: the inputs of product carbon footprints.

ISO 14067 prefers sub-metering each station and splitting its energy by a physical relationship:
here, the station's producing time (APT) per product, and the good units per product that leave
the line. Both come from the same streams the KPI core reads (states, products, counters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from factory_models import Factory, State

from twin.kpi.eventlog import N_CHANNELS, Channel, FrozenLog


@dataclass(frozen=True)
class ProductUse:
    """One station's producing time and counts for one product over [start, end)."""

    line: str
    station: str
    product: str
    start: float
    end: float
    machine_time_s: float
    produced: float
    good: float
    is_output: bool  # the station is (a machine of) its line's output station


def _product_at(p_t: np.ndarray, p_code: np.ndarray, t: np.ndarray, default: int) -> np.ndarray:
    """Product code current at each time in ``t`` (the last product sample at or before it)."""
    if len(p_t) == 0:
        return np.full(len(t), default, dtype=np.int64)
    i = np.searchsorted(p_t, t, side="right") - 1
    out = np.where(i >= 0, p_code[np.clip(i, 0, None)], default)
    return out.astype(np.int64)


def _deltas(log: FrozenLog, unit: int, channel: Channel, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    """(time, increase) of a discrete counter's readings inside [t0, t1]; a decrease is a reset."""
    c = log.counters
    k = unit * N_CHANNELS + int(channel)
    a, b = c.offsets[k], c.offsets[k + 1]
    t, v = c.t[a:b], c.value[a:b]
    ok = np.isfinite(v) & (v >= 0)
    t, v = t[ok], v[ok]
    if len(t) < 2:
        return t[:0], v[:0]
    d = np.diff(v)
    d = np.where(d < 0, v[1:], d)  # reset: counted from zero, as the KPI core does
    tt = t[1:]
    keep = (tt > t0) & (tt <= t1)  # the baseline reading at t0 is no production
    return tt[keep], d[keep]


def product_use(factory: Factory, log: FrozenLog, t0: float | None = None, t1: float | None = None) -> list[ProductUse]:
    """Per station and product: producing seconds, produced and good units over [t0, t1]."""
    t0 = log.t_start if t0 is None else t0
    t1 = log.t_end if t1 is None else t1
    products = factory.product_names()
    default = 0 if len(products) == 1 else -1
    rows: list[ProductUse] = []
    for unit, (ln, st, name) in enumerate(factory.station_units()):
        ps = log.products_stream
        pa, pb = ps.offsets[unit], ps.offsets[unit + 1]
        p_t, p_code = ps.t[pa:pb], ps.value[pa:pb].astype(np.int64)
        # producing time: clip each PRODUCING interval to [t0, t1] and split it at product changes
        s = log.states
        sa, sb = s.offsets[unit], s.offsets[unit + 1]
        st_t, st_c = s.t[sa:sb], s.value[sa:sb]
        ends = np.append(st_t[1:], log.t_end)
        time_s = np.zeros(len(products))
        for a, b, code in zip(st_t, ends, st_c):
            if code != State.PRODUCING:
                continue
            a, b = max(a, t0), min(b, t1)
            if b <= a:
                continue
            cuts = p_t[(p_t > a) & (p_t < b)]
            bounds = np.concatenate(([a], cuts, [b]))
            codes = _product_at(p_t, p_code, bounds[:-1], default)
            for c, dt in zip(codes, np.diff(bounds)):
                if c >= 0:
                    time_s[c] += dt
        produced = np.zeros(len(products))
        scrap_rework = np.zeros(len(products))
        t, d = _deltas(log, unit, Channel.PRODUCED, t0, t1)
        np.add.at(produced, _clip(_product_at(p_t, p_code, t, default)), _mask(_product_at(p_t, p_code, t, default), d))
        g_t, g_d = _deltas(log, unit, Channel.GOOD, t0, t1)
        if len(g_t):
            good = np.zeros(len(products))
            codes = _product_at(p_t, p_code, g_t, default)
            np.add.at(good, _clip(codes), _mask(codes, g_d))
        else:
            for ch in (Channel.SCRAP, Channel.REWORK):
                x_t, x_d = _deltas(log, unit, ch, t0, t1)
                codes = _product_at(p_t, p_code, x_t, default)
                np.add.at(scrap_rework, _clip(codes), _mask(codes, x_d))
            good = np.maximum(produced - scrap_rework, 0.0)
        for i, product in enumerate(products):
            if time_s[i] or produced[i]:
                rows.append(ProductUse(ln.name, name, product, t0, t1, float(time_s[i]), float(produced[i]),
                                       float(good[i]), st.name == ln.output))
    return rows


def _clip(codes: np.ndarray) -> np.ndarray:
    return np.clip(codes, 0, None)


def _mask(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Units made while the product is unknown are left out (the KPI core flags them)."""
    return np.where(codes >= 0, values, 0.0)
