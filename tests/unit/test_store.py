"""The embedded SQLite store: round trips, idempotent upserts, downsampling, schema versions."""

from __future__ import annotations

import sqlite3

import pytest

from factory_models.records import EmissionsRecord, KpiWindow, Quality, Sample
from twin.store import SCHEMA_VERSION, Store, StoreError

T0 = 1_700_000_000.0


def windows() -> list[KpiWindow]:
    return [
        KpiWindow("s", "l1", "reflow", T0, T0 + 60, pbt_s=60, apt_s=45, produced=8, good=7, failures=1,
                  availability=0.75, quality=0.875, performance=1.1, flags=["performance>1"]),
        KpiWindow("s", "l1", None, T0, T0 + 60, pbt_s=60, oee=0.5),
        KpiWindow("s", None, None, T0 + 60, T0 + 120, energy_kwh=3.5),
        KpiWindow("s", "l1", "reflow", None, None, pbt_s=3600),  # whole run
    ]


def test_kpi_round_trip_and_levels(tmp_path):
    with Store(tmp_path / "t.sqlite") as st:
        assert st.write_windows(windows()) == 4
        w = windows()
        # Ordered by end, then site, line, station (a line row sorts before its stations).
        assert st.kpis(T0, T0 + 1000) == [w[1], w[0], w[2]]
        assert st.kpis(level="station") == [windows()[3], windows()[0]]
        assert st.kpis(level="line") == [windows()[1]]
        assert st.kpis(level="site") == [windows()[2]]
        assert st.kpis(t1=T0 + 100) == [w[1], w[0]]  # whole-run rows only without a time range
        assert st.kpis()[0].start is None and st.kpis()[0].oee is None


def test_rewrites_do_not_duplicate(tmp_path):
    path = tmp_path / "t.sqlite"
    with Store(path) as st:
        st.write_windows(windows())
        changed = windows()
        changed[0].good = 6.0
        st.write_windows(changed)
        assert st.stats()["rows_kpi"] == 4
        assert st.kpis(T0, T0 + 61, station="reflow")[0].good == 6.0
    with Store(path) as again:  # a re-run over the same period
        again.write_windows(windows())
        assert again.stats()["rows_kpi"] == 4 and again.stats()["written"] == 4


def test_emissions_keep_factor_ids(tmp_path):
    recs = [
        EmissionsRecord("s", "2", "grid", "location", T0, T0 + 3600, 100.0, "kWh", 58.1, co2_kg=58.0,
                        factor_id="cn-east-2023", factor_version="2024-12", gwp_set="AR6"),
        EmissionsRecord("s", "1", "boiler", "direct", T0, T0 + 3600, 10.0, "Nm3", 21.6, factor_id="ipcc-ng"),
        EmissionsRecord("s", "2", "grid", "market", T0 + 3600, T0 + 7200, 90.0, "kWh", 0.0, factor_id="rec-2024"),
    ]
    with Store(tmp_path / "t.sqlite") as st:
        st.write_emissions(recs)
        st.write_emissions(recs)
        assert st.emissions() == [recs[1], recs[0], recs[2]]
        # the ledger's hours are selected by their start (issue 11): [T0 + 3600, T0 + 7200) holds one
        assert st.emissions(T0 + 3600, T0 + 7200) == [recs[2]]
        assert st.stats()["rows_emissions"] == 3


def test_signals_downsample_to_last_min_max_per_bucket(tmp_path):
    b0 = 1_699_999_980.0  # a minute boundary
    samples = [
        Sample("l1/reflow/power_kw", 5.0, b0 + 1),
        Sample("l1/reflow/power_kw", 9.0, b0 + 30),
        Sample("l1/reflow/power_kw", 2.0, b0 + 59, Quality.UNCERTAIN),
        Sample("l1/reflow/power_kw", 7.0, b0 + 61),
        Sample("l1/reflow/power_kw", float("nan"), b0 + 62),
        Sample("l1/reflow/state", "DOWN", b0 + 10),
        Sample("l1/reflow/state", "PRODUCING", b0 + 5),  # older: not the last value
    ]
    with Store(tmp_path / "t.sqlite", bucket_s=60) as st:
        assert st.write_samples(samples, "s") == 6
        st.write_samples(list(reversed(samples)), "s")  # same data, other order: same rows
        power = st.signals("l1/reflow/power_kw")
        assert [(r["bucket"], r["ts"], r["value"], r["min"], r["max"], r["quality"]) for r in power] == [
            (b0, b0 + 59, 2.0, 2.0, 9.0, "uncertain"),
            (b0 + 60, b0 + 61, 7.0, 7.0, 7.0, "good"),
        ]
        assert st.signals("l1/reflow/power_kw", b0 + 60) == power[1:]
        state = st.signals("l1/reflow/state")
        assert [(r["state"], r["value"], r["ts"]) for r in state] == [("DOWN", None, b0 + 10)]
        stats = st.stats()
        assert stats["rejected"] == 2 and stats["rows_signal"] == 3


def test_schema_version_and_newer_file_refused(tmp_path):
    path = tmp_path / "t.sqlite"
    with Store(path) as st:
        assert st.schema_version == SCHEMA_VERSION
        assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(StoreError, match="schema version"):
        Store(path)


def test_the_store_is_a_sink_whose_block_counts_what_it_wrote(tmp_path):
    from factory_models.sink import Sink

    st = Store(tmp_path / "t.sqlite")
    assert isinstance(st, Sink) and st.sink_name == "store"
    st.write_windows(windows())
    st.write_samples([Sample("l1/reflow/power_kw", 1.0, T0), Sample("l1/reflow/power_kw", 2.0, T0 + 1)], "s")
    assert st.health()["windows"] == 4
    block = st.close()
    assert block == {"path": str(tmp_path / "t.sqlite"), "written": 6, "samples": 2, "windows": 4, "emissions": 0,
                     "product_use": 0, "rejected": 0}
    assert st.close() == block  # closing twice is harmless and answers the same
