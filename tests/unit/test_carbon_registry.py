"""The factor registry: shipped contents with provenance, user files, unknown ids."""

import pytest

from carbon import CarbonConfig, Registry, UnknownFactorError, load_carbon_config
from factory_models import ConfigError


@pytest.fixture(scope="module")
def reg():
    return Registry.default()


def test_shipped_factors_carry_provenance(reg):
    for f in reg:
        assert f.source.document and f.source.published and f.source.retrieved
        assert f.version == reg.version
    assert reg.get("cn-mee-ets-2022").value == 0.5703
    assert reg.get("cn-mee-2022-national").source.secondary is True
    assert reg.get("cn-mee-2022-excl-nonfossil").residual_mix is True
    assert reg.get("cn-mee-2023-grid-east").geography.grid_region == "east"
    regions = {f.geography.grid_region for f in reg.find("grid_electricity") if f.year == 2023 and f.geography.grid_region}
    assert regions == {"north", "northeast", "east", "central", "northwest", "south", "southwest"}
    for fuel in ("natural_gas", "diesel", "lpg", "coal"):
        assert {f.gas for f in reg.find("fuel_combustion", fuel)} == {"CO2", "CH4", "N2O"}
    assert reg.get("cn-ndrc-cc-natural_gas").value == 15.30
    assert reg.get("cn-gbt-heat-default").value_in("kg CO2/GJ") == pytest.approx(110.0)
    assert (reg.gwp("ar4").gwp("CH4"), reg.gwp("ar5").gwp("CH4")) == (25, 28)
    assert reg.gwp("ar6").gwp("N2O") == 273


def test_ar6_gwps_are_table_7_15_and_combustion_methane_is_fossil(reg):
    ar6 = reg.gwp("ar6")
    # IPCC AR6 WG I, Chapter 7, Table 7.15 (p. 1017): CH4-fossil 29.8, CH4-non fossil 27.0, N2O 273
    assert (ar6.gwp("CH4_fossil"), ar6.gwp("CH4_non_fossil"), ar6.gwp("N2O")) == (29.8, 27.0, 273)
    # the CH4 of fuel combustion is fossil methane: "CH4" resolves to 29.8, not the 27.9 of before
    assert ar6.combustion_ch4 == "CH4_fossil" and ar6.gwp("CH4") == 29.8
    assert "Table 7.15" in ar6.source.locator and "p. 1017" in ar6.source.locator
    assert ar6.source.url == "https://www.ipcc.ch/report/ar6/wg1/downloads/report/IPCC_AR6_WGI_Chapter07.pdf"
    assert reg.gwp("ar5").gwp("CH4_fossil") == 30


def _is_home_page(url: str) -> bool:
    from urllib.parse import urlparse

    path = urlparse(url).path.strip("/")
    return path == "" or path in {"scope-2-guidance", "report/ar6/wg1", "report/ar5/wg1", "report/ar4/wg1"}


def test_every_source_links_to_the_document_itself_with_table_or_page(reg):
    sources = [f.source for f in reg] + [g.source for g in reg.gwp_sets]
    assert sources
    for src in sources:
        # a table, a page, an annex or an attachment named: where in the document the figure stands
        assert src.locator, src.document
        if src.url is None:  # no link could be confirmed: the note says so, no home page instead
            assert "could be confirmed" in src.note, src.document
        else:
            assert src.url.startswith("https://") and not _is_home_page(src.url), src.url
    assert sum(src.url is None for src in sources) < len(sources) / 4  # the exception, not the rule


def test_a_source_needs_a_document_link_or_a_reason(tmp_path):
    p = tmp_path / "f.yaml"
    p.write_text(
        "sources: {s: {document: d, url: null, published: '2026', retrieved: '2026', secondary: false},\n"
        "          t: {document: d, url: 'ftp://x/y', published: '2026', retrieved: '2026', secondary: false}}\n"
        "factors:\n  - {id: a, kind: grid_electricity, value: 0.1, unit: kg CO2/kWh, gas: CO2, source: s}\n"
        "  - {id: b, kind: grid_electricity, value: 0.1, unit: kg CO2/kWh, gas: CO2, source: t}\n"
    )
    with pytest.raises(ConfigError) as e:
        Registry.load([p])
    assert "needs a note saying why" in str(e.value) and "http(s) link" in str(e.value)


def test_appendix_row_cites_the_table():
    row = Registry.default().get("ipcc2006-t2.3-natural_gas-ch4").appendix_row()
    assert row["document"].endswith("Table 2.3 (manufacturing industries and construction, kg per TJ on a net "
                                    "calorific basis), p. 2.18")
    assert row["url"].endswith("V2_2_Ch2_Stationary_Combustion.pdf")


def test_unknown_factor_id_suggests_close_ids(reg):
    with pytest.raises(UnknownFactorError, match="did you mean cn-mee-2022-national"):
        reg.get("cn-mee-2022-nationl")
    with pytest.raises(UnknownFactorError, match="unknown GWP set"):
        reg.gwp("ar7")


def test_config_with_unknown_factor_is_a_config_error():
    with pytest.raises(ConfigError, match="grid_factor: unknown emission factor id 'cn-mee-2024-national'"):
        load_carbon_config({"grid_factor": "cn-mee-2024-national"})
    with pytest.raises(ConfigError, match="residual_factor: factor 'cn-gbt-heat-default' is a heat factor"):
        load_carbon_config({"residual_factor": "cn-gbt-heat-default"})


def test_user_factor_file_extends_registry_and_version():
    cfg, reg = load_carbon_config({"grid_factor": "example-east-hourly-2026q1",
                                   "factor_files": ["configs/factors_custom.yaml"]})
    assert reg.get("acme-supplier-2026").value == 0.12
    assert reg.get("acme-supplier-2026").version.startswith("user:factors_custom.yaml")
    assert "factors_custom.yaml" in reg.version and reg.digest() != Registry.default().digest()


def test_user_file_cannot_redefine_a_shipped_id(tmp_path):
    p = tmp_path / "f.yaml"
    p.write_text(
        "sources: {s: {document: d, url: 'https://x', published: '2026', retrieved: '2026', secondary: false}}\n"
        "factors:\n  - {id: cn-mee-ets-2022, kind: grid_electricity, value: 0.1, unit: kg CO2/kWh, gas: CO2, source: s}\n"
        "  - {id: bad-unit, kind: grid_electricity, value: 0.1, unit: kg CO2/Nm3, gas: CO2, source: s}\n"
    )
    with pytest.raises(ConfigError) as e:
        Registry.load([p])
    assert "already defined" in str(e.value) and "mass per energy" in str(e.value)


def test_defaults_for_demo_site():
    from factory_models.schema import Site

    cfg = CarbonConfig.for_site(Site(name="smt1", country="CN", grid_region="east"))
    assert cfg.grid_factor == "cn-mee-2023-grid-east" and cfg.residual_factor == "cn-mee-2023-excl-nonfossil"
    cfg.check(Registry.default())
