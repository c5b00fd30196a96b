"""``report``'s KPI side: a live run stores minute windows and, at its end, one window over the whole
run; the product footprints take each station's sub-metered energy once (twin/rollup.py picks)."""

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

MAR1 = datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp()


def test_the_whole_run_window_over_the_minutes_is_not_counted_again(tmp_path):
    factory = load_factory("configs/demo_smt.yaml")
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        st.write_emissions(hours_of("sz", "grid", "2", "location", "kWh", MAR1, 2, 150.0, 0.5))
        # the printer: 120 one-minute windows of 1 kWh each, and the run's window over them (120 kWh)
        st.write_windows([KpiWindow("sz", "smt", "printer", MAR1 + 60 * m, MAR1 + 60 * (m + 1), energy_kwh=1.0)
                          for m in range(120)]
                         + [KpiWindow("sz", "smt", "printer", MAR1, MAR1 + 7200, energy_kwh=120.0)])
        st.write_product_use([ProductUse("smt", "printer", "power-board", MAR1, MAR1 + 7200, 7200.0, 10, 10, True)], "sz")
    inv = write_period_report(path, MAR1, MAR1 + 7200, "json", tmp_path / "r.json", factory=factory,
                              carbon_cfg=CarbonConfig(grid_factor="cn-mee-2023-national"), registry=Registry.default(),
                              origin="measured")
    p = {x["product"]: x for x in inv["products"]["products"]}
    # 150 kg over 300 kWh imported: 0.5 kg/kWh; the printer's 120 kWh (not 240): 60 kg
    assert p["power-board"]["submetered_co2e_kg"] == pytest.approx(60.0, abs=1e-9)
    assert p["power-board"]["total_co2e_kg"] == pytest.approx(150.0, abs=1e-9)
