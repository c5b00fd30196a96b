"""The emission factor registry: factors with provenance, GWP sets, and the registry version.

Shipped factors live in ``carbon/factors/*.yaml`` (listed in ``manifest.yaml``); users add their
own (a supplier's factor, an hourly grid-intensity series) in YAML files of the same form, e.g.
``configs/factors_custom.yaml``. Every factor keeps its issuing document, the URL of that document
itself (its PDF or publication page, never the issuer's home page; None, with a note saying why, when
no link to it could be confirmed), where in it the figure stands (``locator``: table or page),
publication and retrieval dates and a flag for figures read in a secondary source (GHG Protocol
Corporate Standard ch. 7 on documenting emission factors).

GWP sets: ``gwp("CH4")`` is the methane of fuel combustion, the only methane this project accounts;
a set names which of its values that is (``combustion_ch4``). Under AR6 it is fossil methane, 29.8
(AR6 WG I, Table 7.15): methane from burning a fossil fuel is fossil carbon. Every emissions record stores the ids and the registry
version it was computed with, and reports print a digest of the registry content.
"""

from __future__ import annotations

import difflib
import hashlib
import json
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from factory_models import ConfigError

from .units import UnitError, parse_unit

FACTORS_DIR = Path(__file__).parent / "factors"

FactorKind = Literal[
    "grid_electricity",  # annual grid average or residual mix, per kWh
    "grid_hourly",  # a time series of grid intensity, per kWh (values in `series_file`)
    "supplier_electricity",  # a supplier-specific or contract factor, per kWh
    "fuel_combustion",  # per-gas factor per unit of energy (NCV basis)
    "ncv",  # net calorific value
    "carbon_content",
    "oxidation",
    "heat",  # purchased heat or steam, per GJ
    "onsite_renewable",  # self-consumed on-site generation
    "instrument",  # renewable attribute of a certificate or PPA
]

PARTIAL_DATE = r"^\d{4}(-\d{2}(-\d{2})?)?$"


class UnknownFactorError(KeyError):
    """A factor id or GWP set that the registry does not hold; the text lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    """Where a figure comes from: the document, its URL and the table or page (``locator``)."""

    document: str
    url: str | None  # the document itself; None when no link to it could be confirmed (``note`` says so)
    locator: str = ""  # table or page of the document that holds the figure
    published: Annotated[str, Field(pattern=PARTIAL_DATE)]  # as precise as the document says
    retrieved: Annotated[str, Field(pattern=PARTIAL_DATE)]
    secondary: bool  # read in a secondary publication, not the issuing document
    note: str = ""

    @model_validator(mode="after")
    def _url_or_why(self) -> "Source":
        if self.url is None and not self.note:
            raise ValueError("a source without a url needs a note saying why no link is given")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url must be an http(s) link to the document, got {self.url!r}")
        return self

    @property
    def citation(self) -> str:
        """The document and where in it the figure stands."""
        return f"{self.document}, {self.locator}" if self.locator else self.document


class Geography(Strict):
    country: str | None = None  # ISO 3166-1 alpha-2
    grid_region: str | None = None
    province: str | None = None


class Factor(Strict):
    """One emission factor or parameter. ``value`` is in ``unit``; ``version`` is the registry's."""

    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:+-]*$", max_length=120)]
    kind: FactorKind
    value: float
    unit: str
    gas: str | None = None
    fuel: str | None = None
    geography: Geography = Geography()
    year: int | None = None
    gwp_set: str | None = None  # for factors already in CO2e: the GWP set they embed
    residual_mix: bool = False
    series_file: str | None = None  # grid_hourly: CSV of `start,value`, relative to the YAML file
    note: str = ""
    source: Source
    version: str = ""
    origin: str = ""  # the file the factor was read from

    @field_validator("unit")
    @classmethod
    def _unit(cls, v: str) -> str:
        try:
            parse_unit(v)
        except UnitError as exc:
            raise ValueError(str(exc)) from None
        return v

    @model_validator(mode="after")
    def _consistent(self) -> "Factor":
        u = parse_unit(self.unit)
        if u.substance is not None and u.substance != "C" and self.gas != u.substance:
            raise ValueError(f"gas {self.gas!r} does not match the unit {self.unit!r}")
        if u.substance == "CO2e" and self.gwp_set is None:
            raise ValueError("a factor in CO2e must name the gwp_set it embeds (ar4, ar5 or ar6)")
        if self.kind in ("grid_electricity", "grid_hourly", "supplier_electricity", "onsite_renewable", "instrument"):
            if u.per_dim != "energy" or u.dim != "mass":
                raise ValueError(f"a {self.kind} factor needs a unit of mass per energy, e.g. 'kg CO2/kWh'; got {self.unit!r}")
        if self.kind == "grid_hourly" and not self.series_file:
            raise ValueError("a grid_hourly factor needs series_file (a CSV of start,value rows)")
        if self.value < 0:
            raise ValueError(f"value must be >= 0, got {self.value}")
        return self

    def value_in(self, unit: str) -> float:
        """The value expressed in ``unit``; UnitError when the dimensions differ."""
        from .units import convert

        return convert(self.value, self.unit, unit)

    def appendix_row(self) -> dict:
        """The factor as one row of a report's factor appendix."""
        return {
            "id": self.id,
            "value": self.value,
            "unit": self.unit,
            "gas": self.gas or "",
            "geography": "/".join(x for x in (self.geography.country, self.geography.grid_region, self.geography.province) if x),
            "year": self.year,
            "document": self.source.citation,
            "url": self.source.url or "",
            "locator": self.source.locator,
            "published": self.source.published,
            "retrieved": self.source.retrieved,
            "secondary": self.source.secondary,
            "version": self.version,
        }


class GwpSet(Strict):
    """100-year GWPs of one IPCC assessment. ``values["CH4"]`` is the combustion methane value: the
    entry named by ``combustion_ch4`` (``CH4_fossil`` under AR6), copied when the set is built."""

    id: Literal["ar4", "ar5", "ar6"]
    values: dict[str, float]
    source: Source
    combustion_ch4: str = "CH4"
    version: str = ""

    @model_validator(mode="before")
    @classmethod
    def _combustion_methane(cls, data):
        if isinstance(data, dict):
            key = data.get("combustion_ch4", "CH4")
            values = dict(data.get("values") or {})
            if key not in values:
                raise ValueError(f"combustion_ch4 names {key!r}, which is not among the values {sorted(values)}")
            if key != "CH4" and "CH4" in values and values["CH4"] != values[key]:
                raise ValueError(f"CH4 ({values['CH4']}) contradicts combustion_ch4 {key} ({values[key]})")
            values["CH4"] = values[key]
            data = {**data, "values": values}
        return data

    def gwp(self, gas: str) -> float:
        try:
            return self.values[gas]
        except KeyError:
            raise UnknownFactorError(f"GWP set {self.id} has no value for {gas!r}; it holds {sorted(self.values)}") from None


class _File(Strict):
    version: str | None = None
    sources: dict[str, Source] = {}
    factors: list[dict] = []
    gwp_sets: dict[str, dict] = {}


def _read_yaml(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(path, [f"cannot read the file: {exc.strerror or exc}"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError(path, [f"not valid YAML ({exc})"]) from None
    if not isinstance(data, dict):
        raise ConfigError(path, ["expected a mapping with `factors:` (and optionally `sources:`)"])
    return data


def _errors(exc: ValidationError, prefix: str) -> list[str]:
    return [f"{prefix}{'.'.join(str(x) for x in e['loc'])}: {e['msg']}" for e in exc.errors(include_url=False)]


class Registry:
    """Factors and GWP sets by id. Build with ``Registry.default()`` or ``Registry.load(extra)``."""

    def __init__(self, factors: dict[str, Factor], gwp_sets: dict[str, GwpSet], version: str):
        self._factors = factors
        self._gwp = gwp_sets
        self.version = version

    # --- loading -----------------------------------------------------------------------------

    @classmethod
    def default(cls) -> "Registry":
        """The shipped registry alone."""
        return cls.load([])

    @classmethod
    def load(cls, extra_files: list[str | Path] | tuple = ()) -> "Registry":
        """The shipped registry plus user factor files; an id defined twice is a ConfigError."""
        manifest = _read_yaml(FACTORS_DIR / "manifest.yaml")
        version = str(manifest["registry_version"])
        factors: dict[str, Factor] = {}
        for name in manifest["files"]:
            cls._add_file(factors, FACTORS_DIR / name, version)
        gwp = cls._gwp_sets(FACTORS_DIR / manifest["gwp_file"], version)
        user_versions = []
        for path in extra_files:
            path = Path(path)
            data = _read_yaml(path)
            # a user file without a version is identified by its content, so a changed value
            # changes the version stored in every record computed with it
            v = str(data.get("version") or "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()[:12])
            cls._add_file(factors, path, f"user:{path.name}@{v}")
            user_versions.append(f"{path.name}@{v}")
        if user_versions:
            version = version + "+" + "+".join(user_versions)
        return cls(factors, gwp, version)

    @staticmethod
    def _add_file(factors: dict[str, Factor], path: Path, version: str) -> None:
        data = _read_yaml(path)
        try:
            f = _File.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(path, _errors(exc, "")) from None
        problems = []
        for i, raw in enumerate(f.factors):
            raw = dict(raw)
            src = raw.get("source")
            if isinstance(src, str):
                if src not in f.sources:
                    problems.append(f"factors[{i}] ({raw.get('id')}): source {src!r} is not in `sources` ({', '.join(f.sources) or 'none'})")
                    continue
                raw["source"] = f.sources[src]
            raw["version"] = version
            raw["origin"] = str(path)
            if raw.get("series_file"):
                raw["series_file"] = str((path.parent / raw["series_file"]).resolve())
            try:
                factor = Factor.model_validate(raw)
            except ValidationError as exc:
                problems.extend(_errors(exc, f"factors[{i}] ({raw.get('id')}): "))
                continue
            if factor.id in factors:
                problems.append(f"factors[{i}]: id {factor.id!r} is already defined in {factors[factor.id].origin}")
                continue
            factors[factor.id] = factor
        if problems:
            raise ConfigError(path, problems)

    @staticmethod
    def _gwp_sets(path: Path, version: str) -> dict[str, GwpSet]:
        data = _read_yaml(path)
        sources = {k: Source.model_validate(v) for k, v in data["sources"].items()}
        return {
            k: GwpSet(id=k, values=v["values"], source=sources[v["source"]],
                      combustion_ch4=v.get("combustion_ch4", "CH4"), version=version)
            for k, v in data["gwp_sets"].items()
        }

    # --- lookup ------------------------------------------------------------------------------

    def get(self, factor_id: str) -> Factor:
        """The factor with this id; UnknownFactorError lists the closest ids."""
        try:
            return self._factors[factor_id]
        except KeyError:
            close = difflib.get_close_matches(str(factor_id), list(self._factors), n=4, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownFactorError(
                f"unknown emission factor id {factor_id!r} (registry {self.version}){hint}"
            ) from None

    def __contains__(self, factor_id: str) -> bool:
        return factor_id in self._factors

    def __iter__(self):
        return iter(self._factors.values())

    def __len__(self) -> int:
        return len(self._factors)

    def find(self, kind: str, fuel: str | None = None) -> list[Factor]:
        return [f for f in self._factors.values() if f.kind == kind and (fuel is None or f.fuel == fuel)]

    def gwp(self, set_id: str) -> GwpSet:
        try:
            return self._gwp[set_id]
        except KeyError:
            raise UnknownFactorError(f"unknown GWP set {set_id!r}; known: {', '.join(sorted(self._gwp))}") from None

    @property
    def gwp_sets(self) -> list[GwpSet]:
        return list(self._gwp.values())

    def digest(self) -> str:
        """SHA-256 of the registry content (every factor and GWP set, canonical JSON)."""
        payload = {
            "version": self.version,
            "factors": [f.model_dump(exclude={"origin"}) for f in sorted(self._factors.values(), key=lambda f: f.id)],
            "gwp": [g.model_dump() for g in sorted(self._gwp.values(), key=lambda g: g.id)],
        }
        # hourly series: their content, not their path, is what the figures depend on
        for f in payload["factors"]:
            if f.get("series_file"):
                f["series_file"] = hashlib.sha256(Path(f["series_file"]).read_bytes()).hexdigest()
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()
