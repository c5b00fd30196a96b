"""PDF report for people (fpdf2): totals, charts over time and per product, tables, factor appendix,
method statement and the SHA-256 digest of the inputs."""

from __future__ import annotations

import io
from pathlib import Path

from fpdf import FPDF

from .charts import products_png, timeline_png
from .tables import tables


def _text(x) -> str:
    # core PDF fonts are Latin-1; anything else becomes '?' rather than failing the report
    return str(x).encode("latin-1", "replace").decode("latin-1")


def fmt_num(x) -> str:
    """Numbers as the PDF prints them: thousands separators, 2 decimals (kg), or as is."""
    if isinstance(x, bool) or x is None:
        return "" if x is None else str(x)
    if isinstance(x, (int, float)):
        # kg figures to the cent; small gas masses (CH4, N2O) keep four significant digits
        return f"{x:,.2f}" if abs(x) >= 10 or x == 0 else f"{x:.4g}"
    return str(x)


class _Pdf(FPDF):
    def __init__(self, footer_text: str):
        super().__init__(orientation="P", unit="mm", format="A4")
        self._footer_text = footer_text
        self.set_auto_page_break(True, margin=15)

    def footer(self):
        self.set_y(-12)
        self.set_font("Helvetica", size=7)
        self.cell(0, 5, _text(f"{self._footer_text}   page {self.page_no()}"), align="C")


def _table(pdf: _Pdf, title: str, header: list[str], rows: list[list], widths: list[float] | None = None, size: float = 7.5):
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 7, _text(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=size)
    with pdf.table(col_widths=widths, text_align="LEFT", line_height=1.5 * size / 2.2 + 1) as t:
        r = t.row()
        for h in header:
            r.cell(_text(h))
        for row in rows:
            r = t.row()
            for v in row:
                r.cell(_text(fmt_num(v)))
    pdf.ln(3)


def write_pdf(inventory: dict, out_path: Path) -> None:
    inv = inventory
    cov = inv.get("coverage") or {}
    pdf = _Pdf(f"inputs SHA-256 {inv['inputs_sha256']}")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.cell(0, 9, _text(f"Carbon inventory - site {inv['site']}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=9)
    period = inv["period"]
    for line in (
        f"Period: {period.get('start_local', period['start'])} to {period.get('end_local', period['end'])} "
        f"({period['start']} to {period['end']})",
        f"Origin: {inv.get('origin', 'measured')} records. Coverage: {cov.get('hours_with_data')} of "
        f"{cov.get('hours_in_period')} hours with data, {cov.get('estimated_hours')} estimated"
        + ("" if cov.get("complete") else " - PARTIAL"),
        f"Factor registry {inv['registry_version']}, GWP set {inv['gwp_set']['id'].upper()}",
        f"Inputs SHA-256: {inv['inputs_sha256']}",
        f"Registry SHA-256: {inv['registry_sha256']}",
    ):
        pdf.cell(0, 5, _text(line), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)
    # the disclosures sit on the first page: a partly covered period is never shown as complete
    for d in inv.get("disclosures", []) + inv.get("notes", []):
        partial = d.startswith("PARTIAL")
        pdf.set_font("Helvetica", "B" if partial else "", 8.5 if partial else 8)
        pdf.set_text_color(170, 0, 0) if partial else pdf.set_text_color(0, 0, 0)
        pdf.multi_cell(0, 4, _text(d), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.ln(2)
    named = {title: (header, rows) for title, header, rows in tables(inv, hours=False)}
    _table(pdf, "Totals", *named["Totals"], widths=[80, 35, 35, 20], size=9)
    if inv.get("hours"):
        pdf.image(io.BytesIO(timeline_png(inv["hours"], period.get("timezone"))), w=180)
    pdf.ln(2)
    if inv.get("products"):
        pdf.image(io.BytesIO(products_png(inv["products"]["products"])), w=120)
    pdf.add_page()
    for title in ("Meters", "By source", "By gas", "ISO 14064-1 categories", "Data quality", "Instruments",
                  "Instruments refused", "Products", "Allocation method", "CBAM", "GWP set"):
        if title in named:
            header, rows = named[title]
            by_source = title == "By source"
            _table(pdf, title, header, rows, widths=[16, 9, 14, 20, 13, 19, 19, 13, 13, 54] if by_source else None,
                   size=6 if by_source or title in ("Meters", "CBAM") else 7.5)
    header, rows = named["Factor appendix"]
    keep = [header.index(k) for k in ("id", "value", "unit", "year", "document", "published", "secondary", "version")]
    _table(pdf, "Factor appendix", [header[i] for i in keep], [[r[i] for i in keep] for r in rows],
           widths=[30, 12, 16, 9, 70, 14, 12, 17], size=6)
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(0, 7, "Method statement", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", size=8)
    pdf.multi_cell(0, 4, _text(inv["method_statement"]))
    pdf.output(str(out_path))
