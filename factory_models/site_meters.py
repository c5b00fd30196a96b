"""The site meters of a factory model: grid import and export, on-site PV, natural gas and
compressed air, each a cumulative register read by the twin (signal ``site/<meter>/...``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import Fraction, Name, NonNegative, Positive, Strict


class BaseLoad(Strict):
    """Loads on a meter that no station meter sees (lighting, HVAC, IT), kW."""

    on_shift_kw: NonNegative = 0.0
    off_shift_kw: NonNegative = 0.0


#: a meter's counter maximum: the register wraps to 0 after it (e.g. 99999999 for an 8-digit register);
#: None: it never wraps, so every decrease is a reset or a replaced meter (docs/carbon.md)
Rollover = Annotated[float, Field(gt=0)] | None


class GridMeter(Strict):
    name: Name
    kind: Literal["grid_import"]
    base_load: BaseLoad = BaseLoad()
    rollover: Rollover = None


class ExportMeter(Strict):
    """Electricity exported to the grid (surplus on-site generation), a cumulative kWh register:
    signal ``site/<meter>/energy_kwh``. Self-consumed generation = generated - exported, per hour."""

    name: Name
    kind: Literal["grid_export"]
    rollover: Rollover = None


class PvMeter(Strict):
    name: Name
    kind: Literal["pv"]
    peak_kw: Positive  # DC nameplate x inverter efficiency: AC output at clear-sky noon
    sunrise_h: Annotated[float, Field(ge=0, le=12)] = 6.0  # local solar time
    sunset_h: Annotated[float, Field(ge=12, le=24)] = 18.0
    cloudiness: Fraction = 0.3  # mean fraction of clear-sky output lost to cloud
    rollover: Rollover = None


class GasMeter(Strict):
    name: Name
    kind: Literal["natural_gas"]
    on_shift_nm3_per_h: NonNegative
    off_shift_nm3_per_h: NonNegative = 0.0
    ncv_mj_per_nm3: Positive = 38.931  # net calorific value; GB/T default (389.31 GJ per 10^4 Nm3)
    rollover: Rollover = None


class AirMeter(Strict):
    name: Name
    kind: Literal["compressed_air"]
    compressor_kw: Positive  # electric input at full load, included in the grid import
    specific_power_kw_per_m3_min: Positive = 6.5  # typical screw compressor at 7 bar
    on_shift_load: Fraction = 0.6
    off_shift_load: Fraction = 0.1
    rollover: Rollover = None


Meter = Annotated[GridMeter | ExportMeter | PvMeter | GasMeter | AirMeter, Field(discriminator="kind")]
