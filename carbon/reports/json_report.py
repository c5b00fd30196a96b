"""JSON report: the inventory dict as it is, for machines.

Indented, except the hours: one compact line per hour (a year is 8,760 of them; the indenting
encoder would take most of a report's time for them).
"""

from __future__ import annotations

import json
from pathlib import Path

_HOURS = "\"__hours__\""


def inventory_json(inventory: dict) -> str:
    hours = inventory.get("hours")
    if not hours:
        return json.dumps(inventory, indent=2, ensure_ascii=False) + "\n"
    text = json.dumps({**inventory, "hours": "__hours__"}, indent=2, ensure_ascii=False)
    # one call of the C encoder for all hours, then a line break between them (the rows hold numbers,
    # booleans and times only, so "}, {" occurs nowhere else)
    flat = json.dumps(hours, ensure_ascii=False, separators=(", ", ": "))
    rows = "[\n    " + flat[1:-1].replace("}, {", "},\n    {") + "\n  ]"
    return text.replace(_HOURS, rows, 1) + "\n"


def write_json(inventory: dict, out_path: Path) -> None:
    out_path.write_text(inventory_json(inventory), encoding="utf-8")
