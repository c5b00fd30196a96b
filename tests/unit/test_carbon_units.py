"""Units by dimension: valid conversions convert, invalid ones fail with a message."""

import numpy as np
import pytest

from carbon.units import Quantity, UnitError, convert, parse_unit


def test_energy_and_mass_conversions():
    assert convert(1.0, "MWh", "kWh") == 1000.0
    assert convert(3.6, "GJ", "kWh") == pytest.approx(1000.0)
    assert convert(1.0, "t CO2e", "kg CO2e") == 1000.0
    assert convert(389.31, "GJ/Nm3", "MJ/Nm3") == pytest.approx(389310.0)
    assert np.allclose(convert(np.array([1.0, 2.0]), "g CH4", "kg CH4"), [0.001, 0.002])


@pytest.mark.parametrize(
    "src, dst",
    [("kWh", "Nm3"), ("kg CO2", "kg CO2e"), ("kg CO2", "kg"), ("Nm3", "m3"), ("kg CO2/kWh", "kg CO2/GJ/h")],
)
def test_invalid_conversions_are_errors(src, dst):
    with pytest.raises(UnitError):
        convert(1.0, src, dst)


def test_unknown_unit_and_substance():
    with pytest.raises(UnitError, match="unknown unit"):
        parse_unit("kwh")
    with pytest.raises(UnitError, match="unknown substance"):
        parse_unit("kg CO3")
    with pytest.raises(UnitError, match="only a mass"):
        parse_unit("kWh CO2")


def test_factor_must_fit_activity():
    grid = Quantity(120000.0, "kWh")
    assert grid.times_factor(0.5366, "kg CO2/kWh").value == pytest.approx(64392.0)
    assert Quantity(120.0, "MWh").times_factor(0.5366, "kg CO2/kWh").value == pytest.approx(64392.0)
    with pytest.raises(UnitError, match="applies to energy"):
        Quantity(8000.0, "Nm3").times_factor(0.5366, "kg CO2/kWh")


def test_adding_co2_to_co2e_is_an_error():
    with pytest.raises(UnitError):
        Quantity(1.0, "kg CO2e") + Quantity(1.0, "kg CO2")
    assert (Quantity(1.0, "t CO2e") + Quantity(500.0, "kg CO2e")).value == 1.5
