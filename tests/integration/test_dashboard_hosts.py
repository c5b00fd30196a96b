"""The dashboard against DNS rebinding and cookie theft, over real HTTP (and HTTPS) on loopback.

A rebinding page is served under the attacker's name, which then resolves to 127.0.0.1: the
browser sends the attacker's name in the Host header, and the server answers 421. With a token
configured, an action needs it even from loopback, and the cookie holds a session id, not the token.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import socket
import ssl

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from support.fake_plant import FakePlant

from twin.dashboard import Dashboard, DashboardAuthError
from twin.dashboard.auth import (
    COOKIE_NAME,
    HostAllowList,
    SessionStore,
    cross_origin,
    served_over_tls,
    split_host,
)

TOKEN = "tok-rebind-5e4d3c2b1a"
BODY = {"unit": "smt1/printer", "seconds": 60}


def serve(plant: FakePlant, **kw) -> Dashboard:
    return Dashboard(host=kw.pop("host", "127.0.0.1"), port=0, state=plant, health=plant.health,
                     actions={"force_down": plant.force_down}, **kw)


# --- the allow-list and the sessions (pure) -----------------------------------------------------------


def test_host_header_parsing():
    assert split_host("LocalHost:8050") == ("localhost", 8050)
    assert split_host("[::1]:8050") == ("::1", 8050) and split_host("[::1]") == ("::1", None)
    assert split_host("plant.example.") == ("plant.example", None)
    for bad in ("::1", "[::1", "a:b", "a:0", "a:70000", "a/b:1", "user@a:1", "", ":8050"):
        assert split_host(bad) is None, bad


def test_allow_list_names_and_ports():
    hosts = HostAllowList("127.0.0.1", 8050, ["plant-pc.example", "proxy.example:443"])
    for ok in ("127.0.0.1:8050", "localhost:8050", "LOCALHOST:8050", "[::1]:8050", "plant-pc.example",
               "plant-pc.example:9999", "proxy.example:443", None):
        assert hosts.allows(ok), ok
    for bad in ("evil.example:8050", "evil.example", "127.0.0.1:8051", "localhost", "proxy.example:80",
                "10.1.2.3:8050", "localhost.evil.example:8050", "127.0.0.1.evil.example:8050", "[::1"):
        assert not hosts.allows(bad), bad
    assert HostAllowList("127.0.0.1", 443).allows("localhost", secure=True)  # no port: the scheme's
    # a wildcard bind cannot list its addresses; an IP literal cannot be rebound, so any is accepted
    wild = HostAllowList("0.0.0.0", 8050)
    assert wild.allows("10.1.2.3:8050") and wild.allows("[fe80::1]:8050") and not wild.allows("evil.example:8050")
    assert wild.allows(f"{socket.gethostname()}:8050") and not wild.allows("10.1.2.3:8051")
    assert HostAllowList("10.0.0.5", 8050).allows("10.0.0.5:8050")
    assert not HostAllowList("10.0.0.5", 8050).allows("10.0.0.6:8050")
    with pytest.raises(DashboardAuthError, match="not a host name"):
        HostAllowList("127.0.0.1", 8050, ["http://plant.example/"])


def test_cross_origin_judgement():
    own = {"Host": "127.0.0.1:8050"}
    assert cross_origin(own) is None  # curl: no Origin, judged by the token
    assert cross_origin({**own, "Origin": "http://127.0.0.1:8050", "Sec-Fetch-Site": "same-origin"}) is None
    assert cross_origin({**own, "Origin": "HTTP://127.0.0.1:8050"}) is None
    # behind a TLS-terminating proxy that passes the Host on: the page is https, the request http
    assert cross_origin({"Host": "twin.plant.example", "Origin": "https://twin.plant.example"}) is None
    for origin in ("http://evil.example:8050", "http://127.0.0.1:3000", "http://127.0.0.1", "null",
                   "file://", "ftp://127.0.0.1:8050"):
        assert cross_origin({**own, "Origin": origin}) == f"Origin {origin}", origin
    for site in ("cross-site", "same-site"):
        assert cross_origin({**own, "Origin": "http://127.0.0.1:8050", "Sec-Fetch-Site": site}) is not None


def test_tls_is_read_from_a_proxy_on_this_host_only():
    assert served_over_tls(True, "10.1.1.1", {})
    assert served_over_tls(False, "127.0.0.1", {"X-Forwarded-Proto": "https"})
    assert not served_over_tls(False, "10.1.1.1", {"X-Forwarded-Proto": "https"})  # anyone can send it
    assert not served_over_tls(False, "127.0.0.1", {"X-Forwarded-Proto": "http"})


def test_sessions_are_random_and_expire():
    now = [1000.0]
    store = SessionStore(60.0, max_sessions=3, clock=lambda: now[0])
    a, b = store.new(), store.new()
    assert a != b and len(a) >= 40 and store.valid(a) and store.valid(b)
    assert not store.valid(None) and not store.valid("") and not store.valid("guess")
    now[0] += 59.9
    assert store.valid(a)
    now[0] += 0.1
    assert not store.valid(a) and len(store) == 1  # an expired id is dropped when it is offered
    c = store.new()  # ... or when a session is made
    assert not store.valid(b) and len(store) == 1 and store.valid(c)
    d, e, f = store.new(), store.new(), store.new()
    assert len(store) == 3 and not store.valid(c) and store.valid(d) and store.valid(e) and store.valid(f)  # full: the oldest went
    assert "sessions=3" in repr(store) and d not in repr(store)


# --- over HTTP ----------------------------------------------------------------------------------------


def test_a_foreign_host_header_gets_421_on_every_route(caplog):
    """The rebinding attack as the browser makes it: the attacker's name in Host, and its Origin."""
    plant = FakePlant()

    async def go():
        async with serve(plant) as dash, aiohttp.ClientSession() as http:
            evil = {"Host": f"evil.example:{dash.port}"}
            for path in ("/", "/api/state", "/events", "/health", "/metrics", "/static/app.js"):
                async with http.get(dash.url + path, headers=evil) as r:
                    assert r.status == 421, path
                    assert "suzhou-smt" not in await r.text(), path
            async with http.post(dash.url + "/api/actions/force_down", json=BODY,
                                 headers={**evil, "Origin": f"http://evil.example:{dash.port}"}) as r:
                assert r.status == 421
            async with http.post(dash.url + "/api/actions/force_down", json=BODY, headers=evil) as r:
                assert r.status == 421
            misdirected, calls = dash.stats()["misdirected"], plant.calls
            # the names of this server are still served
            for host in (f"127.0.0.1:{dash.port}", f"localhost:{dash.port}", f"[::1]:{dash.port}"):
                async with http.get(dash.url + "/api/state", headers={"Host": host}) as r:
                    assert r.status == 200, host
            async with http.get(dash.url + "/api/state", headers={"Host": f"127.0.0.1:{dash.port + 1}"}) as r:
                assert r.status == 421
            async with http.get(dash.url + "/metrics") as r:
                metrics = await r.text()
        return misdirected, calls, metrics

    with caplog.at_level(logging.WARNING, logger="twin.dashboard.server"):
        misdirected, calls, metrics = asyncio.run(go())
    assert misdirected == 8 and calls == 0 and plant.forced == []  # nothing reached the twin
    assert "factory_twin_dashboard_misdirected_total 9\n" in metrics
    assert any("evil.example" in r.getMessage() for r in caplog.records)


def test_configured_host_names_are_served():
    plant = FakePlant()

    async def go():
        async with serve(plant, allowed_hosts=["twin.plant.example"]) as dash, aiohttp.ClientSession() as http:
            async with http.get(dash.url + "/api/state", headers={"Host": f"twin.plant.example:{dash.port}"}) as r:
                assert r.status == 200
            async with http.get(dash.url + "/api/state", headers={"Host": f"other.plant.example:{dash.port}"}) as r:
                assert r.status == 421

    asyncio.run(go())


def test_with_a_token_a_loopback_action_needs_it():
    plant = FakePlant()

    async def go():
        dash = serve(plant, token=TOKEN)
        async with dash, aiohttp.ClientSession() as http:
            url = dash.url + "/api/actions/force_down"
            async with http.get(dash.url + "/api/state") as r:
                assert r.status == 200  # reading from loopback stays free
            async with http.post(url, json=BODY) as r:
                assert r.status == 401 and "valid token is required" in await r.text()
            assert plant.forced == []
            async with http.post(url, json=BODY, headers={"Authorization": "Bearer wrong"}) as r:
                assert r.status == 401
            # the raw token where the cookie goes is no credential
            async with http.post(url, json=BODY, headers={"Cookie": f"{COOKIE_NAME}={TOKEN}"}) as r:
                assert r.status == 401
            assert plant.forced == [] and dash.stats()["refused"] == 3
            async with http.post(url, json=BODY, headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                assert r.status == 200
            assert plant.forced == [("smt1/printer", 60)]

    asyncio.run(go())


def test_the_cookie_is_a_session_the_page_acts_with():
    """Open the page once with ?token=, then act as the page does: same origin, the cookie only."""
    plant = FakePlant()

    async def go():
        async with serve(plant, token=TOKEN) as dash, aiohttp.ClientSession() as http:
            async with http.get(dash.url + f"/?token={TOKEN}", allow_redirects=False) as r:
                assert r.status == 303
                set_cookie = r.headers["Set-Cookie"]
                sid = r.cookies[COOKIE_NAME].value
            async with http.get(dash.url + f"/?token={TOKEN}", allow_redirects=False) as r:
                other = r.cookies[COOKIE_NAME].value
            url = dash.url + "/api/actions/force_down"
            jar = {"Cookie": f"{COOKIE_NAME}={sid}", "Origin": dash.url, "Sec-Fetch-Site": "same-origin"}
            async with http.post(url, json=BODY, headers=jar) as r:
                assert r.status == 200
            # the same session, posted by another site's page (a session cookie is no CSRF ticket)
            async with http.post(url, json={**BODY, "unit": "smt1/spi"},
                                 headers={**jar, "Origin": "http://evil.example"}) as r:
                assert r.status == 403 and "cross-origin" in await r.text()
            async with http.post(url, json={**BODY, "unit": "smt1/spi"},
                                 headers={**jar, "Origin": dash.url, "Sec-Fetch-Site": "cross-site"}) as r:
                assert r.status == 403
        # sessions end with the server: the next one does not know them
        async with serve(plant, token=TOKEN) as dash, aiohttp.ClientSession() as http:
            async with http.post(dash.url + "/api/actions/force_down", json=BODY,
                                 headers={"Cookie": f"{COOKIE_NAME}={sid}"}) as r:
                assert r.status == 401
        return set_cookie, sid, other

    set_cookie, sid, other = asyncio.run(go())
    assert TOKEN not in set_cookie and sid != other and len(sid) >= 40
    attrs = [a.strip().lower() for a in set_cookie.split(";")]
    assert "httponly" in attrs and "samesite=strict" in attrs and "path=/" in attrs
    assert "secure" not in attrs  # plain HTTP: a Secure cookie would never come back
    assert any(a.startswith("max-age=") for a in attrs)
    assert plant.forced == [("smt1/printer", 60)]


def _self_signed(directory) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "dash.crt", directory / "dash.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert_path), str(key_path)


def test_under_tls_the_cookie_is_secure(tmp_path):
    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=cert)
    plant = FakePlant()

    async def go():
        async with serve(plant, token=TOKEN, ssl_context=server_ctx) as dash, aiohttp.ClientSession() as http:
            assert dash.url.startswith("https://127.0.0.1:")
            async with http.get(dash.url + f"/?token={TOKEN}", allow_redirects=False, ssl=client_ctx) as r:
                assert r.status == 303
                set_cookie = r.headers["Set-Cookie"]
                sid = r.cookies[COOKIE_NAME].value
            async with http.post(dash.url + "/api/actions/force_down", json=BODY, ssl=client_ctx,
                                 headers={"Cookie": f"{COOKIE_NAME}={sid}", "Origin": dash.url}) as r:
                assert r.status == 200
            async with http.get(dash.url + "/api/state", ssl=client_ctx,
                                headers={"Host": f"evil.example:{dash.port}"}) as r:
                assert r.status == 421
        return set_cookie

    set_cookie = asyncio.run(go())
    attrs = [a.strip().lower() for a in set_cookie.split(";")]
    assert "secure" in attrs and "httponly" in attrs and "samesite=strict" in attrs and TOKEN not in set_cookie
    assert plant.forced == [("smt1/printer", 60)]


def test_behind_a_tls_proxy_on_this_host_the_cookie_is_secure():
    plant = FakePlant()

    async def go():
        async with serve(plant, token=TOKEN) as dash, aiohttp.ClientSession() as http:
            async with http.get(dash.url + f"/?token={TOKEN}", allow_redirects=False,
                                headers={"X-Forwarded-Proto": "https"}) as r:
                assert r.status == 303
                set_cookie = r.headers["Set-Cookie"]
                sid = r.cookies[COOKIE_NAME].value
            # the page, now https behind the proxy, acts on the same host name
            async with http.post(dash.url + "/api/actions/force_down", json=BODY,
                                 headers={"Cookie": f"{COOKIE_NAME}={sid}", "Origin": f"https://127.0.0.1:{dash.port}"}) as r:
                assert r.status == 200
        return set_cookie

    set_cookie = asyncio.run(go())
    assert "secure" in [a.strip().lower() for a in set_cookie.split(";")]
    assert plant.forced == [("smt1/printer", 60)]
