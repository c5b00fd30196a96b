"""A publisher that numbers its messages (seq) and skips some: the client counts exactly what never
arrived, per topic, through the fast and the full payload reader alike, and tells a restarted
publisher from a loss."""

import asyncio
import json

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.factories import small_factory
from support.mqtt_broker import meters_source, next_sample

from connectors.mqtt import MqttClient
from factory_models.signals import known_signals

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

POWER = "factory/suzhou-smt/line1/printer/power_kw"
ENERGY = "factory/suzhou-smt/line1/printer/energy_kwh"
TS_MS = 1767571200000


def test_skipped_seq_numbers_are_counted_exactly(mosquitto, tmp_path):
    factory = small_factory()
    # power: epoch-ms payloads (fast reader), 3 numbers skipped, then the publisher restarts at 0
    # and skips 2 more; energy: RFC 3339 times (full reader), 5 skipped, one payload rejected
    power = [k for k in range(20) if k not in (4, 11, 12)] + [0, 1, 2, 5, 6]
    power_msgs = [(POWER, {"value": float(i), "ts": TS_MS + i * 1000, "seq": seq}) for i, seq in enumerate(power)]
    energy_msgs = [(ENERGY, {"value": float(seq), "ts": f"2026-01-05T00:00:{seq:02d}Z", "seq": seq})
                   for seq in [0, 1, 2, 8, 9]]
    energy_msgs.append((ENERGY, {"value": "lots", "ts": "2026-01-05T00:00:10Z", "seq": 10}))  # rejected, not lost
    energy_msgs.append((ENERGY, {"value": 11.0, "ts": "2026-01-05T00:00:11Z", "seq": 11}))
    sent = power_msgs + energy_msgs

    async def scenario():
        client = MqttClient(meters_source(mosquitto.url, client_id="test-loss-twin"), factory.site.name,
                            known_signals(factory), tmp_path / "dead.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        assert (await next_sample(queue)).value == "up"
        pub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-loss-pub")
        pub.connect(mosquitto.host, mosquitto.port)
        pub.loop_start()
        for topic, doc in sent:
            pub.publish(topic, json.dumps(doc), qos=1)
        samples = [await next_sample(queue) for _ in range(len(sent) - 1)]  # all but the rejected one
        stats = client.stats()
        pub.disconnect()
        pub.loop_stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return samples, stats

    samples, stats = asyncio.run(scenario())
    assert len(samples) == len(sent) - 1
    assert stats["lost"] == 3 + 2 + 5
    assert stats["lost_by_topic"] == {POWER: 5, ENERGY: 5}
    assert stats["seq_resets"] == 1
    assert stats["rejected_by_reason"] == {"wrong_type": 1}
