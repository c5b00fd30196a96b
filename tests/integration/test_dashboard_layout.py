"""What an operator reads off the page, measured in headless Chromium: A, P and Q apart and labelled,
a colour of its own for each waiting state, the chart drawn from the twin's history at the first
event, and the eight station cards of the demo line inside the screen at common widths."""

from __future__ import annotations

import asyncio

import pytest
from support.browser import fmt_pct, headless_page, require_browser
from support.fake_plant import FakePlant

from twin.dashboard import Dashboard

pytestmark = pytest.mark.timeout(120)


async def first_event(page, plant: FakePlant, *, width: int, height: int, ticks: int = 0) -> dict:
    """Open the page after ``ticks`` ticks of the plant; return the one document it drew.

    The push interval is far longer than the test, so the page holds exactly the document the server
    sends on connect (the first event), and what it shows cannot move while it is measured.
    """
    for _ in range(ticks):
        plant()
    dash = Dashboard(port=0, state=plant, health=plant.health, push_interval_s=600)
    await dash.start()
    page.dash = dash
    await page.set_viewport_size({"width": width, "height": height})
    await page.goto(dash.url + "/")
    await page.wait_for_function("() => Number(document.body.dataset.events || 0) >= 1", timeout=15000)
    now = await page.evaluate("document.querySelector(`[data-testid='now']`).dataset.value")
    return plant.docs[now]


def run_page(body, *, width: int = 1920, height: int = 1080, ticks: int = 0):
    require_browser()
    plant = FakePlant()

    async def go():
        async with headless_page(width=width, height=height) as page:
            try:
                doc = await first_event(page, plant, width=width, height=height, ticks=ticks)
                await body(page, doc)
                assert page.errors == []
            finally:
                if getattr(page, "dash", None) is not None:
                    await page.dash.stop()

    asyncio.run(go())


# --- 1. availability, performance and quality: three labelled figures, apart ---------------------------

APQ_JS = """(k) => ['availability', 'performance', 'quality'].map((key) => {
  const b = document.querySelector(`[data-testid='${key}-${k}']`);
  const r = b.getBoundingClientRect();
  return {row: b.parentElement.innerText, left: r.left, right: r.right, top: r.top, bottom: r.bottom};
})"""


def test_a_p_and_q_are_labelled_and_apart_on_every_station_card():
    async def body(page, doc):
        (line,) = doc["lines"]
        for st in line["stations"]:
            k = f"smt1-{st['station']}"
            rows = await page.evaluate(APQ_JS, k)
            shown = [r["row"] for r in rows]
            kpi = st["kpi"]
            assert shown == [f"A {fmt_pct(kpi['availability'])}", f"P {fmt_pct(kpi['performance'])}",
                             f"Q {fmt_pct(kpi['quality'])}"], (k, shown)
            # no two figures touch: apart by 6 px side by side, or on separate lines
            for i in range(3):
                for j in range(i + 1, 3):
                    a, b = rows[i], rows[j]
                    apart_x = b["left"] - a["right"] >= 6 or a["left"] - b["right"] >= 6
                    apart_y = b["top"] >= a["bottom"] - 0.5 or a["top"] >= b["bottom"] - 0.5
                    assert apart_x or apart_y, (k, i, j, rows)

    run_page(body, width=1600, height=900)


# --- 2. a colour for each state ----------------------------------------------------------------------

COLOURS_JS = """() => {
  const swatch = {};
  for (const el of document.querySelectorAll("[data-testid='state-legend'] .swatch")) {
    const state = [...el.classList].find((c) => c.startsWith('st-')).slice(3);
    swatch[state] = getComputedStyle(el).backgroundColor;
  }
  const cards = [...document.querySelectorAll('.station')].map((el) => ({
    state: el.querySelector('.st-state').dataset.value,
    border: getComputedStyle(el).borderTopColor,
    badge: getComputedStyle(el.querySelector('.st-state')).backgroundColor,
  }));
  return {swatch, cards};
}"""


def rgb(css: str) -> tuple[int, ...]:
    return tuple(int(float(v)) for v in css[css.index("(") + 1:css.index(")")].split(",")[:3])


def delta_e(c1: tuple[int, ...], c2: tuple[int, ...]) -> float:
    """CIE76 colour difference of two sRGB colours (about 2.3 is just noticeable; 20+ at a glance)."""

    def lab(c):
        lin = [(v / 255 / 12.92) if v / 255 <= 0.04045 else ((v / 255 + 0.055) / 1.055) ** 2.4 for v in c]
        xyz = [sum(m * v for m, v in zip(row, lin, strict=True)) / w for row, w in zip(
            ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505)), (0.95047, 1.0, 1.08883),
            strict=True)]
        f = [t ** (1 / 3) if t > 216 / 24389 else (24389 / 27 * t + 16) / 116 for t in xyz]
        return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])

    return sum((a - b) ** 2 for a, b in zip(lab(c1), lab(c2), strict=True)) ** 0.5


def test_starved_blocked_and_idle_each_have_their_own_colour_shown_in_the_legend():
    async def body(page, doc):
        got = await page.evaluate(COLOURS_JS)
        sw = {state: rgb(css) for state, css in got["swatch"].items()}
        waiting = [sw["STARVED"], sw["BLOCKED"], sw["IDLE"]]
        assert len(set(waiting)) == 3, sw
        # apart enough to tell at a glance, not just different numbers
        for i in range(3):
            for j in range(i + 1, 3):
                assert delta_e(waiting[i], waiting[j]) >= 40, (waiting[i], waiting[j])
        r, g, b = sw["DOWN"]
        assert r > 1.5 * max(g, b), sw["DOWN"]  # down stays red
        r, g, b = sw["PRODUCING"]
        assert g > 1.3 * max(r, b), sw["PRODUCING"]  # producing stays green
        for named in ("PRODUCING", "SETUP", "DOWN"):
            assert sw[named] not in waiting, named
        # the cards use the legend's colours
        seen = set()
        for card in got["cards"]:
            if card["state"] in ("STARVED", "BLOCKED", "IDLE", "PRODUCING", "SETUP", "DOWN"):
                assert rgb(card["badge"]) == sw[card["state"]], card
                assert rgb(card["border"]) == sw[card["state"]] or card["state"] == "DOWN", card
                seen.add(card["state"])
        assert {"STARVED", "BLOCKED", "IDLE"} <= seen, seen

    run_page(body, ticks=1)  # the second document: spi STARVED, placer-chip BLOCKED, placer-fine IDLE


# --- 3. the chart at the first event --------------------------------------------------------------------

CHART_JS = """() => {
  const u = window.dashboardChart;
  return u ? {data: u.data.map((s) => Array.from(s)), canvas: !!document.querySelector("[data-testid='power-chart'] canvas")}
           : null;
}"""


def test_the_chart_draws_the_twins_history_at_the_first_event():
    ticks = 40

    async def body(page, doc):
        assert len(doc["history"]["t"]) == ticks + 1  # the forty ticks, and the call the page's stream made
        chart = await page.evaluate(CHART_JS)
        assert chart is not None and chart["canvas"], "no chart drawn"
        t, power, oee = chart["data"]
        assert len(t) == ticks + 1, f"the chart has {len(t)} points at load, the twin's history {ticks + 1}"
        assert t == doc["history"]["t"]
        assert power == pytest.approx(doc["history"]["power_kw"])
        assert oee == pytest.approx([100 * v for v in doc["history"]["oee"]])
        shown = int(await page.evaluate("document.querySelector(`[data-testid='power-chart']`).dataset.points"))
        assert shown == ticks + 1

    run_page(body, ticks=ticks)


# --- 5. the cards fit the screen -------------------------------------------------------------------------

FIT_JS = """() => {
  const vw = document.documentElement.clientWidth;
  const cards = [...document.querySelectorAll('.station')].map((el) => {
    const r = el.getBoundingClientRect();
    let widest = r.right;
    for (const d of el.querySelectorAll('*')) widest = Math.max(widest, d.getBoundingClientRect().right);
    return {id: el.dataset.testid, scroll: el.scrollWidth, client: el.clientWidth, left: r.left, right: r.right,
            widest};
  });
  const flows = [...document.querySelectorAll('.flow')].map((el) => ({scroll: el.scrollWidth, client: el.clientWidth}));
  return {vw, page: document.documentElement.scrollWidth, cards, flows};
}"""


@pytest.mark.parametrize(("width", "height"), [(1600, 900), (1280, 800), (1920, 1080)])
def test_station_cards_fit_inside_the_screen(width, height):
    async def body(page, doc):
        fit = await page.evaluate(FIT_JS)
        assert len(fit["cards"]) == 8
        for card in fit["cards"]:
            assert card["scroll"] <= card["client"], f"{card['id']} overflows itself at {width} px: {card}"
            assert card["left"] >= 0 and card["right"] <= fit["vw"], f"{card['id']} leaves the screen at {width} px: {card}"
            assert card["widest"] <= card["right"] + 0.5, f"something in {card['id']} sticks out at {width} px: {card}"
        for flow in fit["flows"]:
            assert flow["scroll"] <= flow["client"], f"the line scrolls sideways at {width} px: {flow}"
        assert fit["page"] <= fit["vw"], f"the page scrolls sideways at {width} px"

    run_page(body, width=width, height=height)
