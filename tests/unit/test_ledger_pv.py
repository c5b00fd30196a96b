"""On-site generation with export (issue 11, item 5): self-consumed = generated - exported per hour,
only imports carry Scope 2, and station CO2e uses the hour's effective intensity. Worked by hand.

Four hours, kWh:   hour       0     1     2     3
                   generated  0    50    80    30
                   exported   0    10    40    35   (hour 3: more than generated -> clipped, warned)
                   imported 100    70    60    90
self-consumed = 0, 40, 40, 0 = 80 kWh (the old code counted all 160 kWh generated as self-consumed);
location-based = 320 kWh x 0.5366 = 171.712 kg; effective intensity = import kg / (import + self):
0.5366, 37.562 / 110, 32.196 / 100, 0.5366 kg/kWh.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from carbon import (
    CarbonConfig,
    Registry,
    effective_intensity,
    emissions_summary,
    hour_edges,
    hourly_activity,
    ledger_records,
)
from tests.support.ledger_cases import (
    factory_file,
    held,
    register,
    replay,
    samples_file,
    station_running,
)

T0 = datetime(2026, 3, 2, 2, tzinfo=UTC).timestamp()  # 10:00 in Shanghai
GEN, EXP, IMP = [0.0, 50.0, 80.0, 30.0], [0.0, 10.0, 40.0, 35.0], [100.0, 70.0, 60.0, 90.0]
F = 0.5366
INTENSITY = [F, 70 * F / 110, 60 * F / 100, F]


def act(name, kind, per_hour, edges):
    rows = register(T0, per_hour, name)
    return hourly_activity(name, kind, "kWh", [r[0] for r in rows], [r[2] for r in rows], edges)


def test_self_consumption_is_generation_less_export_hour_by_hour():
    edges = hour_edges(T0, T0 + 4 * 3600, "Asia/Shanghai")
    meters = [act("grid", "grid_import", IMP, edges), act("pv", "pv", GEN, edges), act("export", "grid_export", EXP, edges)]
    cfg = CarbonConfig(grid_factor="cn-mee-2022-national")
    book = ledger_records(meters, cfg, Registry.default(), site="s", origin="simulated")
    onsite = [r for r in book.records if r.method == "onsite"]
    export = [r for r in book.records if r.method == "export"]
    assert [r.activity for r in onsite] == pytest.approx([0.0, 40.0, 40.0, 0.0])
    assert {r.source for r in onsite} == {"pv"} and {r.source for r in export} == {"export"}
    assert [r.activity for r in export] == pytest.approx(EXP)
    assert all(r.co2e_kg == 0.0 and r.scope == "2" for r in onsite + export)
    assert book.clipped_hours == 1 and any("clipped to 0" in w for w in book.warnings)
    s = emissions_summary(book.records)
    assert s["onsite_kwh"] == pytest.approx(80.0) and s["export_kwh"] == pytest.approx(85.0)
    assert s["scope2_location_co2e_kg"] == pytest.approx(320 * F, rel=1e-12)  # only imports carry Scope 2
    assert list(effective_intensity(book.records, edges)) == pytest.approx(INTENSITY, rel=1e-12)


def test_replay_with_pv_and_export_gives_station_co2e_of_the_sites_intensity(tmp_path):
    """The reflow draws 10 kWh every hour: its CO2e = 10 x (sum of the four hours' intensities)."""
    config = factory_file(tmp_path, "grid", "pv", "export")
    rows = station_running(T0) + register(T0, [10.0] * 4, "line1/reflow/energy_kwh")
    rows += register(T0, IMP, "site/grid/energy_kwh") + register(T0, GEN, "site/pv/energy_kwh", base=5000.0)
    rows += register(T0, EXP, "site/export/energy_kwh", base=700.0)
    store = tmp_path / "pv.sqlite"
    doc = replay(config, samples_file(tmp_path / "pv.csv", rows), "--store", str(store))
    em = doc["emissions"]
    assert em["onsite_kwh"] == pytest.approx(80.0) and em["export_kwh"] == pytest.approx(85.0)
    assert em["scope2_location_co2e_kg"] == pytest.approx(171.712, rel=1e-9)
    (reflow,) = doc["stations"]
    assert reflow["energy_kwh"] == pytest.approx(40.0)
    assert reflow["co2e_kg"] == pytest.approx(10.0 * sum(INTENSITY), rel=1e-9)  # 17.3663...
    assert doc["site"]["co2e_kg"] == pytest.approx(171.712, rel=1e-9)
    assert any("clipped to 0" in n for n in em["notes"])
    recs = held(store, origin="measured")
    assert sum(r.activity for r in recs if r.method == "onsite") == pytest.approx(80.0)
    assert {r.start for r in recs} == {T0 + 3600.0 * h for h in range(4)}


def test_the_sites_kpi_energy_is_the_ledgers_for_the_same_hours(tmp_path):
    """Hourly windows: the site's KPI energy = grid import + self-consumed = 100, 110, 100, 90 kWh."""
    config = factory_file(tmp_path, "grid", "pv", "export")
    rows = station_running(T0) + register(T0, IMP, "site/grid/energy_kwh") + register(T0, GEN, "site/pv/energy_kwh")
    rows += register(T0, EXP, "site/export/energy_kwh") + register(T0, [10.0] * 4, "line1/reflow/energy_kwh")
    store = tmp_path / "kpi.sqlite"
    doc = replay(config, samples_file(tmp_path / "k.csv", rows), "--window", "1h", "--store", str(store))
    site = [w for w in doc["windows"] if "line" not in w]
    assert [w["energy_kwh"] for w in site] == pytest.approx([100.0, 110.0, 100.0, 90.0])
    ledger = {}
    for r in held(store):
        if r.method in ("location", "onsite"):
            ledger[r.start] = ledger.get(r.start, 0.0) + r.activity
    assert [ledger[T0 + 3600.0 * h] for h in range(4)] == pytest.approx([w["energy_kwh"] for w in site])
    # and the site's CO2e of each hour is that hour's record
    assert [w["co2e_kg"] for w in site] == pytest.approx([x * F for x in IMP], rel=1e-9)
    # every station window with energy carries its CO2e: 10 kWh x the hour's effective intensity
    reflow = [w for w in doc["windows"] if w.get("station") == "reflow"]
    assert [w["co2e_kg"] for w in reflow] == pytest.approx([10.0 * i for i in INTENSITY], rel=1e-9)


def test_a_simulated_export_meter_takes_the_surplus_and_the_ledger_splits_generation():
    """demo_smt with a 2 MW roof and an export meter: every hour, self-consumed + exported = generated,
    and the grid import plus self-consumed is what the site drew (the model nets them per reading)."""
    import yaml

    from factory_models import Factory
    from twin.emissions.account import account_log, carbon_setup
    from twin.kpi import compute_kpis
    from twin.model import simulate

    data = yaml.safe_load(open("configs/demo_smt.yaml", encoding="utf-8"))
    for m in data["meters"]:
        if m["kind"] == "pv":
            m["peak_kw"] = 2000.0
    data["meters"].append({"name": "export", "kind": "grid_export"})
    factory = Factory.model_validate(data)
    frozen = simulate(factory, 24.0, seed=1).freeze()
    report = compute_kpis(frozen, factory)
    em = account_log(factory, frozen, report, *carbon_setup(factory, None), origin="simulated")
    exported = sum(r.activity for r in em.records if r.method == "export")
    assert exported > 100.0  # a sunny noon exports
    assert not any("clipped" in n for n in em.notes)  # the model never exports more than it generates
    # generation is all accounted: what was used on site plus what left it
    total_gen = frozen_meter_total(frozen, factory, "pv")
    assert em.summary["onsite_kwh"] + em.summary["export_kwh"] == pytest.approx(total_gen, rel=1e-9)
    grid = sum(r.activity for r in em.records if r.method == "location" and r.activity_unit == "kWh")
    assert report.site.energy_kwh == pytest.approx(grid + em.summary["onsite_kwh"], rel=1e-9)


def frozen_meter_total(frozen, factory, name):
    from twin.kpi.eventlog import N_CHANNELS, Channel

    u = frozen.n_stations + [m.name for m in factory.meters].index(name)
    k = u * N_CHANNELS + Channel.ENERGY_KWH
    a, b = frozen.counters.offsets[k], frozen.counters.offsets[k + 1]
    return float(frozen.counters.value[b - 1] - frozen.counters.value[a])
