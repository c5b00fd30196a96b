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


def product_use(factory: Factory, log: FrozenLog, t0: float | None = None, t1: float | None = None, *,
                edges=None) -> list[ProductUse]:
    """Per station and product: producing seconds, produced and good units over [t0, t1], or per
    window of ``edges`` (the site's clock hours: a report of any whole-hour period then finds them).

    A count read exactly on an edge belongs to the window that ends there, as a counter reading
    closes the interval before it."""
    t0 = log.t_start if t0 is None else t0
    t1 = log.t_end if t1 is None else t1
    e = np.array([t0, t1], dtype=np.float64) if edges is None else np.asarray(edges, dtype=np.float64)
    e = np.unique(np.clip(e, t0, t1))
    if len(e) < 2:
        return []
    t0, t1, nw = float(e[0]), float(e[-1]), len(e) - 1
    products = factory.product_names()
    default = 0 if len(products) == 1 else -1
    rows: list[ProductUse] = []
    for unit, (ln, st, name) in enumerate(factory.station_units()):
        ps = log.products_stream
        pa, pb = ps.offsets[unit], ps.offsets[unit + 1]
        p_t, p_code = ps.t[pa:pb], ps.value[pa:pb].astype(np.int64)
        # producing time: clip each PRODUCING interval to [t0, t1], split it at product changes and edges
        s = log.states
        sa, sb = s.offsets[unit], s.offsets[unit + 1]
        st_t, st_c = s.t[sa:sb], s.value[sa:sb]
        ends = np.append(st_t[1:], log.t_end)
        time_s = np.zeros((nw, len(products)))
        for a, b, code in zip(st_t, ends, st_c):
            if code != State.PRODUCING:
                continue
            a, b = max(a, t0), min(b, t1)
            if b <= a:
                continue
            cuts = np.union1d(p_t[(p_t > a) & (p_t < b)], e[(e > a) & (e < b)])
            bounds = np.concatenate(([a], cuts, [b]))
            codes = _product_at(p_t, p_code, bounds[:-1], default)
            win = np.searchsorted(e, bounds[:-1], side="right") - 1
            ok = codes >= 0
            np.add.at(time_s, (win[ok], codes[ok]), np.diff(bounds)[ok])
        produced = _binned(log, unit, Channel.PRODUCED, e, p_t, p_code, default, len(products))
        g_t, _ = _deltas(log, unit, Channel.GOOD, t0, t1)
        if len(g_t):
            good = _binned(log, unit, Channel.GOOD, e, p_t, p_code, default, len(products))
        else:
            lost = sum(_binned(log, unit, ch, e, p_t, p_code, default, len(products)) for ch in (Channel.SCRAP, Channel.REWORK))
            good = np.maximum(produced - lost, 0.0)
        for w in range(nw):
            for i, product in enumerate(products):
                if time_s[w, i] or produced[w, i]:
                    rows.append(ProductUse(ln.name, name, product, float(e[w]), float(e[w + 1]), float(time_s[w, i]),
                                           float(produced[w, i]), float(good[w, i]), st.name == ln.output))
    return rows


def _binned(log, unit, channel, e, p_t, p_code, default, n_products) -> np.ndarray:
    """A counter's increases per (window, product); a reading on an edge closes the window before it."""
    t, d = _deltas(log, unit, channel, float(e[0]), float(e[-1]))
    out = np.zeros((len(e) - 1, n_products))
    codes = _product_at(p_t, p_code, t, default)
    win = np.clip(np.searchsorted(e, t, side="left") - 1, 0, len(e) - 2)
    ok = codes >= 0
    np.add.at(out, (win[ok], codes[ok]), d[ok])
    return out


def _clip(codes: np.ndarray) -> np.ndarray:
    return np.clip(codes, 0, None)


def _mask(codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Units made while the product is unknown are left out (the KPI core flags them)."""
    return np.where(codes >= 0, values, 0.0)
