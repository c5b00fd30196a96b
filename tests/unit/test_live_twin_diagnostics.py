"""The per-source ``sources`` block (twin/runtime/diagnostics.py) of a real MQTT source's messages
through a live twin, without a broker: ``MqttClient.to_samples`` is what its ``on_message`` calls.

Worked figures: 4 messages on meters/printer. One is not JSON (the source rejects it: ``bad_json``);
three make samples, of which one repeats a time already used (the twin rejects it: ``duplicate``).
So received 4, sent 3, used 2, rejected 2; the second topic entry (meters/oven) never matched.
"""

from __future__ import annotations

from pathlib import Path

from connectors.mqtt.client import MqttClient
from connectors.mqtt.config import MqttSource
from factory_models import load_factory
from factory_models.signals import known_signals
from twin.runtime.diagnostics import source_lines, sources_block
from twin.shadow.live_twin import LiveTwin
from twin.shadow.replay import parse_ts

SMT = Path(__file__).resolve().parents[2] / "configs" / "demo_smt.yaml"
T0 = parse_ts("2026-03-02T06:00:00Z")


def test_samples_sent_used_and_rejected_by_source_and_twin(tmp_path):
    factory = load_factory(SMT)
    cfg = MqttSource.model_validate({"name": "meters", "url": "mqtt://127.0.0.1:1883", "topics": [
        {"pattern": "meters/printer", "signal": "smt1/printer/power_kw"},
        {"pattern": "meters/oven", "signal": "smt1/reflow/power_kw"},
    ]})
    src = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dead.jsonl")
    twin = LiveTwin(factory, clock=lambda: T0 + 10, source_signals={src.name: src.signals})
    ms = int(T0 * 1000)
    for payload in (b'{"value": 2.0, "ts": %d}' % ms, b"{not json", b'{"value": 2.5, "ts": %d}' % (ms + 1000),
                    b'{"value": 2.5, "ts": %d}' % (ms + 1000)):
        for sample in src.to_samples("meters/printer", payload, T0 + 10):
            twin.add(sample)
    block = sources_block([src], twin.router)["meters"]
    assert block["samples"] == {"received": 4, "sent": 3, "used": 2, "rejected": 2,
                                "rejected_by_reason": {"bad_json": 1, "duplicate": 1}}
    assert block["patterns_never_matched"] == ["meters/oven"]
    # its fixed signals: the printer's was delivered, the oven's never
    assert block["never_received"] == ["smt1/reflow/power_kw"]
    assert source_lines({"meters": block})[1:] == ["  topic patterns never matched: meters/oven",
                                                   "  never received (1): smt1/reflow/power_kw"]
