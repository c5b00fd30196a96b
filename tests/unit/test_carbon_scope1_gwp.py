"""Scope 1 combustion CH4 under each GWP set: AR6 applies fossil methane's 29.8 (IPCC AR6 WG I, Chapter 7,
Table 7.15), since methane from burning a fossil fuel is fossil carbon. Figures worked by hand."""

import pytest

from carbon import Registry
from carbon.scope1 import fuel_emissions


@pytest.fixture(scope="module")
def reg():
    return Registry.default()


def test_natural_gas_ch4_uses_the_fossil_gwp_under_ar6(reg):
    # 8,000 Nm3 x 38.931 MJ/Nm3 = 0.311448 TJ; IPCC 2006 Table 2.3: CO2 56,100, CH4 1, N2O 0.1 kg/TJ
    r = fuel_emissions(8000.0, "Nm3", "natural_gas", "ipcc", reg, reg.gwp("ar6"))
    assert float(r.ch4_kg) == pytest.approx(0.311448)
    # CO2e = 17,472.2328 + 0.311448 x 29.8 + 0.0311448 x 273 = 17,472.2328 + 9.2811504 + 8.5025304
    assert float(r.co2e_kg) == pytest.approx(17_490.0164808, abs=1e-6)
    # with the general AR6 methane value of before (27.9) it was 0.59 kg less
    assert float(r.co2e_kg) - (17_472.2328 + 0.311448 * 27.9 + 0.0311448 * 273) == pytest.approx(0.311448 * 1.9)


def test_ar5_and_ar4_keep_their_methane_value(reg):
    r5 = fuel_emissions(8000.0, "Nm3", "natural_gas", "ipcc", reg, reg.gwp("ar5"))
    assert float(r5.co2e_kg) == pytest.approx(17_472.2328 + 0.311448 * 28 + 0.0311448 * 265, abs=1e-6)  # 17,489.21
    r4 = fuel_emissions(8000.0, "Nm3", "natural_gas", "ipcc", reg, reg.gwp("ar4"))
    assert float(r4.co2e_kg) == pytest.approx(17_472.2328 + 0.311448 * 25 + 0.0311448 * 298, abs=1e-6)
