"""Product footprints in a report: electricity at the effective intensity of what the site consumed
(grid import plus self-consumed PV), and a product that made nothing gets zero and a note."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from support.ledger_rows import hours_of

from carbon import CarbonConfig, Registry
from factory_models import load_factory
from factory_models.records import KpiWindow
from twin.emissions.products import ProductUse
from twin.emissions.report import write_period_report
from twin.store import Store

MAR1 = datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp()  # 08:00 in Shanghai, the demo factory's zone


def test_pv_dilutes_station_co2e_and_an_unmade_product_gets_zero(tmp_path):
    factory = load_factory("configs/demo_smt.yaml")  # products ctrl-board and power-board
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        st.write_emissions(hours_of("sz", "grid", "2", "location", "kWh", MAR1, 2, 100.0, 0.5)
                           + hours_of("sz", "pv", "2", "onsite", "kWh", MAR1, 2, 50.0, 0.0)
                           + hours_of("sz", "export", "2", "export", "kWh", MAR1, 2, 20.0, 0.0))
        st.write_windows([KpiWindow("sz", "smt", "printer", MAR1 + 3600 * h, MAR1 + 3600 * (h + 1), energy_kwh=60.0)
                          for h in (0, 1)])
        h1 = MAR1 + 3600
        st.write_product_use([
            ProductUse("smt", "printer", "power-board", MAR1, h1, 3600.0, 10, 10, True),
            ProductUse("smt", "printer", "power-board", h1, h1 + 3600, 1800.0, 5, 5, True),
            ProductUse("smt", "printer", "ctrl-board", h1, h1 + 3600, 1800.0, 0, 0, True),  # unfinished
        ], "sz")
    inv = write_period_report(path, MAR1, MAR1 + 7200, "json", tmp_path / "r.json", factory=factory,
                              carbon_cfg=CarbonConfig(grid_factor="cn-mee-2023-national"), registry=Registry.default(),
                              origin="measured")
    p = {x["product"]: x for x in inv["products"]["products"]}
    # 100 kg of grid CO2e over 200 kWh imported + 100 kWh of PV self-consumed (exports excluded): 1/3 kg/kWh.
    # The printer's 120 kWh: 40 kg; the rest of the site, 180 kWh, carries the other 60 kg.
    assert p["power-board"]["submetered_co2e_kg"] == pytest.approx(40.0, abs=1e-9)
    assert p["power-board"]["total_co2e_kg"] == pytest.approx(100.0, abs=1e-9)
    assert p["power-board"]["co2e_kg_per_unit"] == pytest.approx(100.0 / 15, abs=1e-9)
    assert p["ctrl-board"]["total_co2e_kg"] == 0.0 and p["ctrl-board"]["good_units"] == 0
    assert "not produced in the period: zero allocation" in p["ctrl-board"]["flags"]
    assert any(n.startswith("product ctrl-board: no good unit in the period, zero allocation; its 1,800 s")
               for n in inv["notes"])
    assert inv["products"]["electricity_kg_co2e_per_kwh"] == pytest.approx(1 / 3, abs=1e-12)


def test_no_product_data_is_a_note_not_an_error(tmp_path):
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        st.write_emissions(hours_of("sz", "grid", "2", "location", "kWh", MAR1, 2, 100.0, 0.5))
    inv = write_period_report(path, MAR1, MAR1 + 7200, "json", tmp_path / "r.json", factory=None,
                              carbon_cfg=None, registry=Registry.default(), tz="UTC")
    assert inv["products"] is None
    assert inv["notes"][-1].startswith("no machine time per product in the store for this period")


def test_product_use_per_clock_hour_adds_up_to_the_whole_run():
    from carbon import hour_edges
    from twin.emissions.products import product_use
    from twin.model import simulate

    factory = load_factory("configs/demo_smt.yaml")
    frozen = simulate(factory, 14.0, seed=2).freeze()  # the day shift starts at 08:00
    edges = hour_edges(frozen.t_start, frozen.t_end, "Asia/Shanghai")
    whole = product_use(factory, frozen)
    hourly = product_use(factory, frozen, edges=edges)
    assert len({(u.start, u.end) for u in hourly}) > 1
    assert all(u.end - u.start <= 3600.0 for u in hourly)
    for field in ("machine_time_s", "produced", "good"):
        total = {}
        for u in hourly:
            total[(u.station, u.product)] = total.get((u.station, u.product), 0.0) + getattr(u, field)
        assert total == pytest.approx({(u.station, u.product): getattr(u, field) for u in whole}, abs=1e-6), field
