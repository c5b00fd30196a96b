"""A worked quarter for the PACT and CBAM formats, with figures simple enough to check by hand.

Site ``plant1`` in Asia/Shanghai, 2026 Q1 (2025-12-31 16:00 UTC to 2026-03-31 16:00 UTC, 2160
clock hours), every hour:

- grid import 100 kWh at 0.55 kg CO2/kWh (cn-mee-2023-grid-east): 55 kg; the first 216 hours
  (10 % of the grid's activity) are estimated in full;
- rooftop PV self-consumed 20 kWh at 0 kg;
- natural gas 10 Nm3: 20 kg CO2e (Scope 1), all measured.

Quarter: grid 216,000 kWh and 118,800 kg; PV 43,200 kWh; gas 43,200 kg; consumed electricity
259,200 kWh. One press uses all of it, 3 h on A for each 1 h on B: A 194,400 kWh, B 64,800 kWh,
priced at the effective 118,800 / 259,200 kg/kWh: A 89,100 kg, B 29,700 kg. The gas is shared by
machine time: A 32,400 kg, B 10,800 kg. Good units: A 100,000 of 0.5 kg (50 t), B 20,000 of 1.0 kg
(20 t).
"""

from __future__ import annotations

from datetime import UTC, datetime

from carbon import (
    CarbonConfig,
    ProductOutput,
    Registry,
    SharedLoad,
    StationUse,
    allocate,
    build_inventory,
)
from carbon.exchange_config import PactProduct, PactSettings
from factory_models import EmissionsRecord

T0 = datetime(2025, 12, 31, 16, tzinfo=UTC).timestamp()
T1 = datetime(2026, 3, 31, 16, tzinfo=UTC).timestamp()
HOURS = int((T1 - T0) // 3600)  # 2160
TZ = "Asia/Shanghai"
SITE = "plant1"
CFG = CarbonConfig(grid_factor="cn-mee-2023-grid-east", instruments=[])
#: the PACT values meters cannot tell, for the two products
PACT = PactSettings(domain="example.com", exempted_emissions_percent=60.0,
                    products={"board-a": PactProduct(fossil_carbon_content_kg=0.05,
                                                     classifications=["urn:pact:example.com:cn-code:85340011"]),
                              "board-b": PactProduct(fossil_carbon_content_kg=0.1, name="Board B")})


def records(origin: str = "measured") -> list[EmissionsRecord]:
    out = []
    for h in range(HOURS):
        s = T0 + 3600 * h
        est = h < 216
        common = {"site": SITE, "start": s, "end": s + 3600, "origin": origin, "gwp_set": "ar5"}
        out.append(EmissionsRecord(scope="2", source="grid", method="location", activity=100.0, activity_unit="kWh",
                                   co2e_kg=55.0, co2_kg=55.0, factor_id="cn-mee-2023-grid-east",
                                   data_quality="estimated" if est else "measured",
                                   estimated_activity=100.0 if est else 0.0, **common))
        out.append(EmissionsRecord(scope="2", source="pv", method="onsite", activity=20.0, activity_unit="kWh",
                                   co2e_kg=0.0, factor_id="ghgp-onsite-renewable", **common))
        out.append(EmissionsRecord(scope="1", source="gas", method="direct", activity=10.0, activity_unit="Nm3",
                                   co2e_kg=20.0, co2_kg=20.0, factor_id="ipcc2006-t2.3-natural_gas-co2", **common))
    return out


def allocation():
    return allocate([StationUse("line/press", 259_200.0, machine_time_s={"board-a": 3.0e6, "board-b": 1.0e6})],
                    [ProductOutput("board-a", 100_000, 0.5), ProductOutput("board-b", 20_000, 1.0),
                     ProductOutput("spare", 0, 2.0)],
                    [SharedLoad("gas (Scope 1)", "fuel", 43_200.0)], 118_800.0 / 259_200.0)


def inventory(origin: str = "measured", config: CarbonConfig = CFG) -> dict:
    return build_inventory(records(origin), Registry.default(), (T0, T1), SITE, allocation(), config, TZ)
