"""Product footprints in the PACT Technical Specifications v3.0.3 data model (ProductFootprint with
its CarbonFootprint), validated against ``carbon/schemas/pact_v3_product_footprint.json``.

One footprint per product that made good units in the period, declared per piece. What the values
mean, and why (field names as in the specification):

- boundary: gate-to-gate, the site's own Scope 1 and Scope 2 from its meters. The PACT Methodology
  asks for cradle-to-gate, so the upstream part left out is stated as ``exemptedEmissionsPercent``,
  the data owner's configured estimate (``carbon.pact.exempted_emissions_percent``): never 0.
- ``primaryDataShare``: the share (%) of the declared footprint computed from metered activity,
  weighted by CO2e: per source, measured activity / activity (estimated and gap-filled hours are
  not primary); fuels and heat weigh on the product's direct part, electricity on its indirect part.
  Simulated data (origin ``simulated``) is 0.
- ``fossilCarbonContent`` (kg C in one unit of the product itself) comes from the config: meters do
  not know it.
- ids: a footprint series per (company, product, reference period, origin) and one UUID per
  revision (``footprint_id``), so a later revision can supersede an earlier one (``precedingPfIds``)
  and the same report made twice has the same id.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import jsonschema

from factory_models import ConfigError

from ..exchange_config import PactSettings

SPEC_VERSION = "3.0.3"
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "pact_v3_product_footprint.json"
_NS = uuid.UUID("6f1b2c1e-4a57-4b8e-9d0f-2f6a1c3e5b70")
_VALIDATOR: jsonschema.Draft202012Validator | None = None


def decimal_text(x: float, places: int = 6) -> str:
    """A PACT decimal string (``^[+-]?\\d+(\\.\\d+)?$``): fixed point, trailing zeros dropped."""
    text = f"{x:.{places}f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _urn_part(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in s)


def footprint_series(company_id: str, product_id: str, start: str, end: str, origin: str) -> uuid.UUID:
    """The series of a product's footprints over one reference period (stable across reports)."""
    return uuid.uuid5(_NS, f"{company_id}|{product_id}|{start}|{end}|{origin}")


def footprint_id(series: uuid.UUID, revision: int = 1) -> str:
    """The id of one revision of a series; revision n supersedes revisions 1 .. n-1."""
    if revision < 1:
        raise ValueError(f"revision must be 1 or more, got {revision}")
    return str(uuid.uuid5(_NS, f"{series}:{revision}"))


def company_ids(pact: PactSettings, site: str) -> list[str]:
    if pact.company_ids:
        return list(pact.company_ids)
    if pact.domain:
        return [f"urn:pact:{pact.domain}:company-id:{_urn_part(site)}"]
    return [f"urn:uuid:{uuid.uuid5(_NS, 'company:' + site)}"]


def product_ids(pact: PactSettings, site: str, product: str) -> list[str]:
    cfg = pact.products.get(product)
    if cfg and cfg.product_ids:
        return list(cfg.product_ids)
    if pact.domain:
        return [f"urn:pact:{pact.domain}:supplier-id:{_urn_part(product)}"]
    return [f"urn:uuid:{uuid.uuid5(_NS, f'product:{site}:{product}')}"]


def _measured_fraction(inv: dict) -> dict[str, float]:
    out = {}
    for d in inv.get("data_quality") or []:
        share = d.get("measured_share")
        if share is None and d.get("activity"):  # ledger rows: activity and its estimated part
            share = 1.0 - (d.get("estimated_activity") or 0.0) / d["activity"]
        out[d["source"]] = max(0.0, min(1.0, share or 0.0))
    return out


def primary_shares(inv: dict) -> tuple[float, float]:
    """(direct, electricity): CO2e-weighted shares of metered activity, 0 for simulated data."""
    if inv.get("origin", "measured") != "measured":
        return 0.0, 0.0
    measured = _measured_fraction(inv)
    kg = {"direct": 0.0, "electricity": 0.0}
    primary = {"direct": 0.0, "electricity": 0.0}
    for s in inv.get("by_source") or []:
        if s["method"] == "market" or s["co2e_kg"] <= 0:
            continue
        part = "electricity" if s["scope"] == "2" and s["activity_unit"] == "kWh" else "direct"
        kg[part] += s["co2e_kg"]
        primary[part] += s["co2e_kg"] * measured.get(s["source"], 0.0)
    return tuple(primary[k] / kg[k] if kg[k] > 0 else 0.0 for k in ("direct", "electricity"))


def _secondary_sources(inv: dict) -> list[dict]:
    seen: dict[tuple, None] = {}
    for f in inv.get("factor_appendix") or []:
        name, version = f.get("document"), f.get("version") or (str(f["year"]) if f.get("year") else None)
        if name and version:
            seen[(str(name), str(version))] = None
    return [{"name": n, "version": v} for n, v in seen]


def _comment(inv: dict) -> str:
    origin = inv.get("origin", "measured")
    parts = [f"Site footprint of {inv['site']} from its hourly emissions ledger ({origin} data)."]
    if origin != "measured":
        parts.append("SIMULATED DATA: a model run, not the plant; not for exchange with customers.")
    cov = inv.get("coverage")
    if cov:
        parts.append(f"Coverage: {cov['hours_with_data']} of {cov['hours_in_period']} hours of the period have data"
                     f", {cov['estimated_hours']} estimated" + ("." if cov.get("complete") else
                     "; the period is only partly covered, the footprint is of the hours with data."))
    parts.append(f"Inputs SHA-256 {inv['inputs_sha256']}; factor registry {inv['registry_version']}.")
    return " ".join(parts)


def _boundary(inv: dict, scope2_method: str) -> str:
    return (f"Gate-to-gate at site {inv['site']}: Scope 1 fuels burned on site; Scope 2 purchased electricity "
            f"({scope2_method}-based) and heat; self-consumed on-site generation at zero emissions, exported "
            "generation excluded. Not included: purchased materials and components and their production, "
            "inbound and outbound transport, packaging, use and end of life.")


def _check_config(inv: dict, pact: PactSettings) -> tuple[list[str], list[str]]:
    problems, notes = [], []
    names = {p["product"] for p in inv["products"]["products"]}
    for name in sorted(set(pact.products) - names):
        notes.append(f"pact.products names {name!r}, which is not a product of this report")
    for p in inv["products"]["products"]:
        if not p.get("good_units"):
            continue
        cfg = pact.products.get(p["product"])
        if cfg is None or cfg.fossil_carbon_content_kg is None:
            problems.append(f"carbon.pact.products.{p['product']}.fossil_carbon_content_kg: required by PACT v3 "
                            f"(fossilCarbonContent, kg C in one unit of the product); meters cannot tell it")
        if not p.get("mass_kg_per_unit"):
            problems.append(f"products.{p['product']}.mass_kg: required for productMassPerDeclaredUnit of a piece")
    if pact.exempted_emissions_percent is None and any(
            p.get("good_units") and getattr(pact.products.get(p["product"]), "exempted_emissions_percent", None) is None
            for p in inv["products"]["products"]):
        problems.append("carbon.pact.exempted_emissions_percent: required: the share (%, above 0) of the "
                        "cradle-to-gate footprint that this gate-to-gate site footprint leaves out (upstream materials, "
                        "transport), the data owner's estimate")
    return problems, notes


def pact_document(inv: dict, pact: PactSettings | None = None, country: str = "CN", *, created: str | None = None,
                  revisions: dict[str, int] | None = None) -> dict:
    """The ListFootprints-shaped document ``{"data": [ProductFootprint, ...]}`` of an inventory.

    ``revisions`` (product -> revision, default 1) gives later revisions their ids and the ids they
    supersede. Raises ConfigError naming every missing config value; notes go to ``inv["notes"]``.
    """
    pact = pact or PactSettings()
    products = inv.get("products")
    if not products:
        raise ValueError("the pact format needs product footprints: the store has no product data for the period")
    problems, notes = _check_config(inv, pact)
    if problems:
        raise ConfigError("carbon config", problems)
    created = created or datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    site, period, origin = inv["site"], inv["period"], inv.get("origin", "measured")
    gwp = inv["gwp_set"]["id"].upper()
    direct_share, elec_share = primary_shares(inv)
    companies = company_ids(pact, site)
    secondary = _secondary_sources(inv)
    out = []
    for p in products["products"]:
        name = p["product"]
        if not p.get("good_units") or p.get("co2e_kg_per_unit") is None:
            notes.append(f"pact: no footprint for {name!r}: no good unit was made in the period")
            continue
        cfg = pact.products.get(name)
        ids = product_ids(pact, site, name)
        series = footprint_series(companies[0], ids[0], period["start"], period["end"], origin)
        rev = (revisions or {}).get(name, 1)
        d, i = p["direct_co2e_kg"], p["indirect_co2e_kg"]
        pds = 100.0 * (d * direct_share + i * elec_share) / (d + i) if d + i > 0 else 0.0
        exempted = cfg.exempted_emissions_percent or pact.exempted_emissions_percent
        per_unit = decimal_text(p["co2e_kg_per_unit"])
        pcf = {
            "declaredUnitOfMeasurement": "piece",
            "declaredUnitAmount": "1",
            "productMassPerDeclaredUnit": decimal_text(p["mass_kg_per_unit"]),
            "referencePeriodStart": period["start"],
            "referencePeriodEnd": period["end"],
            "geographyCountry": country.upper(),
            "boundaryProcessesDescription": _boundary(inv, products.get("scope2_method", "location")),
            "pcfExcludingBiogenicUptake": per_unit,
            "pcfIncludingBiogenicUptake": per_unit,  # no biogenic uptake: the site burns no biomass it grew
            "fossilGhgEmissions": per_unit,
            "fossilCarbonContent": decimal_text(cfg.fossil_carbon_content_kg),
            "packagingEmissionsIncluded": False,
            "ccsTechnologicalCO2CaptureIncluded": False,
            "ipccCharacterizationFactors": [gwp],
            "crossSectoralStandards": ["ISO14067"],
            "exemptedEmissionsPercent": decimal_text(exempted, 3),
            "exemptedEmissionsDescription": pact.exempted_emissions_description or (
                f"Upstream emissions (purchased materials and components, their transport) are outside the site's "
                f"meters and not in this footprint; {decimal_text(exempted, 3)} % is the data owner's estimate of "
                f"their share of the cradle-to-gate footprint."),
            "allocationRulesDescription": products["method"],
            "primaryDataShare": decimal_text(pds, 3),
        }
        if secondary:
            pcf["secondaryEmissionFactorSources"] = secondary
        pf = {
            "id": footprint_id(series, rev),
            "specVersion": SPEC_VERSION,
            "created": created,
            "status": "Active",
            "companyName": pact.company_name or site,
            "companyIds": companies,
            "productDescription": (cfg.description if cfg and cfg.description else f"{name} made at site {site}"),
            "productIds": ids,
            "productNameCompany": (cfg.name if cfg and cfg.name else name),
            "comment": _comment(inv),
            "pcf": pcf,
        }
        if rev > 1:
            pf["precedingPfIds"] = [footprint_id(series, k) for k in range(rev - 1, 0, -1)]
        if cfg and cfg.classifications:
            pf["productClassifications"] = list(cfg.classifications)
        out.append(pf)
    inv.setdefault("notes", []).extend(notes)
    if not out:
        raise ValueError("no product made a good unit in the period: no PACT footprint can be declared per unit")
    return {"data": out}


def _validator() -> jsonschema.Draft202012Validator:
    global _VALIDATOR
    if _VALIDATOR is None:
        _VALIDATOR = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")),
                                                     format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    return _VALIDATOR


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text)


def validate_footprint(pf: dict) -> None:
    """Raise jsonschema.ValidationError when ``pf`` is not a v3 ProductFootprint by the schema, or
    ValueError for the rules of the specification a schema cannot express (ranges, periods)."""
    _validator().validate(pf)
    c = pf["pcf"]
    for key in ("exemptedEmissionsPercent", "primaryDataShare"):
        if key in c and not 0.0 <= float(c[key]) <= 100.0:
            raise ValueError(f"pcf.{key} {c[key]} is not a percentage (0 to 100)")
    start, end = _when(c["referencePeriodStart"]), _when(c["referencePeriodEnd"])
    if end <= start:
        raise ValueError(f"pcf.referencePeriodEnd {c['referencePeriodEnd']} is not after referencePeriodStart")
    if "validityPeriodStart" in pf and _when(pf["validityPeriodStart"]) < end:
        raise ValueError("validityPeriodStart is before referencePeriodEnd")
    if "validityPeriodEnd" in pf and _when(pf["validityPeriodEnd"]) > end.replace(year=end.year + 3):
        raise ValueError("validityPeriodEnd is more than 3 years after referencePeriodEnd")
    if pf["id"] in pf.get("precedingPfIds", []):
        raise ValueError("a footprint cannot precede itself")


def validate_pact(doc: dict) -> None:
    """Validate a ``{"data": [...]}`` document: every footprint, and unique ids."""
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        raise jsonschema.ValidationError("a PACT document is an object with a list 'data'")
    for pf in doc["data"]:
        validate_footprint(pf)
    ids = [pf["id"] for pf in doc["data"]]
    if len(set(ids)) != len(ids):
        raise ValueError("footprint ids repeat within the document")


def write_pact(inv: dict, out_path: Path, country: str, pact: PactSettings | None = None) -> dict:
    doc = pact_document(inv, pact, country)
    validate_pact(doc)
    out_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return doc
