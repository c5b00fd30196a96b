"""The carbon accounting configuration: which factors, which method, which contractual instruments.

Loaded from a ``carbon:`` block of a YAML file, a file of its own, or built with
``CarbonConfig.for_site(site)``: defaults fit the demonstration factories (a site in China on the
East grid) so ``simulate`` needs no extra file. Instruments follow the GHG Protocol Scope 2
Quality Criteria (Scope 2 Guidance ch. 7): retired, same market, same vintage as the consumption.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from factory_models import ConfigError

from .exchange_config import CbamSettings, PactSettings
from .registry import Registry


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


#: certificate and contract kinds: China's GEC, the I-REC standard, US RECs, green PPAs; ``ppa`` and
#: ``supplier`` (a supplier-specific contract) are kept from earlier configs
INSTRUMENT_KINDS = ("gec", "i-rec", "rec", "green_ppa", "ppa", "supplier")


class Instrument(Strict):
    """A certificate (GEC, I-REC, REC), a green PPA or a supplier contract for Scope 2 market-based.

    Exactly one of ``kwh`` and ``mwh``. ``factor`` names the registry factor of the contracted
    power (renewable: zero). ``vintage`` is the calendar year, in the site's time zone, of the
    generation it covers: it is claimed only against consumption in that year, and within
    ``valid_from`` to ``valid_to`` (dates, both included) when given. Instruments that are not
    retired or are of another market are refused when a report is made, with the reason.
    """

    id: Annotated[str, Field(min_length=1, max_length=120)]
    kind: Literal["gec", "i-rec", "rec", "green_ppa", "ppa", "supplier"]
    kwh: Annotated[float, Field(gt=0)] | None = None
    mwh: Annotated[float, Field(gt=0)] | None = None
    vintage: Annotated[int, Field(ge=2000, le=2100)]
    market: Annotated[str, Field(min_length=2, max_length=2)]  # ISO 3166-1 alpha-2 of the market
    retired: bool
    factor: str = "ghgp-renewable-instrument"
    valid_from: date | None = None
    valid_to: date | None = None

    @model_validator(mode="after")
    def _volume(self) -> "Instrument":
        if (self.kwh is None) == (self.mwh is None):
            raise ValueError(f"instrument {self.id!r}: give exactly one of kwh and mwh")
        if self.valid_from and self.valid_to and self.valid_to < self.valid_from:
            raise ValueError(f"instrument {self.id!r}: valid_to {self.valid_to} is before valid_from {self.valid_from}")
        return self

    @property
    def volume_kwh(self) -> float:
        return self.kwh if self.kwh is not None else self.mwh * 1000.0


class CarbonConfig(Strict):
    site_country: str = "CN"
    grid_factor: str = "cn-mee-2023-grid-east"  # location-based: annual factor or a grid_hourly series
    # market-based, after instruments; None: no residual mix, the grid factor stands in (disclosed)
    residual_factor: str | None = "cn-mee-2023-excl-nonfossil"
    heat_factor: str = "cn-gbt-heat-default"
    onsite_factor: str = "ghgp-onsite-renewable"
    scope1_method: Literal["ipcc", "ndrc"] = "ipcc"
    gwp_set: Literal["ar4", "ar5", "ar6"] = "ar5"
    instruments: list[Instrument] = []
    factor_files: list[str] = []  # user factor YAML files, relative to the config file
    pact: PactSettings = PactSettings()  # report --format pact: ids, classifications (carbon/exchange_config.py)
    cbam: CbamSettings | None = None  # report --format cbam: the installation and CN codes

    @model_validator(mode="after")
    def _unique(self) -> "CarbonConfig":
        ids = [i.id for i in self.instruments]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            raise ValueError(f"instrument ids must be unique; repeated: {dup}")
        return self

    @classmethod
    def for_site(cls, site, **overrides) -> "CarbonConfig":
        """Defaults for a ``factory_models.schema.Site``: its country and, in China, its regional grid."""
        grid = "cn-mee-2023-national"
        if site.country == "CN" and site.grid_region:
            grid = f"cn-mee-2023-grid-{site.grid_region.lower()}"
        return cls(**{"site_country": site.country, "grid_factor": grid, **overrides})

    def registry(self, base_dir: str | Path = ".") -> Registry:
        """The shipped registry plus this config's factor files, checked against every id used here."""
        reg = Registry.load([Path(base_dir) / p for p in self.factor_files])
        self.check(reg)
        return reg

    def check(self, registry: Registry) -> None:
        """Every factor this config names exists and has the right kind; raises with all problems."""
        problems = []
        wanted = {
            "grid_factor": (self.grid_factor, ("grid_electricity", "grid_hourly", "supplier_electricity")),
            **({"residual_factor": (self.residual_factor, ("grid_electricity",))} if self.residual_factor else {}),
            "heat_factor": (self.heat_factor, ("heat",)),
            "onsite_factor": (self.onsite_factor, ("onsite_renewable",)),
        }
        wanted.update({f"instruments[{i}].factor": (x.factor, ("instrument", "supplier_electricity")) for i, x in enumerate(self.instruments)})
        for field, (fid, kinds) in wanted.items():
            if fid not in registry:
                try:
                    registry.get(fid)
                except KeyError as exc:
                    problems.append(f"{field}: {exc}")
                continue
            f = registry.get(fid)
            if f.kind not in kinds:
                problems.append(f"{field}: factor {fid!r} is a {f.kind} factor, expected {' or '.join(kinds)}")
        # an instrument not retired or of another market is no config error: the report refuses it
        # by name with the reason (carbon.claims), so it is counted rather than failing every run
        if problems:
            raise ConfigError("carbon config", problems)


def load_carbon_config(source: str | Path | dict) -> tuple[CarbonConfig, Registry]:
    """A config and its registry from a YAML file (its ``carbon:`` block, or the whole file) or a dict."""
    base = Path(".")
    where = "carbon config"
    if isinstance(source, dict):
        data = source.get("carbon", source)
    else:
        path = Path(source)
        where, base = str(path), path.parent
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(path, [f"cannot read the carbon config: {exc}"]) from None
        loaded = loaded or {}
        if not isinstance(loaded, dict):
            raise ConfigError(path, ["expected a mapping (optionally under `carbon:`)"])
        data = loaded.get("carbon", loaded)
    try:
        cfg = CarbonConfig.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError(where, [f"{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]) from None
    try:
        return cfg, cfg.registry(base)
    except ConfigError as exc:
        raise ConfigError(where, exc.problems) from None
