"""Allocation to products: sub-meters first, machine time or units for shared loads, method disclosed."""

import pytest

from carbon import AllocationError, ProductOutput, Registry, SharedLoad, StationUse, allocate, station_co2e


def test_station_co2e_helper():
    assert station_co2e(1000.0, 0.55) == pytest.approx(550.0)
    assert station_co2e(1000.0, Registry.default().get("cn-mee-2022-national")) == pytest.approx(536.6)


def test_every_kg_lands_on_a_product_and_method_is_disclosed():
    stations = [
        StationUse("l1/printer", 1000.0, machine_time_s={"a": 3000.0, "b": 1000.0}),
        StationUse("l1/reflow", 3000.0, units={"a": 100.0, "b": 300.0}),
        StationUse("l1/aoi", 500.0, machine_time_s={"a": 1.0}),
    ]
    shared = [SharedLoad("boiler", "fuel", 200.0), SharedLoad("lighting", "electricity", 55.0, energy_kwh=100.0, basis="units")]
    al = allocate(stations, [ProductOutput("a", 100, 2.0), ProductOutput("b", 400, 0.5)], shared, 0.5)
    a, b = al.products
    # printer 1000 kWh 3:1, reflow 3000 kWh 1:3, aoi all to a
    assert a.electricity_kwh == pytest.approx(750 + 750 + 500 + 20)
    assert b.electricity_kwh == pytest.approx(250 + 2250 + 80)
    # boiler by total machine time: a 3001 s, b 1000 s
    assert a.direct_co2e_kg == pytest.approx(200.0 * 3001 / 4001)
    assert a.total_co2e_kg + b.total_co2e_kg == pytest.approx(0.5 * 4500 + 200 + 55)
    assert a.co2e_kg_per_unit == pytest.approx(a.total_co2e_kg / 100)
    assert "sub-meters" in al.method and "machine time" in al.method and "by units at l1/reflow" in al.method
    assert "boiler, lighting" in al.method
    cbam = a.cbam()
    assert cbam["mass_t"] == pytest.approx(0.2)
    assert cbam["direct_see_t_per_t"] == pytest.approx(a.direct_co2e_kg / 1000 / 0.2)
    assert cbam["electricity_mwh_per_t"] == pytest.approx(a.electricity_kwh / 1000 / 0.2)


def test_station_without_a_basis_is_an_error_not_a_loss():
    with pytest.raises(AllocationError, match="no machine time or units"):
        allocate([StationUse("l1/x", 10.0)], [ProductOutput("a", 1), ProductOutput("b", 1)], [], 0.5)


def test_product_without_good_units_is_flagged():
    al = allocate([StationUse("l1/x", 10.0, machine_time_s={"a": 1.0, "b": 1.0})],
                  [ProductOutput("a", 5), ProductOutput("b", 0)], [], 0.5)
    b = al.products[1]
    assert b.co2e_kg_per_unit is None and b.total_co2e_kg == pytest.approx(2.5) and b.flags
