"""The ``pact:`` and ``cbam:`` blocks of the carbon config: what a product footprint or a CBAM report
needs that meters cannot tell (identifiers, classifications, the installation, CN codes, the share
of cradle-to-gate emissions a site footprint leaves out).

Both live under ``carbon:`` (``carbon.pact``, ``carbon.cbam``). Defaults are documented in
docs/carbon.md; nothing here is guessed when a report needs it: a missing value the PACT data model
requires is a config error naming the field.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: RFC 8141: "urn", a namespace id of 2 to 32 letters, digits or hyphens, a namespace-specific string
URN = r"^[uU][rR][nN]:[A-Za-z0-9][A-Za-z0-9-]{0,30}[A-Za-z0-9]:\S+$"
Urn = Annotated[str, Field(pattern=URN, max_length=500)]
Text = Annotated[str, Field(min_length=1, max_length=2000)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PactProduct(_Strict):
    """One product's PACT identity. ``product_ids`` default to one URN made from ``pact.domain`` (or a
    UUID URN from the site and product names); ``fossil_carbon_content_kg`` is the fossil carbon
    (kg C) in one unit of the product itself, which the PACT data model requires (SHALL)."""

    product_ids: list[Urn] = []
    classifications: list[Urn] = []
    name: Text | None = None  # productNameCompany; default: the product's name in the factory model
    description: Text | None = None
    fossil_carbon_content_kg: Annotated[float, Field(ge=0)] | None = None
    #: this product's share (%) of cradle-to-gate emissions left out; default: ``pact.exempted_emissions_percent``
    exempted_emissions_percent: Annotated[float, Field(gt=0, lt=100)] | None = None

    @field_validator("product_ids", "classifications")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError("URNs must be unique")
        return v


class PactSettings(_Strict):
    """The data owner and its products for ``report --format pact`` (PACT Technical Specifications v3).

    ``exempted_emissions_percent``: the share (%) of the product's cradle-to-gate emissions that the
    site footprint leaves out (purchased materials and components, their transport): the data owner's
    estimate, e.g. from a screening LCA. A footprint from site meters covers the site's own Scope 1
    and 2 only, so 0 would be untrue and is refused; no default is assumed.
    """

    company_name: Text | None = None  # default: the site name
    company_ids: list[Urn] = []  # default: one URN from ``domain`` (or a UUID URN of the site)
    domain: Annotated[str, Field(pattern=r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$",
                                 max_length=253)] | None = None
    exempted_emissions_percent: Annotated[float, Field(gt=0, lt=100)] | None = None
    exempted_emissions_description: Text | None = None
    products: dict[str, PactProduct] = {}


class CbamInstallation(_Strict):
    """The installation where the goods are produced (Implementing Regulation (EU) 2023/1773, Annex I:
    installation name, identifier, address, UN/LOCODE, coordinates)."""

    id: Annotated[str, Field(min_length=1, max_length=100)]
    name: Text
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    address: Text | None = None
    city: Text | None = None
    postcode: Annotated[str, Field(min_length=1, max_length=20)] | None = None
    unlocode: Annotated[str, Field(pattern=r"^[A-Z]{2}[A-Z2-9]{3}$")] | None = None
    latitude: Annotated[float, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[float, Field(ge=-180, le=180)] | None = None


class CbamGood(_Strict):
    """One product as a CBAM good: its 8-digit CN code and production route. A configured default
    value (t CO2e per t, with its source) replaces the actual direct figure and is reported as such."""

    cn_code: Annotated[str, Field(pattern=r"^\d{8}$")]
    production_route: Text
    direct_default_t_per_t: Annotated[float, Field(ge=0)] | None = None
    direct_default_source: Text | None = None

    @model_validator(mode="after")
    def _default_with_source(self) -> CbamGood:
        if (self.direct_default_t_per_t is None) != (self.direct_default_source is None):
            raise ValueError("give direct_default_t_per_t and direct_default_source together")
        return self


class CbamSettings(_Strict):
    """``report --format cbam``: the installation and, per product (by name), its CBAM good."""

    installation: CbamInstallation
    goods: Annotated[dict[str, CbamGood], Field(min_length=1)]
