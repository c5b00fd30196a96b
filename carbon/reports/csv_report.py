"""CSV report for machines: one long table, ``section`` naming the inventory table each row belongs to."""

from __future__ import annotations

import csv
from pathlib import Path

from .tables import tables


def write_csv(inventory: dict, out_path: Path) -> None:
    with out_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["section", "row", "field", "value"])
        for title, header, rows in tables(inventory):
            for i, row in enumerate(rows):
                for name, value in zip(header, row):
                    w.writerow([title, i, name, "" if value is None else value])
