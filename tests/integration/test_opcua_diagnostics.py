"""Per-source diagnostics (issue 12, item 7) of a real OPC UA source, as ``/health`` shows them.

A vendor-style server holds two of the three nodes a mapping names; the twin's clock is 1000 s
behind the server's (beyond the factory's 300 s ``max_clock_skew_s``), so the twin rejects both
values it gets. The figures are known: 2 received and sent, 0 used, 3 rejected (2 ``clock_skew`` by
the twin, 1 ``node_failed`` by the source), and the missing node's signal never received.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from support.opcua_server import free_port
from support.vendor_opcua import VendorPlc, node_id, until

from connectors.mapping import OpcUaSource
from connectors.opcua.client import OpcUaClient
from factory_models import load_factory
from factory_models.signals import known_signals
from twin.runtime import Sinks
from twin.runtime.live import LiveOptions, LiveRun
from twin.shadow.live_twin import LiveTwin

pytestmark = pytest.mark.integration

SMT = Path(__file__).resolve().parents[2] / "configs" / "demo_smt.yaml"
STATE, POWER, GOOD = "smt1/printer/state", "smt1/printer/power_kw", "smt1/printer/good"


def test_health_shows_each_source_with_its_samples_rejections_and_silent_signals():
    factory = load_factory(SMT)
    cfg = OpcUaSource.model_validate({
        "name": "press",
        "endpoint": "opc.tcp://127.0.0.1:1",  # replaced below, once the port is known
        "subscription": {"publishing_interval_ms": 100, "sampling_interval_ms": 0},
        "nodes": [{"node": node_id("Press.State"), "signal": STATE},
                  {"node": node_id("Press.Power"), "signal": POWER, "scale": 0.001},
                  {"node": node_id("Press.Missing"), "signal": GOOD}],
    })

    async def main():
        plc = VendorPlc(free_port())
        await plc.start()
        src = OpcUaClient(cfg.model_copy(update={"endpoint": plc.endpoint}), factory.site.name, known_signals(factory))
        twin = LiveTwin(factory, clock=lambda: time.time() - 1000.0, source_signals={src.name: src.signals})
        run = LiveRun(factory, SMT, twin, [src], LiveOptions(progress=False, sinks=Sinks(store=None)))
        queue: asyncio.Queue = asyncio.Queue()
        tasks = [asyncio.create_task(src.run(queue)), asyncio.create_task(twin.consume(queue))]
        try:
            await until(lambda: twin.router.received >= 2 and src.stats()["failed_nodes"] == 1, 20, "values")
            health = run.health()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            run.close()
            await plc.stop()
        return health

    health = asyncio.run(asyncio.wait_for(main(), 60))
    press = health["sources"]["press"]
    assert press["connected"] and press["reconnects"] == 0 and press["last_error"] is None
    assert press["samples"] == {"received": 2, "sent": 2, "used": 0, "rejected": 3,
                                "rejected_by_reason": {"clock_skew": 2, "node_failed": 1}}
    assert press["never_received"] == [GOOD] and press["never_received_count"] == 1
    # and the text summary says the same in words
    from twin.runtime.diagnostics import source_lines

    assert source_lines(health["sources"]) == [
        "source press: connected, 0 reconnect(s); samples 2 sent, 0 used, 3 rejected (clock skew 2, node failed 1)",
        f"  never received (1): {GOOD}",
    ]
    # and /metrics per source
    from twin.dashboard.metrics import render_metrics

    text = render_metrics(None, health).splitlines()
    assert 'factory_twin_source_samples_rejected_total{source="press",reason="clock_skew"} 2' in text
    assert 'factory_twin_source_samples_used_total{source="press"} 0' in text
    assert 'factory_twin_source_signals_never_received{source="press"} 1' in text
