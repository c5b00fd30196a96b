"""DNS rebinding and the page's own actions, in a real browser (Debian's headless Chromium).

The attack as issue 15 ran it: a page of ``evil.example`` whose name then resolves to 127.0.0.1
POSTs ``force_down`` to its "own" origin, which is the dashboard. Chromium is told that
``evil.example`` is 127.0.0.1 (``--host-resolver-rules``); the attacker's page itself comes from
Playwright's router (it would come from the attacker's server before the name was rebound), so the
browser's fetch to the dashboard is a real request with the attacker's Host and Origin.
"""

from __future__ import annotations

import asyncio

from support.browser import headless_page, require_browser
from support.fake_plant import FakePlant

from twin.dashboard import Dashboard

TOKEN = "tok-browser-0f1e2d3c4b"

ATTACK_PAGE = """<!doctype html><html><body><script>
window.attack = fetch("/api/actions/force_down", {method: "POST", headers: {"Content-Type": "application/json"},
                                                  body: JSON.stringify({unit: "smt1/printer", seconds: 600})})
  .then(r => r.status, e => "failed: " + e);
</script></body></html>"""

# evil.example is 127.0.0.1. Chromium's own guard against public pages calling private addresses
# (Private Network Access) is switched off: Firefox and Safari have none, and the dashboard must not
# depend on the operator's browser to be safe.
REBOUND = ("--host-resolver-rules=MAP evil.example 127.0.0.1",
           ("--disable-features=BlockInsecurePrivateNetworkRequests,PrivateNetworkAccessSendPreflights,"
            "PrivateNetworkAccessRespectPreflightResults,LocalNetworkAccessChecks"))

POST_FROM_PAGE_JS = """(body) => fetch("/api/actions/force_down", {method: "POST",
    headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)}).then(r => r.status)"""


def test_a_rebinding_page_cannot_force_a_station_down():
    require_browser()
    plant = FakePlant()

    async def go():
        # no token: the case the issue exploited (loopback peers were trusted whatever their Host)
        dash = Dashboard(port=0, state=plant, health=plant.health, actions={"force_down": plant.force_down})
        async with dash, headless_page(extra_args=REBOUND) as page:
            attack_url = f"http://evil.example:{dash.port}/attack.html"
            await page.route(attack_url, lambda route: route.fulfill(status=200, content_type="text/html",
                                                                     body=ATTACK_PAGE))
            await page.goto(attack_url)
            status = await page.evaluate("window.attack")
            return status, dash.stats()

    status, stats = asyncio.run(go())
    assert status == 421, status
    # the browser's request did reach the dashboard and was refused (Chromium retries a 421 once, on a
    # fresh connection, as RFC 9110 allows: the second answer is the same)
    assert stats["misdirected"] in (1, 2), stats
    assert plant.forced == [] and plant.down == set()


def test_the_page_acts_with_its_session_cookie():
    """With a token set, the page opened once with ?token= acts through its session cookie alone."""
    require_browser()
    plant = FakePlant()

    async def go():
        dash = Dashboard(port=0, token=TOKEN, state=plant, health=plant.health,
                         actions={"force_down": plant.force_down}, push_interval_s=0.2)
        async with dash, headless_page() as page:
            await page.goto(dash.url + f"/?token={TOKEN}")
            assert page.url == dash.url + "/"  # the token left the address bar
            cookies = await page.context.cookies(dash.url)
            ok = await page.evaluate(POST_FROM_PAGE_JS, {"unit": "smt1/spi", "seconds": 60})
            await page.context.clear_cookies()
            refused = await page.evaluate(POST_FROM_PAGE_JS, {"unit": "smt1/aoi", "seconds": 60})
            return cookies, ok, refused, page.errors

    cookies, ok, refused, errors = asyncio.run(go())
    assert len(cookies) == 1 and cookies[0]["value"] != TOKEN and TOKEN not in cookies[0]["value"]
    assert cookies[0]["httpOnly"] and cookies[0]["sameSite"] == "Strict"
    assert ok == 200 and refused == 401
    assert plant.forced == [("smt1/spi", 60)]
    assert all("401" in e or "Unauthorized" in e for e in errors), errors  # only the refused POST's console line
