"""The dashboard server over real HTTP on loopback: state, events, health, metrics, actions, tokens.

The state comes from ``FakePlant`` (tests/support/fake_plant.py), a provider of the documented state document whose figures change
on every call (so a test can tell which call a response came from); the server under test is real.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from twin.dashboard import Dashboard, DashboardAuthError, load_token
from twin.dashboard.auth import COOKIE_NAME, AccessPolicy, is_loopback_address, is_loopback_host

STATIC = Path(__file__).resolve().parents[2] / "twin" / "dashboard" / "static"


from support.fake_plant import FakePlant  # noqa: E402


def serve(plant: FakePlant, **kw) -> Dashboard:
    return Dashboard(host=kw.pop("host", "127.0.0.1"), port=0, state=plant, health=plant.health,
                     actions={"force_down": plant.force_down}, **kw)


def run(coro):
    return asyncio.run(coro)


# --- access policy (pure) ---------------------------------------------------------------------------


def test_loopback_addresses():
    assert is_loopback_address("127.0.0.1") and is_loopback_address("127.8.9.10")
    assert is_loopback_address("::1") and is_loopback_address("::ffff:127.0.0.1")
    assert not is_loopback_address("10.200.0.1") and not is_loopback_address("::ffff:10.0.0.1")
    assert not is_loopback_address(None) and not is_loopback_address("not-an-ip")
    assert is_loopback_host("127.0.0.1") and is_loopback_host("localhost") and is_loopback_host("::1")
    assert not is_loopback_host("0.0.0.0") and not is_loopback_host("::") and not is_loopback_host("")


def test_non_loopback_bind_without_token_refuses_to_start():
    with pytest.raises(DashboardAuthError, match="without a token.*FACTORY_TWIN_DASHBOARD_TOKEN"):
        Dashboard(host="0.0.0.0", state=dict, health=dict)
    # with a token it is accepted (not started here)
    assert Dashboard(host="0.0.0.0", token="t0ken", state=dict, health=dict).policy.has_token


def test_policy_decides_per_peer():
    p = AccessPolicy("0.0.0.0", "s3cret")
    no_headers: dict = {}
    assert p.allows("127.0.0.1", no_headers, None, None)  # local peer, not proxied
    assert not p.allows("10.200.0.2", no_headers, None, None)
    assert not p.allows("10.200.0.2", {"Authorization": "Bearer wrong"}, "wrong", "wrong")
    assert p.allows("10.200.0.2", {"Authorization": "Bearer s3cret"}, None, None)
    assert p.allows("10.200.0.2", no_headers, "s3cret", None)
    assert not p.allows("10.200.0.2", no_headers, None, "s3cret")  # a cookie holds a session id, never the token
    sid = p.new_session()
    assert sid != "s3cret" and p.allows("10.200.0.2", no_headers, None, sid)
    assert p.allows("10.200.0.2", no_headers, None, sid, "POST")
    # with a token set, loopback may read without it but not act: a local browser's pages are loopback peers
    assert not p.allows("127.0.0.1", no_headers, None, None, "POST")
    assert p.allows("127.0.0.1", {"Authorization": "Bearer s3cret"}, None, None, "POST")
    assert p.allows("127.0.0.1", no_headers, None, sid, "POST")
    assert p.allows("127.0.0.1", no_headers, None, None, "HEAD")
    # without a token (loopback bind only) there is nothing to ask for
    assert AccessPolicy("127.0.0.1", None).allows("127.0.0.1", no_headers, None, None, "POST")
    # a reverse proxy on this host relays remote users through loopback: they need the token too
    assert not p.allows("127.0.0.1", {"X-Forwarded-For": "10.1.1.1"}, None, None)
    assert p.allows("127.0.0.1", {"X-Forwarded-For": "10.1.1.1"}, "s3cret", None)
    assert "s3cret" not in repr(p)


def test_load_token_from_env_and_file(tmp_path, monkeypatch):
    monkeypatch.delenv("FACTORY_TWIN_DASHBOARD_TOKEN", raising=False)
    assert load_token() is None
    monkeypatch.setenv("FACTORY_TWIN_DASHBOARD_TOKEN", "  from-env \n")
    assert load_token() == "from-env"
    f = tmp_path / "token"
    f.write_text("from-file\n")
    assert load_token(file=f) == "from-file"  # the file wins over the environment
    f.write_text("\n  \n")
    with pytest.raises(DashboardAuthError, match="is empty"):
        load_token(file=f)
    with pytest.raises(DashboardAuthError, match="cannot read"):
        load_token(file=tmp_path / "missing")
    monkeypatch.setenv("FACTORY_TWIN_DASHBOARD_TOKEN", " ")
    with pytest.raises(DashboardAuthError, match="set but empty"):
        load_token()


# --- routes -----------------------------------------------------------------------------------------


def test_state_health_and_static_files():
    plant = FakePlant()

    async def go():
        async with serve(plant) as dash, aiohttp.ClientSession() as http:
            assert dash.url.startswith("http://127.0.0.1:") and dash.port > 0
            async with http.get(dash.url + "/api/state") as r:
                assert r.status == 200 and r.content_type == "application/json"
                doc = await r.json()
            assert doc == json.loads(json.dumps(plant.docs[doc["now"]]))
            async with http.get(dash.url + "/health") as r:
                assert r.status == 200
                health = await r.json()
            assert health["spool"]["spool_depth"] == 42 and health["samples"]["rejected_by_reason"] == {"duplicate": 4, "nan": 6}
            assert health["dashboard"] == {"clients": 0, "events_sent": 0, "state_errors": 0, "refused": 0,
                                           "misdirected": 0}
            async with http.get(dash.url + "/") as r:
                page = await r.text()
                assert r.status == 200 and "Content-Security-Policy" in r.headers
            assert '<script src="/static/vendor/uPlot.iife.min.js">' in page
            for asset in ("/static/app.js", "/static/style.css", "/static/vendor/uPlot.iife.min.js",
                          "/static/vendor/uPlot.min.css"):
                async with http.get(dash.url + asset) as r:
                    assert r.status == 200, asset
                    assert len(await r.read()) > 500, asset
            async with http.get(dash.url + "/static/../server.py") as r:
                assert r.status in (403, 404)

    run(go())


def test_the_page_loads_nothing_from_elsewhere():
    """Plants are often offline: every script, style and font comes from this server."""
    for name in ("index.html", "app.js", "style.css"):
        text = (STATIC / name).read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, name
    assert (STATIC / "vendor" / "uPlot.LICENSE").read_text().startswith("The MIT License")


def test_events_push_the_state_document():
    plant = FakePlant()

    async def go():
        async with serve(plant, push_interval_s=0.05) as dash, aiohttp.ClientSession() as http:
            async with http.get(dash.url + "/events") as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
                events, current = [], {}
                async for raw in r.content:
                    line = raw.decode().rstrip("\n")
                    if not line:
                        if "data" in current:
                            events.append(current)
                        current = {}
                        if len(events) == 4:
                            break
                        continue
                    field, _, value = line.partition(": ")
                    current[field] = value
                assert dash.stats()["clients"] == 1
        return events

    events = run(go())
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 4
    for e in events:
        assert e["event"] == "state"
        doc = json.loads(e["data"])
        assert doc == json.loads(json.dumps(plant.docs[doc["now"]]))  # exactly what the provider returned


def test_non_finite_numbers_go_out_as_null():
    plant = FakePlant()

    def state():
        doc = plant()
        doc["lines"][0]["stations"][0]["kpi"]["performance"] = float("nan")
        doc["energy"]["power_kw"] = float("inf")
        return doc

    async def go():
        dash = Dashboard(port=0, state=state, health=plant.health)
        async with dash, aiohttp.ClientSession() as http:
            async with http.get(dash.url + "/api/state") as r:
                return json.loads(await r.text())

    doc = run(go())
    assert doc["lines"][0]["stations"][0]["kpi"]["performance"] is None and doc["energy"]["power_kw"] is None


def test_metrics_expose_the_documents():
    plant = FakePlant()

    async def go():
        async with serve(plant) as dash, aiohttp.ClientSession() as http:
            async with http.get(dash.url + "/metrics") as r:
                assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
                return await r.text()

    text = run(go())
    doc = plant.docs[max(plant.docs)]  # the one call the scrape made
    assert plant.calls == 1
    fams = {f.name: f for f in text_string_to_metric_families(text)}

    def value(name, **labels):
        hits = [s.value for s in fams[name].samples if all(s.labels.get(k) == v for k, v in labels.items())
                and set(s.labels) == set(labels)]
        assert len(hits) == 1, (name, labels, hits)
        return hits[0]

    # counts come from the health document when it has them
    assert value("factory_twin_samples_received", ) == 5000
    assert value("factory_twin_samples_rejected_by_reason", reason="nan") == 6
    assert fams["factory_twin_samples_rejected_by_reason"].type == "counter"
    assert value("factory_twin_connection_up", source="plc") == 1
    assert value("factory_twin_spool_depth_points") == 42
    site = {"site": "suzhou-smt"}
    for st in doc["lines"][0]["stations"]:
        labels = {**site, "line": "smt1", "station": st["station"]}
        states = {s.labels["state"]: s.value for s in fams["factory_twin_station_state"].samples
                  if s.labels["station"] == st["station"]}
        assert states[st["state"]] == 1 and sum(states.values()) == 1 and len(states) == 9
        assert math.isclose(value("factory_twin_oee_ratio", **labels), st["kpi"]["oee"], rel_tol=1e-15)
        assert math.isclose(value("factory_twin_power_kw", **labels), st["power_kw"], rel_tol=1e-15)
        assert value("factory_twin_time_element_seconds", element="adet", **labels) == st["kpi"]["adet_s"]
        assert value("factory_twin_bottleneck", **labels) == (1 if st["station"] == doc["lines"][0]["bottleneck"] else 0)
    assert math.isclose(value("factory_twin_oee_ratio", **site), doc["site_kpi"]["oee"], rel_tol=1e-15)
    assert value("factory_twin_site_power_kw", **site) == doc["energy"]["power_kw"]
    assert value("factory_twin_site_shift_energy_kwh", **site) == doc["energy"]["shift_kwh"]
    assert value("factory_twin_co2e_rate_kg_per_hour", method="market", **site) == doc["energy"]["co2e_rate_kg_per_h"]["market"]
    assert value("factory_twin_shift_co2e_kg", method="location", **site) == doc["energy"]["shift_co2e_kg"]["location"]
    assert value("factory_twin_alarms", level="warning", kind="stale") == 1
    assert value("factory_twin_up", part="state") == 1


def test_a_failing_state_provider_is_reported_not_hidden(caplog):
    plant = FakePlant()
    plant.fail = True

    async def go():
        async with serve(plant) as dash, aiohttp.ClientSession() as http:
            async with http.get(dash.url + "/api/state") as r:
                assert r.status == 503 and "state provider failed" in (await r.json())["error"]
            async with http.get(dash.url + "/metrics") as r:
                text = await r.text()
        return text

    with caplog.at_level(logging.ERROR, logger="twin.dashboard.server"):
        text = run(go())
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    assert [s.value for s in fams["factory_twin_up"].samples if s.labels["part"] == "state"] == [0]
    assert fams["factory_twin_dashboard_state_errors"].samples[0].value == 2
    assert fams["factory_twin_spool_depth_points"].samples[0].value == 42  # health still answers
    assert any("the twin is gone" in (r.exc_text or "") for r in caplog.records)


def test_force_down_action():
    plant = FakePlant()

    async def go():
        async with serve(plant) as dash, aiohttp.ClientSession() as http:
            url = dash.url + "/api/actions/force_down"
            async with http.post(url, json={"unit": "smt1/reflow", "seconds": 120}) as r:
                assert r.status == 200 and (await r.json())["result"] == {"unit": "smt1/reflow", "seconds": 120}
            async with http.post(url, data="unit=smt1/reflow&seconds=1",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:
                assert r.status == 415
            async with http.post(url, json={"unit": "smt1/reflow", "seconds": 1},
                                 headers={"Origin": "http://evil.example"}) as r:
                assert r.status == 403
            async with http.post(url, json={"unit": "smt1/nope", "seconds": 60}) as r:
                assert r.status == 400 and "unknown unit" in (await r.json())["error"]
            async with http.post(url, json={"unit": "smt1/printer", "seconds": -1}) as r:
                assert r.status == 400 and "seconds > 0" in (await r.json())["error"]
            async with http.post(url, json={"unit": "smt1/printer"}) as r:
                assert r.status == 400 and "seconds" in (await r.json())["error"]
            async with http.post(url, json=["smt1/printer", 5]) as r:
                assert r.status == 400
            async with http.post(dash.url + "/api/actions/explode", json={}) as r:
                assert r.status == 404 and "force_down" in (await r.json())["error"]
            async with http.get(dash.url + "/api/state") as r:
                doc = await r.json()
        return doc

    doc = run(go())
    assert plant.forced == [("smt1/reflow", 120)]
    reflow = [s for s in doc["lines"][0]["stations"] if s["station"] == "reflow"][0]
    assert reflow["state"] == "DOWN"


def test_token_in_the_address_becomes_a_cookie_and_never_a_log_line(caplog):
    plant = FakePlant()
    token = "tok-9f8e7d6c5b4a"

    async def go():
        dash = serve(plant, token=token)
        async with dash, aiohttp.ClientSession() as http:
            async with http.get(dash.url + f"/?token={token}&view=big", allow_redirects=False) as r:
                assert r.status == 303 and r.headers["Location"] == "/?view=big"
                cookie = r.cookies[COOKIE_NAME]
                assert token not in r.headers["Set-Cookie"]  # a session id, never the token
                assert cookie["httponly"] and cookie["samesite"] == "Strict"
            async with http.get(dash.url + "/?token=wrong", allow_redirects=False) as r:
                assert r.status == 200 and COOKIE_NAME not in r.cookies  # loopback: allowed, but no cookie

    with caplog.at_level(logging.DEBUG):
        run(go())
    assert caplog.records  # the access log did run
    assert all(token not in r.getMessage() for r in caplog.records)


def test_stop_ends_open_event_streams():
    plant = FakePlant()

    async def go():
        dash = serve(plant, push_interval_s=30)  # only the event sent on connecting
        await dash.start()
        async with aiohttp.ClientSession() as http:
            async with http.get(dash.url + "/events") as r:
                await r.content.readuntil(b"\n\n")  # retry line
                await r.content.readuntil(b"\n\n")  # the first state event
                assert dash.stats()["clients"] == 1
                await asyncio.wait_for(dash.stop(), timeout=10)
                rest = await asyncio.wait_for(r.content.read(), timeout=10)  # the server ended the stream
        return rest, dash.stats()

    rest, stats = run(go())
    assert stats["clients"] == 0
    assert b"event: state" not in rest
