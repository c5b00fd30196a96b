"""Small factory models that several tests share."""

from __future__ import annotations

from factory_models import Factory

POWER = {"producing": 5, "setup": 2, "down": 1, "idle": 1.5, "planned_stop": 0.5, "no_shift": 0.2}


def small_factory() -> Factory:
    return Factory.model_validate(
        {
            "site": {"name": "suzhou-smt"},
            "products": [{"name": "pcb-a"}],
            "lines": [
                {
                    "name": "line1",
                    "stations": [
                        {"name": "printer", "cycle_time_s": {"pcb-a": 20}, "power_kw": POWER},
                        {"name": "cnc", "machines": 2, "cycle_time_s": {"pcb-a": 40}, "power_kw": POWER},
                    ],
                }
            ],
            "meters": [
                {"name": "grid", "kind": "grid_import"},
                {"name": "gas", "kind": "natural_gas", "on_shift_nm3_per_h": 3},
            ],
        }
    )
