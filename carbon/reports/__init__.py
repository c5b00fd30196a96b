"""Report writers: csv, xlsx, json, pdf, pact and cbam, all rendering one inventory (carbon.inventory)."""

from __future__ import annotations

from pathlib import Path

from ..allocation import Allocation
from ..config import CarbonConfig
from ..inventory import build_inventory
from ..registry import Registry

FORMATS = ("csv", "xlsx", "json", "pdf", "pact", "cbam")


def check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"unknown report format {fmt!r}; expected one of {', '.join(FORMATS)}")


def write_inventory(inv: dict, fmt: str, out_path: str | Path, country: str | None = None,
                    config: CarbonConfig | None = None) -> dict:
    """Write an inventory (``carbon.inventory.inventory_of``) to ``out_path`` in ``fmt``."""
    check_format(fmt)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if getattr(config, "cbam", None) is not None and inv.get("products") and fmt in ("json", "csv", "xlsx", "pdf"):
        from .cbam import attach_cbam  # the CBAM contents travel in every format that shows the inventory

        attach_cbam(inv, config.cbam, strict=False)
    if fmt == "json":
        from .json_report import write_json

        write_json(inv, out_path)
    elif fmt == "csv":
        from .csv_report import write_csv

        write_csv(inv, out_path)
    elif fmt == "xlsx":
        from .xlsx_report import write_xlsx

        write_xlsx(inv, out_path)
    elif fmt == "pdf":
        from .pdf_report import write_pdf

        write_pdf(inv, out_path)
    elif fmt == "pact":
        from .pact import write_pact

        if not inv.get("products"):
            raise ValueError("the pact format needs product footprints: pass an allocation")
        write_pact(inv, out_path, country or (config.site_country if config else "CN"), getattr(config, "pact", None))
    elif fmt == "cbam":
        from .cbam import write_cbam

        write_cbam(inv, out_path, getattr(config, "cbam", None))
    return inv


def write_report(
    records,
    allocation: Allocation | None,
    registry: Registry,
    fmt: str,
    out_path: str | Path,
    period: tuple[float, float],
    site: str,
    config: CarbonConfig | None = None,
    country: str | None = None,
    tz: str | None = "UTC",
) -> dict:
    """Write the report of ``records`` (in memory) over ``period`` to ``out_path`` in ``fmt``; returns
    the inventory. Every format carries ``inventory["inputs_sha256"]``, the SHA-256 of the inputs."""
    check_format(fmt)
    if not records:
        raise ValueError(f"no emissions records for site {site!r} in the period; nothing to report")
    inv = build_inventory(records, registry, period, site, allocation, config, tz)
    return write_inventory(inv, fmt, out_path, country, config)
