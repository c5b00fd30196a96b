"""Shared fixtures: real servers on loopback (mosquitto, VictoriaMetrics, Chromium), and the rule that
in CI nothing is skipped.

Tests are grouped by kind: ``unit/`` (in-process, no server), ``property/`` (hypothesis against a
plain-Python reference) and ``integration/`` (real servers and clients on loopback; marked
``integration`` here, so ``pytest -m "not integration"`` is the quick loop). Helpers the tests
share live in ``support/``.

With ``CI=true`` a skipped test fails: a skip hides a path, and a green CI must mean that every
path ran. Outside CI a skip says what to install.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.mqtt_broker import MOSQUITTO, Mosquitto
from support.victoria import BINARY as VICTORIA_BINARY, Victoria

HERE = Path(__file__).resolve().parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# `factory-twin demo` binds its simulated PLC and broker to 4840 and 1883; a test never binds a fixed
# port (tests run side by side), so every demo a test starts, in-process or as a subprocess, takes free ones
os.environ["FACTORY_TWIN_PLC_PORT"] = "0"
os.environ["FACTORY_TWIN_BROKER_PORT"] = "0"


def pytest_collection_modifyitems(config, items):
    for item in items:
        if (HERE / "integration") in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every test must run: {reason}"


def _require(path: str, what: str) -> None:
    if not Path(path).exists():
        pytest.skip(f"{what} is not installed (scripts/setup.sh installs it as root)")


@pytest.fixture
def mosquitto(tmp_path):
    """A real mosquitto broker on a free loopback port, stopped after the test."""
    _require(MOSQUITTO, "mosquitto")
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def victoria(tmp_path):
    """A real VictoriaMetrics (InfluxDB v2 write API) on a free loopback port."""
    _require(VICTORIA_BINARY, "victoria-metrics")
    vm = Victoria(tmp_path / "vmdata")
    vm.start()
    yield vm
    vm.stop()


@pytest.fixture
def chromium() -> str:
    """The headless Chromium executable (Debian's package, driven by playwright-core)."""
    from support.browser import require_browser

    return require_browser()
