"""JSON report: the inventory dict as it is, for machines."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(inventory: dict, out_path: Path) -> None:
    out_path.write_text(json.dumps(inventory, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
