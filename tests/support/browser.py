"""Helpers to drive Debian's headless Chromium from a test (through Playwright's protocol driver).

Playwright is used only as a driver: it never downloads a browser here (never run `playwright
install`); the executable is the distribution's, installed by scripts/setup.sh.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import asynccontextmanager
from decimal import ROUND_HALF_UP, Decimal

import pytest

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
LAUNCH_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def chromium_executable() -> str | None:
    override = os.environ.get("FACTORY_TWIN_CHROMIUM")
    for path in ((override,) if override else CHROMIUM_CANDIDATES):
        if path and os.access(path, os.X_OK):
            return path
    return None


def require_browser() -> str:
    """The Chromium executable, or skip the test saying what to install."""
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("the playwright package is not installed (pip install -e '.[test]')")
    exe = chromium_executable()
    if exe is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; scripts/setup.sh does it)")
    return exe


@asynccontextmanager
async def headless_page(*, width: int = 1920, height: int = 1080, extra_args: tuple[str, ...] = ()):
    """A page in a fresh headless Chromium profile; console errors are collected in ``page.errors``.

    ``extra_args`` go to Chromium's command line (e.g. ``--host-resolver-rules`` to give a made-up
    name an address)."""
    from playwright.async_api import async_playwright

    exe = require_browser()
    profile = tempfile.mkdtemp(prefix="factory-twin-chromium-")
    try:
        async with async_playwright() as pw:
            # the persistent context is Playwright's way to pass our own --user-data-dir
            ctx = await pw.chromium.launch_persistent_context(
                profile, executable_path=exe, headless=True, args=[*LAUNCH_ARGS, *extra_args],
                viewport={"width": width, "height": height}, device_scale_factor=1)
            try:
                page = ctx.pages[0] if ctx.pages else await ctx.new_page()
                page.errors = []
                page.on("pageerror", lambda exc: page.errors.append(str(exc)))
                page.on("console", lambda msg: page.errors.append(msg.text) if msg.type == "error" else None)
                yield page
            finally:
                await ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


READ_FIGURES_JS = """() => {
  const out = {};
  for (const el of document.querySelectorAll('[data-testid]')) {
    out[el.dataset.testid] = {value: el.dataset.value === undefined ? null : el.dataset.value,
                              text: el.textContent, cls: el.className || ''};
  }
  return out;
}"""


async def read_figures(page) -> dict[str, dict]:
    """Every element with a data-testid: its data-value, text and class, read in one go.

    One evaluate runs to completion inside the page's single thread, so no event can be drawn halfway
    through the reading: everything returned belongs to the same state document.
    """
    return await page.evaluate(READ_FIGURES_JS)


# --- the page's number formats (static/app.js), for comparing the text shown ------------------------
# JavaScript's toFixed rounds the exact binary value half up; Decimal(float) is that exact value.

def _fixed(x: float, places: int) -> str:
    q = Decimal(1).scaleb(-places)
    return str(Decimal(x).quantize(q, rounding=ROUND_HALF_UP))


def fmt_pct(v) -> str:
    return "-" if v is None else _fixed(v * 100, 1) + " %"


def fmt1(v) -> str:
    return "-" if v is None else _fixed(v, 1)


def fmt_int(v) -> str:
    return "-" if v is None else _fixed(v, 0)


def same_number(shown: str | None, sent) -> bool:
    """A data-value (text) against the JSON number: JavaScript's String(x) round-trips like repr."""
    if sent is None:
        return shown in ("", None)
    return shown is not None and shown != "" and float(shown) == float(sent)
