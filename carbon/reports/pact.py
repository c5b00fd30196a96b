"""PACT v3 shaped product footprints (JSON), validated against ``carbon/pact_schema.json``.

One footprint per product, declared per piece (one good unit). Decimals are strings, as in the
PACT data model. Ids are UUIDs derived from the inputs digest, so the same inputs give the same ids.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import jsonschema

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "pact_schema.json"
_NS = uuid.UUID("6f1b2c1e-4a57-4b8e-9d0f-2f6a1c3e5b70")


def _dec(x: float) -> str:
    text = f"{x:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _urn_part(s: str) -> str:
    return "".join(c if c.isalnum() or c in "-._" else "-" for c in s)


def pact_document(inv: dict, country: str, created: str | None = None) -> dict:
    products = inv["products"]
    gwp = inv["gwp_set"]["id"].upper()
    dq = inv["data_quality"]
    measured = sum((d["measured_share"] or 0) * d["activity"] for d in dq if d["activity_unit"] == "kWh")
    total = sum(d["activity"] for d in dq if d["activity_unit"] == "kWh")
    created = created or datetime.now(timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    out = []
    for p in products["products"]:
        per_unit = p["co2e_kg_per_unit"]
        if per_unit is None:
            continue  # no good unit to declare a footprint for; the inventory reports the total
        site = _urn_part(inv["site"])
        out.append({
            "id": str(uuid.uuid5(_NS, f"{inv['inputs_sha256']}:{p['product']}")),
            "specVersion": "3.0.0",
            "created": created,
            "status": "Active",
            "companyName": inv["site"],
            "companyIds": [f"urn:factory-twin:site:{site}"],
            "productDescription": f"{p['product']} made at site {inv['site']}",
            "productIds": [f"urn:factory-twin:product:{site}:{_urn_part(p['product'])}"],
            "productNameCompany": p["product"],
            "comment": f"Gate-to-gate site footprint from metered data. Inputs SHA-256 {inv['inputs_sha256']}; "
                       f"factor registry {inv['registry_version']}.",
            "pcf": {
                "declaredUnitOfMeasurement": "piece",
                "declaredUnitAmount": "1",
                "productMassPerDeclaredUnit": _dec(p["mass_kg_per_unit"] or 0.0),
                "referencePeriodStart": inv["period"]["start"],
                "referencePeriodEnd": inv["period"]["end"],
                "geographyCountry": country.upper(),
                "pcfExcludingBiogenicUptake": _dec(per_unit),
                "pcfIncludingBiogenicUptake": _dec(per_unit),
                "fossilGhgEmissions": _dec(per_unit),
                "ipccCharacterizationFactors": [gwp],
                "crossSectoralStandards": ["ISO14067"],
                "exemptedEmissionsPercent": 0,
                "exemptedEmissionsDescription": "No emissions within the boundary are exempted.",
                "boundaryProcessesDescription": "Gate-to-gate: the site's Scope 1 (fuels) and Scope 2 "
                    f"({products['scope2_method']}-based electricity, heat); purchased materials and transport are "
                    "outside this boundary.",
                "allocationRulesDescription": products["method"],
                "primaryDataShare": round(100.0 * measured / total, 3) if total else 0.0,
            },
        })
    if not out:
        raise ValueError("no product has good units in the period: no PACT footprint can be declared per unit")
    return {"data": out}


def validate_pact(doc: dict) -> None:
    """Raise jsonschema.ValidationError when ``doc`` does not fit the schema kept in the repo."""
    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    jsonschema.validate(doc, schema, cls=jsonschema.Draft202012Validator)


def write_pact(inv: dict, out_path: Path, country: str) -> None:
    doc = pact_document(inv, country)
    validate_pact(doc)
    out_path.write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
