"""The hourly emissions ledger in the store: identity, whole-hour replacement, rewrites, migration."""

from __future__ import annotations

import sqlite3

from factory_models.records import EmissionsRecord
from twin.store import MIGRATIONS, SCHEMA_VERSION, Store

H = 1_767_225_600.0  # 2026-01-01T00:00Z, an hour boundary


def rec(source="grid", start=H, activity=100.0, co2e=58.1, origin="measured", method="location", scope="2", **kw):
    unit = "Nm3" if scope == "1" else "kWh"
    return EmissionsRecord("s", scope, source, method, start, start + 3600, activity, unit, co2e, co2_kg=co2e,
                           factor_id="f", factor_version="v", gwp_set="ar5", origin=origin, **kw)


def test_new_fields_round_trip(tmp_path):
    r = rec(data_quality="estimated", estimated_activity=40.0, readings=7, resets=1,
            first_reading=H + 10.0, last_reading=H + 3590.0)
    with Store(tmp_path / "t.sqlite") as st:
        st.write_emissions([r])
        assert st.emissions() == [r]
        assert r.to_json()["first_reading"] == "2026-01-01T00:00:10.000Z"


def test_the_same_identity_is_replaced_and_its_writes_counted(tmp_path):
    with Store(tmp_path / "t.sqlite") as st:
        st.write_emissions([rec(), rec(start=H + 3600)])
        assert st.emission_rewrites() == 0
        st.write_emissions([rec(activity=120.0, co2e=69.72)])  # the first hour again, other figures
        held = st.emissions()
        assert [(r.start, r.activity) for r in held] == [(H, 120.0), (H + 3600, 100.0)]
        assert st.emission_rewrites() == 1
        assert st.emission_rewrites(H + 3600, H + 7200) == 0
        db = sqlite3.connect(tmp_path / "t.sqlite")
        assert db.execute("SELECT start, writes FROM emissions ORDER BY start").fetchall() == [(H, 2), (H + 3600, 1)]


def test_an_hour_written_again_replaces_every_source_of_it(tmp_path):
    """A run whose hour had a stand-in source (stations) and a later run with the grid meter: the
    hour holds the later run's sources only, so nothing is added twice."""
    with Store(tmp_path / "t.sqlite") as st:
        st.write_emissions([rec(source="stations"), rec(source="boiler", scope="1", method="direct", co2e=2.0)])
        st.write_emissions([rec(source="grid")])
        assert [r.source for r in st.emissions()] == ["grid"]
        assert st.emission_rewrites() == 1


def test_origins_and_sites_are_apart(tmp_path):
    with Store(tmp_path / "t.sqlite") as st:
        st.write_emissions([rec(origin="measured")])
        st.write_emissions([rec(origin="simulated", activity=5.0)])
        assert [r.activity for r in st.emissions(origin="measured")] == [100.0]
        assert [r.activity for r in st.emissions(origin="simulated")] == [5.0]
        assert st.emission_rewrites() == 0
        assert len(st.emissions(H, H + 3600)) == 2 and st.emissions(H + 1, H + 3600) == []


def test_a_version_2_store_is_migrated_and_its_rows_kept(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    for script in MIGRATIONS[:2]:
        db.executescript(script)
    db.execute("PRAGMA user_version=2")
    old = "INSERT INTO emissions VALUES (?, '2', 'grid', 'market', ?, ?, ?, 'kWh', ?, ?, 0, 0, ?, 'v', 'ar5', ?)"
    t0, t1 = H, H + 86400 * 3  # a whole-run row of the old kind
    db.execute(old, ("s", t0, t1, 90000.0, 52704.0, 52704.0, "residual", "measured"))
    db.execute(old, ("s", t0, t1, 30000.0, 0.0, 0.0, "rec#1", "measured"))
    db.execute(old.replace("'market'", "'location'"), ("s", t0, t1, 120000.0, 64392.0, 64392.0, "grid", "gap_filled"))
    db.commit()
    db.close()
    with Store(path) as st:
        assert st.schema_version == SCHEMA_VERSION
        by_method = {r.method: r for r in st.emissions()}
        m = by_method["market"]
        # the instrument split is merged into one row of the identity: 90,000 + 30,000 kWh
        assert (m.activity, m.co2e_kg, m.factor_id, m.origin, m.end) == (120000.0, 52704.0, "rec#1+residual", "measured", t1)
        loc = by_method["location"]
        assert (loc.data_quality, loc.estimated_activity, loc.activity) == ("estimated", 120000.0, 120000.0)
        st.write_emissions([rec()])  # the new ledger writes into the migrated table
        assert len(st.emissions(H, H + 1)) == 1
