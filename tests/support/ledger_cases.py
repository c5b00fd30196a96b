"""Factories and sample CSVs for the ledger's end-to-end tests (replay into a store)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from typer.testing import CliRunner

from factory_models.records import iso_utc
from twin.cli import app
from twin.store import Store

HOUR = 3600.0
FACTORY = """
site: {{name: ledger-site, country: CN, timezone: Asia/Shanghai}}
products: [{{name: pcb-a}}]
lines:
  - name: line1
    stations:
      - name: reflow
        cycle_time_s: {{pcb-a: 30}}
        power_kw: {{producing: 12, setup: 5, down: 2, idle: 3, planned_stop: 1, no_shift: 0}}
meters:
{meters}
carbon:
  grid_factor: cn-mee-2022-national  # 0.5366 kg CO2/kWh
  scope1_method: ipcc
  gwp_set: ar5
"""
METERS = {
    "grid": "  - {name: grid, kind: grid_import}",
    "grid_wrap": "  - {name: grid, kind: grid_import, rollover: 99999}",  # a five-digit register
    "pv": "  - {name: pv, kind: pv, peak_kw: 100}",
    "export": "  - {name: export, kind: grid_export}",
    "boiler": "  - {name: boiler, kind: natural_gas, on_shift_nm3_per_h: 10}",
}
runner = CliRunner()


def factory_file(tmp_path: Path, *meters: str) -> Path:
    path = tmp_path / f"factory-{'-'.join(meters) or 'none'}.yaml"
    body = "\n".join(METERS[m] for m in meters) if meters else "  []"
    path.write_text(FACTORY.format(meters=body))
    return path


def samples_file(path: Path, rows: list[tuple[float, str, float | str]]) -> Path:
    """A samples CSV (ts as RFC 3339 UTC, signal, value)."""
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["ts", "signal", "value", "quality"])
        for t, signal, value in sorted(rows, key=lambda r: r[0]):
            w.writerow([iso_utc(t), signal, value if isinstance(value, str) else repr(float(value)), "good"])
    return path


def register(t0: float, per_hour: list[float], signal: str, base: float = 0.0) -> list[tuple]:
    """Hourly readings of a cumulative register holding ``per_hour`` activity in each hour."""
    out, v = [(t0, signal, base)], base
    for h, x in enumerate(per_hour, start=1):
        v += x
        out.append((t0 + h * HOUR, signal, v))
    return out


def station_running(t0: float) -> list[tuple]:
    return [(t0, "line1/reflow/product", "pcb-a"), (t0, "line1/reflow/state", "PRODUCING")]


def replay(config: Path, samples: Path, *extra: str) -> dict:
    result = runner.invoke(app, ["replay", str(config), str(samples), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def held(store: Path, *args, **kw) -> list:
    with Store(store) as st:
        return st.emissions(*args, **kw)


def rewrites(store: Path, *args, **kw) -> int:
    with Store(store) as st:
        return st.emission_rewrites(*args, **kw)


def assert_emissions_are_the_stored_ones(doc: dict, store_path: Path, origin: str, config: Path, *,
                                        once: bool = True) -> None:
    """Every emissions figure a run printed is the sum of the ledger records the store holds for the
    run's hours (issue 11), each hour written once (``once``), and `report --origin` over those hours agrees."""
    import math

    import pytest

    with Store(store_path) as store:
        recs = store.emissions(origin=origin)
        assert recs and (not once or store.emission_rewrites() == 0)
        assert {r.origin for r in store.emissions()} == {origin}
    em = doc["emissions"]
    s1 = math.fsum(r.co2e_kg for r in recs if r.scope == "1")
    s2 = math.fsum(r.co2e_kg for r in recs if r.method == "location")
    assert s2 > 0
    assert em["scope1_co2e_kg"] == pytest.approx(s1, rel=1e-6)
    assert em["scope2_location_co2e_kg"] == pytest.approx(s2, rel=1e-6)
    assert em["hours"] == len({r.start for r in recs}) and em["origin"] == [origin]
    assert doc["site"]["co2e_kg"] == pytest.approx(s1 + s2, rel=1e-6)
    first, last = min(r.start for r in recs), max(r.end for r in recs)
    out = store_path.parent / "report.json"
    result = runner.invoke(app, ["report", "--store", str(store_path), "--origin", origin, "--from", iso_utc(first),
                                 "--to", iso_utc(last), "--format", "json", "--out", str(out), "--config",
                                 str(config), "--json"])
    assert result.exit_code == 0, result.output
    totals = json.loads(out.read_text())["totals"]
    assert totals["scope1_co2e_kg"] == pytest.approx(em["scope1_co2e_kg"], rel=1e-6)
    assert totals["scope2_location_co2e_kg"] == pytest.approx(em["scope2_location_co2e_kg"], rel=1e-6)
