"""Charts for the PDF report (matplotlib, Agg backend): the ledger's hours, and CO2e per product.

The timeline draws each clock hour of the ledger as it is recorded (bars up to four days, a step
line beyond); hours without data are left empty, not filled in.
"""

from __future__ import annotations

import io
from datetime import datetime

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ..periods import zone  # noqa: E402


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _when(text: str, tz) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(tz)


def timeline_png(hours: list[dict], tz: str | None) -> bytes:
    """CO2e per hour: Scope 1 and Scope 2 stacked, location-based and market-based side by side."""
    z = zone(tz)
    x = [_when(h["start"], z) for h in hours]
    data = np.array([h["data"] for h in hours], dtype=bool)
    s1 = np.where(data, [h["scope1_co2e_kg"] for h in hours], np.nan)
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4), sharey=True)
    for ax, method in zip(axes, ("location", "market")):
        s2 = np.where(data, [h[f"scope2_{method}_co2e_kg"] for h in hours], np.nan)
        if len(hours) <= 96:
            width = 1 / 24 * 0.9
            ax.bar(x, np.nan_to_num(s1), width=width, align="edge", label="Scope 1")
            ax.bar(x, np.nan_to_num(s2), width=width, align="edge", bottom=np.nan_to_num(s1), label=f"Scope 2 {method}")
        else:
            ax.stackplot(x, np.nan_to_num(s1), np.nan_to_num(s2), labels=["Scope 1", f"Scope 2 {method}"], step="post")
        ax.set_title(f"Scope 1 + Scope 2 {method}-based, per hour")
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m-%d %H:%M" if len(hours) <= 96 else "%Y-%m-%d", tz=z))
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        ax.set_xlabel(f"hour ({tz or 'UTC'})")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("kg CO2e per hour")
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
