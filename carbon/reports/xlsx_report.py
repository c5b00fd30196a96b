"""XLSX report for the teams that live in spreadsheets: one sheet per inventory table, the ledger's
hours last. The first sheet (``Report``) carries coverage and disclosures."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font

from .tables import tables


def _sheet_name(title: str) -> str:
    return "".join(c for c in title if c not in "[]:*?/\\")[:31]


def write_xlsx(inventory: dict, out_path: Path) -> None:
    wb = Workbook(write_only=False)
    wb.remove(wb.active)
    bold = Font(bold=True)
    for title, header, rows in tables(inventory):
        ws = wb.create_sheet(_sheet_name(title))
        ws.append(header)
        for c in ws[1]:
            c.font = bold
        for row in rows:
            ws.append(row)
        for i, name in enumerate(header, start=1):
            # the widths of the first rows are enough; the hours sheet has thousands
            width = max([len(str(name))] + [len(str(r[i - 1])) for r in rows[:200] if r[i - 1] is not None])
            ws.column_dimensions[ws.cell(1, i).column_letter].width = min(max(10, width + 2), 80)
    wb.save(out_path)
