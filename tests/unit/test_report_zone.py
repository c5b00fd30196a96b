"""The store remembers each site's time zone (every run that writes to it records it), so `report`
without --config reads --from/--to in the site's zone; a --config of another zone is refused; an
old store without a zone is read in UTC with a note, as before."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from support.ledger_rows import hours_of
from typer.testing import CliRunner

from factory_models import load_factory
from twin.cli import app
from twin.emissions.account import carbon_setup
from twin.runtime.sinks import LiveWriter, close_sinks
from twin.store import Store, StoreError

ROOT = Path(__file__).parents[2]
SMT = ROOT / "configs" / "demo_smt.yaml"  # site suzhou-smt, Asia/Shanghai
SITE, SH = "suzhou-smt", "Asia/Shanghai"
MAR1 = datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp()
UTC_NOTE = "no --config and no time zone recorded in the store (written before it kept one): the period is read in UTC"
runner = CliRunner()


def store_of(tmp_path, zone: str | None) -> Path:
    """72 hours from 2026-03-01T00:00Z, hour i imports (i + 1) kWh at 0.5 kg/kWh; ``zone`` recorded."""
    path = tmp_path / "s.sqlite"
    with Store(path) as st:
        st.write_emissions(hours_of(SITE, "grid", "2", "location", "kWh", MAR1, 72, [i + 1.0 for i in range(72)], 0.5,
                                    factor_id="cn-mee-2023-national"))
        if zone:
            st.record_site_zone(SITE, zone)
    return path


def report(path: Path, tmp_path, *extra: str):
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["report", "--store", str(path), "--from", "2026-03-02", "--to", "2026-03-03",
                                 "-f", "json", "-o", str(out), "--json", *extra])
    return result, (json.loads(out.read_text()) if result.exit_code == 0 else None)


def test_without_config_the_day_is_the_sites_day_the_store_recorded(tmp_path):
    result, inv = report(store_of(tmp_path, SH), tmp_path)
    assert result.exit_code == 0, result.output
    # 2 March in Shanghai is 16:00 UTC on 1 March .. 16:00 UTC on 2 March: hours 16..39 of the data,
    # (17 + 18 + ... + 40) kWh = (17 + 40) * 24 / 2 = 684 kWh, at 0.5 kg/kWh 342 kg
    assert inv["totals"]["grid_import_kwh"] == pytest.approx(684.0, abs=1e-9)
    assert inv["totals"]["scope2_location_co2e_kg"] == pytest.approx(342.0, abs=1e-9)
    assert inv["hours"][0]["start"] == "2026-03-01T16:00:00.000Z" and len(inv["hours"]) == 24
    assert inv["coverage"]["hours_with_data"] == 24
    assert UTC_NOTE not in json.loads(result.output)["notes"]


def test_an_old_store_without_a_zone_reads_utc_and_says_so(tmp_path):
    result, inv = report(store_of(tmp_path, None), tmp_path)
    assert result.exit_code == 0, result.output
    # the UTC day 2 March: hours 24..47, (25 + ... + 48) kWh = (25 + 48) * 24 / 2 = 876 kWh
    assert inv["totals"]["grid_import_kwh"] == pytest.approx(876.0, abs=1e-9)
    assert inv["hours"][0]["start"] == "2026-03-02T00:00:00.000Z"
    assert UTC_NOTE in json.loads(result.output)["notes"]


def test_a_config_of_another_zone_than_the_stores_is_refused_naming_both(tmp_path):
    result, _ = report(store_of(tmp_path, "Europe/Berlin"), tmp_path, "--config", str(SMT))
    assert result.exit_code == 2
    assert str(SMT) in result.output and SH in result.output and "Europe/Berlin" in result.output
    # the same zone agrees: the Shanghai day again
    result, inv = report(store_of(tmp_path / "b", SH), tmp_path, "--config", str(SMT))
    assert result.exit_code == 0, result.output
    assert inv["totals"]["grid_import_kwh"] == pytest.approx(684.0, abs=1e-9)


def test_sites_in_several_zones_need_site(tmp_path):
    path = store_of(tmp_path, SH)
    with Store(path) as st:
        st.record_site_zone("berlin", "Europe/Berlin")
    result, _ = report(path, tmp_path)
    assert result.exit_code == 2 and "several time zones" in result.output and "--site" in result.output
    result, inv = report(path, tmp_path, "--site", SITE)
    assert result.exit_code == 0, result.output
    assert inv["totals"]["grid_import_kwh"] == pytest.approx(684.0, abs=1e-9)


def test_simulate_records_the_zone_and_a_store_of_another_zone_is_refused(tmp_path):
    path = tmp_path / "sim.sqlite"
    result = runner.invoke(app, ["simulate", str(SMT), "--hours", "1", "--store", str(path), "--json"])
    assert result.exit_code == 0, result.output
    with Store(path) as st:
        assert st.site_zones() == {SITE: SH}
        st.record_site_zone(SITE, SH)  # the same zone again: nothing changes
        with pytest.raises(StoreError, match="Asia/Shanghai.*Europe/Berlin"):
            st.record_site_zone(SITE, "Europe/Berlin")
        assert st.site_zones() == {SITE: SH}


def test_a_live_run_records_the_zone_when_it_starts(tmp_path):
    factory = load_factory(SMT)
    sinks = [Store(tmp_path / "live.sqlite")]
    LiveWriter(factory, sinks, carbon_setup(factory, SMT))
    assert sinks[0].site_zones() == {SITE: SH}
    close_sinks(sinks)
    # a store that holds another zone for the site: the run does not start, and its store is closed
    other = Store(tmp_path / "other.sqlite")
    other.record_site_zone(SITE, "Europe/Berlin")
    with pytest.raises(StoreError, match="Europe/Berlin.*Asia/Shanghai"):
        LiveWriter(factory, [other], carbon_setup(factory, SMT))
    with pytest.raises(sqlite3.ProgrammingError, match="closed database"):
        other.site_zones()
