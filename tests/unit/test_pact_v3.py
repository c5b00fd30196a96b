"""PACT v3: our schema against the official data model, and the footprints of the worked quarter.

The expected required fields and property types below were written by hand from the official
OpenAPI document of the PACT Technical Specifications v3 (repository wbcsd/data-exchange-protocol,
spec/v3/openapi.yaml, components.schemas.ProductFootprint and components.schemas.CarbonFootprint,
with the simple types Decimal, PositiveNonZeroDecimal, PositiveOrZeroDecimal, NegativeOrZeroDecimal,
NonEmptyString, Urn, Uri), read once for this test. "x-rule SHALL" marks the properties the
specification's index.md defines as "required to be defined" although the OpenAPI's required list
leaves them out.
"""

import json

import jsonschema
import pytest

from carbon.exchange_config import PactProduct, PactSettings
from carbon.reports.pact import (
    SCHEMA_PATH,
    footprint_id,
    footprint_series,
    pact_document,
    validate_footprint,
    validate_pact,
)
from factory_models import ConfigError
from tests.support.carbon_exchange import PACT, inventory

# --- the official v3 data model, by hand --------------------------------------------------------
PF_REQUIRED = {"id", "specVersion", "created", "status", "companyName", "companyIds", "productDescription",
               "productIds", "productNameCompany", "pcf"}
PF_TYPES = {
    "id": "uuid", "specVersion": "string", "precedingPfIds": "uuid[]", "created": "date-time",
    "status": ("enum", {"Active", "Deprecated"}), "validityPeriodStart": "date-time",
    "validityPeriodEnd": "date-time", "companyName": "NonEmptyString", "companyIds": "Urn[]",
    "productDescription": "string", "productIds": "Urn[]", "productClassifications": "Urn[]",
    "productNameCompany": "NonEmptyString", "comment": "string", "pcf": "CarbonFootprint",
    "extensions": "DataModelExtension[]",
}
CF_REQUIRED = {"declaredUnitOfMeasurement", "declaredUnitAmount", "productMassPerDeclaredUnit",
               "referencePeriodStart", "referencePeriodEnd", "pcfExcludingBiogenicUptake",
               "pcfIncludingBiogenicUptake", "fossilGhgEmissions", "fossilCarbonContent",
               "ipccCharacterizationFactors", "crossSectoralStandards", "exemptedEmissionsPercent"}
CF_SHALL_NOT_REQUIRED = {"packagingEmissionsIncluded", "ccsTechnologicalCO2CaptureIncluded", "primaryDataShare"}
UNITS = {"liter", "kilogram", "cubic meter", "kilowatt hour", "megajoule", "ton kilometer", "square meter",
         "piece", "hour", "megabit second"}
POS0 = "PositiveOrZeroDecimal"
CF_TYPES = {
    "declaredUnitOfMeasurement": ("enum", UNITS), "declaredUnitAmount": "PositiveNonZeroDecimal",
    "productMassPerDeclaredUnit": "Decimal", "referencePeriodStart": "date-time", "referencePeriodEnd": "date-time",
    "geographyRegionOrSubregion": "enum", "geographyCountry": "string", "geographyCountrySubdivision": "string",
    "boundaryProcessesDescription": "string", "pcfExcludingBiogenicUptake": "Decimal",
    "pcfIncludingBiogenicUptake": "Decimal", "fossilCarbonContent": POS0, "biogenicCarbonContent": POS0,
    "recycledCarbonContent": POS0, "fossilGhgEmissions": POS0, "landUseChangeGhgEmissions": POS0,
    "landCarbonLeakage": POS0, "landManagementFossilGhgEmissions": POS0, "landManagementBiogenicCO2Emissions": POS0,
    "landManagementBiogenicCO2Removals": "NegativeOrZeroDecimal", "biogenicCO2Uptake": "NegativeOrZeroDecimal",
    "biogenicNonCO2Emissions": POS0, "landAreaOccupation": POS0, "aircraftGhgEmissions": POS0,
    "packagingEmissionsIncluded": "boolean", "packagingGhgEmissions": POS0, "packagingBiogenicCarbonContent": POS0,
    "outboundLogisticsGhgEmissions": POS0, "technologicalCO2CaptureOrigin": "string",
    "technologicalCO2Removals": POS0, "ccsTechnologicalCO2CaptureIncluded": "boolean",
    "ccsTechnologicalCO2Capture": "NegativeOrZeroDecimal", "ccuCarbonContent": POS0,
    "ccuCalculationApproach": ("enum", {"Cut-off", "Credit"}), "ccuCreditCertification": "Uri",
    "ipccCharacterizationFactors": "string[]",
    "crossSectoralStandards": ("enum[]", {"ISO14067", "ISO14083", "ISO14040-44", "GHGP-Product", "PEF", "PACT-1.0",
                                          "PACT-2.0", "PACT-3.0"}),
    "productOrSectorSpecificRules": "ProductOrSectorSpecificRule[]", "exemptedEmissionsPercent": "Decimal",
    "exemptedEmissionsDescription": "string", "allocationRulesDescription": "string",
    "secondaryEmissionFactorSources": "EmissionFactorSource[]", "primaryDataShare": "Decimal",
    "dqi": "DataQualityIndicators", "verification": "Verification",
}
DECIMAL_PATTERN_CASES = {"12.3456": True, "-9876.5432102": True, "+1": True, "1.": False, "1e5": False, "": False}


def _schema():
    return json.loads(SCHEMA_PATH.read_text())


def _kind(s: dict):
    """The type of a property of our schema, in the notation of the tables above."""
    ref = s.get("$ref", "")
    if ref:
        name = ref.rsplit("/", 1)[1]
        return {"UUID": "uuid", "DateTime": "date-time"}.get(name, name)
    if s.get("type") == "array":
        inner = _kind(s["items"])
        return ("enum[]", inner[1]) if isinstance(inner, tuple) else f"{inner}[]"
    if "enum" in s:
        return ("enum", set(s["enum"]))
    return s["type"]


def _same(expected, got) -> bool:
    if expected == "enum":
        return isinstance(got, tuple) and got[0] == "enum"
    return expected == got


def test_schema_required_fields_and_types_match_the_official_v3_product_footprint():
    schema = _schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["x-specification"]["version"] == "3.0.3"
    assert "wbcsd/data-exchange-protocol" in schema["x-specification"]["source"]
    assert schema["$ref"] == "#/$defs/ProductFootprint"
    pf, cf = schema["$defs"]["ProductFootprint"], schema["$defs"]["CarbonFootprint"]
    assert set(pf["required"]) == PF_REQUIRED
    assert set(cf["required"]) == CF_REQUIRED
    assert set(schema["$defs"]["ShallRule"]["required"]) == CF_SHALL_NOT_REQUIRED
    assert set(pf["properties"]) == set(PF_TYPES)
    assert set(cf["properties"]) == set(CF_TYPES)
    wrong = {k: _kind(v) for k, v in {**pf["properties"], **cf["properties"]}.items()
             if not _same({**PF_TYPES, **CF_TYPES}[k], _kind(v))}
    assert wrong == {}
    decimal = jsonschema.Draft202012Validator(schema["$defs"]["Decimal"])
    assert {text: decimal.is_valid(text) for text in DECIMAL_PATTERN_CASES} == DECIMAL_PATTERN_CASES




@pytest.fixture(scope="module")
def measured():
    return inventory("measured")


def test_worked_quarter_footprints_hold_the_figures_computed_by_hand(measured):
    doc = pact_document(measured, PACT, "CN", created="2026-04-02T00:00:00Z")
    validate_pact(doc)
    a, b = doc["data"]
    # A: (32,400 + 89,100) kg / 100,000 units = 1.215 kg; B: (10,800 + 29,700) / 20,000 = 2.025 kg
    assert a["pcf"]["pcfExcludingBiogenicUptake"] == a["pcf"]["fossilGhgEmissions"] == "1.215"
    assert b["pcf"]["pcfIncludingBiogenicUptake"] == "2.025" and b["productNameCompany"] == "Board B"
    # primary data: gas all measured (weight 32,400), grid 90 % measured (weight 89,100):
    # (32,400 + 0.9 x 89,100) / 121,500 = 92.6667 %
    assert a["pcf"]["primaryDataShare"] == "92.667"
    assert a["pcf"]["exemptedEmissionsPercent"] == "60" and "60 %" in a["pcf"]["exemptedEmissionsDescription"]
    assert a["pcf"]["fossilCarbonContent"] == "0.05" and a["pcf"]["productMassPerDeclaredUnit"] == "0.5"
    assert a["pcf"]["packagingEmissionsIncluded"] is False and a["pcf"]["ccsTechnologicalCO2CaptureIncluded"] is False
    assert "Gate-to-gate" in a["pcf"]["boundaryProcessesDescription"]
    assert "purchased materials" in a["pcf"]["boundaryProcessesDescription"]
    assert a["productIds"] == ["urn:pact:example.com:supplier-id:board-a"]
    assert a["companyIds"] == ["urn:pact:example.com:company-id:plant1"]
    assert a["productClassifications"] == ["urn:pact:example.com:cn-code:85340011"] and "productClassifications" not in b
    assert a["pcf"]["referencePeriodStart"].startswith("2025-12-31T16:00:00")  # 1 January, Asia/Shanghai
    assert a["specVersion"] == "3.0.3" and a["status"] == "Active"
    assert any("spare" in n for n in measured["notes"])  # no good unit: no footprint, and a note


def test_simulated_data_has_no_primary_data():
    doc = pact_document(inventory("simulated"), PACT, "CN")
    validate_pact(doc)
    assert {pf["pcf"]["primaryDataShare"] for pf in doc["data"]} == {"0"}
    assert all("SIMULATED" in pf["comment"] for pf in doc["data"])


def test_ids_are_stable_per_product_and_period_and_revisions_supersede(measured):
    first = pact_document(measured, PACT, "CN")["data"][0]
    again = pact_document(measured, PACT, "CN")["data"][0]
    assert first["id"] == again["id"]
    series = footprint_series("urn:pact:example.com:company-id:plant1", "urn:pact:example.com:supplier-id:board-a",
                              measured["period"]["start"], measured["period"]["end"], "measured")
    assert first["id"] == footprint_id(series, 1)
    third = pact_document(measured, PACT, "CN", revisions={"board-a": 3})["data"][0]
    validate_footprint(third)
    assert third["id"] == footprint_id(series, 3)
    assert third["precedingPfIds"] == [footprint_id(series, 2), first["id"]]


def test_values_meters_cannot_tell_must_be_configured(measured):
    with pytest.raises(ConfigError) as err:
        pact_document(measured, PactSettings(), "CN")
    text = str(err.value)
    assert "carbon.pact.exempted_emissions_percent" in text
    assert "carbon.pact.products.board-a.fossil_carbon_content_kg" in text
    with pytest.raises(ValueError):  # 0 % exempted is untrue for a gate-to-gate footprint: refused
        PactSettings(exempted_emissions_percent=0)
    defaults = pact_document(measured, PactSettings(exempted_emissions_percent=50, products={
        "board-a": PactProduct(fossil_carbon_content_kg=0.0), "board-b": PactProduct(fossil_carbon_content_kg=0.0)}))
    validate_pact(defaults)
    assert defaults["data"][0]["productIds"][0].startswith("urn:uuid:")  # no domain: UUID URNs
    per_product = pact_document(measured, PactSettings(products={
        "board-a": PactProduct(fossil_carbon_content_kg=0.0, exempted_emissions_percent=80),
        "board-b": PactProduct(fossil_carbon_content_kg=0.0, exempted_emissions_percent=40.5)}))
    assert [pf["pcf"]["exemptedEmissionsPercent"] for pf in per_product["data"]] == ["80", "40.5"]


@pytest.mark.parametrize("path, value", [
    (("pcf", "pcfExcludingBiogenicUptake"), 1.215),          # a JSON number, not a decimal string
    (("pcf", "primaryDataShare"), 92.667),
    (("pcf", "packagingGhgEmissions"), "0.1"),                # MUST be undefined when packaging is not included
    (("pcf", "ccsTechnologicalCO2Capture"), "-1"),            # likewise for CCS
    (("pcf", "geographyRegionOrSubregion"), "Eastern Asia"),  # a second geography next to the country
    (("productIds",), ["board-a"]),                           # not a URN
    (("id",), "board-a-2026"),                                # not a UUID
])
def test_schema_refuses_what_v3_forbids(measured, path, value):
    pf = pact_document(measured, PACT, "CN")["data"][0]
    validate_footprint(pf)
    target = pf
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(jsonschema.ValidationError):
        validate_footprint(pf)


@pytest.mark.parametrize("field", ["packagingEmissionsIncluded", "ccsTechnologicalCO2CaptureIncluded",
                                   "primaryDataShare", "fossilCarbonContent"])
def test_shall_fields_are_required(measured, field):
    pf = pact_document(measured, PACT, "CN")["data"][0]
    del pf["pcf"][field]
    with pytest.raises(jsonschema.ValidationError):
        validate_footprint(pf)


def test_percentages_and_validity_period_rules(measured):
    pf = pact_document(measured, PACT, "CN")["data"][0]
    pf["pcf"]["exemptedEmissionsPercent"] = "120"
    with pytest.raises(ValueError, match="not a percentage"):
        validate_footprint(pf)
    pf = pact_document(measured, PACT, "CN")["data"][0]
    pf["validityPeriodEnd"] = "2029-04-01T00:00:00Z"  # more than 3 years after the reference period
    with pytest.raises(ValueError, match="3 years"):
        validate_footprint(pf)


def test_report_pact_format_writes_a_valid_document(tmp_path):
    from carbon import Registry, write_report
    from tests.support.carbon_exchange import CFG, SITE, T0, T1, TZ, allocation, records

    out = tmp_path / "pcf.json"
    write_report(records(), allocation(), Registry.default(), "pact", out, (T0, T1), SITE,
                 CFG.model_copy(update={"pact": PACT}), tz=TZ)
    doc = json.loads(out.read_text())
    validate_pact(doc)
    assert [pf["productNameCompany"] for pf in doc["data"]] == ["board-a", "Board B"]
    with pytest.raises(ConfigError, match="exempted_emissions_percent"):  # no pact: block
        write_report(records(), allocation(), Registry.default(), "pact", out, (T0, T1), SITE, CFG, tz=TZ)


EXCHANGE_YAML = """\
carbon:
  pact:
    domain: example.com
    exempted_emissions_percent: 70
    products:
      ctrl-board: {fossil_carbon_content_kg: 0.012}
      power-board: {fossil_carbon_content_kg: 0.03, classifications: ["urn:pact:example.com:cn-code:85340019"]}
  cbam:
    installation: {id: CN-SZ-0001, name: SMT plant, country: CN, unlocode: CNSZV}
    goods:
      ctrl-board: {cn_code: "85340011", production_route: SMT assembly}
      power-board: {cn_code: "85340019", production_route: SMT assembly}
"""


def test_report_command_writes_pact_and_cbam_from_a_simulated_store(tmp_path):
    from pathlib import Path

    from typer.testing import CliRunner

    from twin.cli import app

    runner = CliRunner()
    config = str(Path(__file__).resolve().parents[2] / "configs" / "demo_smt.yaml")
    store, carbon_file = tmp_path / "s.sqlite", tmp_path / "carbon.yaml"
    carbon_file.write_text(EXCHANGE_YAML)
    assert runner.invoke(app, ["simulate", config, "--hours", "24", "--seed", "1", "--store", str(store),
                               "--json"]).exit_code == 0
    args = ["report", "--store", str(store), "--origin", "simulated", "--from", "2026-01-05", "--to", "2026-01-06",
            "--config", config]
    for fmt in ("pact", "cbam"):
        result = runner.invoke(app, [*args, "--carbon", str(carbon_file), "--format", fmt,
                                     "--out", str(tmp_path / f"{fmt}.json")])
        assert result.exit_code == 0, result.output
    doc = json.loads((tmp_path / "pact.json").read_text())
    validate_pact(doc)
    assert {pf["pcf"]["primaryDataShare"] for pf in doc["data"]} == {"0"}  # simulated: no primary data
    cbam = json.loads((tmp_path / "cbam.json").read_text())
    e = cbam["electricity"]
    assert e["consumed_mwh"] == pytest.approx(e["grid_import_mwh"] + e["self_generated_consumed_mwh"], abs=2e-6)
    # the goods' indirect tonnes add up to the grid's: self-consumed PV carries no grid factor
    indirect_t = sum(g["indirect"]["specific_embedded_emissions_t_co2e_per_t"] * g["quantity_t"] for g in cbam["goods"])
    grid_t = e["grid_import_mwh"] * e["grid_emission_factor_t_co2e_per_mwh"]
    products_mwh = sum(g["indirect"]["electricity_consumed_mwh_per_t"] * g["quantity_t"] for g in cbam["goods"])
    assert indirect_t == pytest.approx(grid_t * products_mwh / e["consumed_mwh"], rel=1e-5)
    # a carbon file without the pact: block (the demo config carries one; --carbon replaces it)
    bare = tmp_path / "bare.yaml"
    bare.write_text("carbon:\n  grid_factor: cn-mee-2023-grid-east\n")
    missing = runner.invoke(app, [*args, "--carbon", str(bare), "--format", "pact", "--out", str(tmp_path / "x.json")])
    assert missing.exit_code == 2 and "carbon.pact.exempted_emissions_percent" in missing.output
