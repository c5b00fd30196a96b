"""XLSX report for the teams that live in spreadsheets: one sheet per inventory table, plus the records."""

from __future__ import annotations

from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Font

from factory_models import EmissionsRecord

from .tables import tables

RECORD_COLUMNS = ("site", "scope", "source", "method", "start", "end", "activity", "activity_unit", "co2e_kg",
                  "co2_kg", "ch4_kg", "n2o_kg", "factor_id", "factor_version", "gwp_set", "data_quality")


def _sheet_name(title: str) -> str:
    return "".join(c for c in title if c not in "[]:*?/\\")[:31]


def write_xlsx(inventory: dict, records: list[EmissionsRecord], out_path: Path) -> None:
    wb = Workbook()
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
            width = max([len(str(name))] + [len(str(r[i - 1])) for r in rows if r[i - 1] is not None])
            ws.column_dimensions[ws.cell(1, i).column_letter].width = min(max(10, width + 2), 80)
    ws = wb.create_sheet("Records")
    ws.append(list(RECORD_COLUMNS))
    for c in ws[1]:
        c.font = bold
    for r in sorted(records, key=lambda r: (r.start, r.scope, r.source, r.method)):
        d = r.to_json()
        ws.append([d[k] for k in RECORD_COLUMNS])
    wb.save(out_path)
