"""Charts for the PDF report (matplotlib, Agg backend): emissions by scope and source over time, per product."""

from __future__ import annotations

import io
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from factory_models import EmissionsRecord  # noqa: E402


def _bucket_s(span_s: float) -> tuple[float, str]:
    for size, label in ((3600.0, "hour"), (86400.0, "day"), (7 * 86400.0, "week")):
        if span_s / size <= 62:
            return size, label
    return 30 * 86400.0, "30 days"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=130, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def timeline_png(records: list[EmissionsRecord], t0: float, t1: float) -> bytes:
    """Stacked bars of CO2e per time bucket: Scope 1 by source, Scope 2 (location and market) by source."""
    size, label = _bucket_s(t1 - t0)
    n = max(1, int(np.ceil((t1 - t0) / size)))
    series: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(n))
    for r in records:
        if r.method == "onsite":
            continue
        key = f"S{r.scope} {r.method} {r.source}"
        # a record's CO2e is spread evenly over its window, split across the buckets it overlaps
        a, b = max(r.start, t0), min(r.end, t1)
        if b <= a:
            continue
        for k in range(int((a - t0) // size), min(n, int(np.ceil((b - t0) / size)))):
            lo, hi = t0 + k * size, t0 + (k + 1) * size
            ov = max(0.0, min(b, hi) - max(a, lo))
            series[key][k] += r.co2e_kg * ov / (b - a)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    x = np.arange(n)
    for ax, method in zip(axes, ("location", "market")):
        bottom = np.zeros(n)
        for key in sorted(series):
            if key.startswith("S1") or f" {method} " in key:
                ax.bar(x, series[key], bottom=bottom, label=key.replace(f" {method}", "").replace(" direct", ""))
                bottom += series[key]
        ax.set_title(f"Scope 1 + Scope 2 {method}-based")
        ax.set_xlabel(f"{label} since period start")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("kg CO2e")
    return _png(fig)


def products_png(products: list[dict]) -> bytes:
    """Bars of CO2e per good unit for each product, split direct (fuels, heat) and indirect (electricity)."""
    names = [p["product"] for p in products]
    units = [p["good_units"] or np.nan for p in products]
    direct = np.array([p["direct_co2e_kg"] for p in products]) / np.array(units, dtype=float)
    indirect = np.array([p["indirect_co2e_kg"] for p in products]) / np.array(units, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(names, indirect, label="electricity")
    ax.bar(names, direct, bottom=indirect, label="fuels and heat")
    ax.set_ylabel("kg CO2e per good unit")
    ax.set_title("Product carbon footprint per unit")
    ax.legend(fontsize=7)
    return _png(fig)
