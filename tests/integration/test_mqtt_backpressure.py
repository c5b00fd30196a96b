"""A full queue stops the reading of the socket; the broker holds the rest and nothing is lost."""

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

TOPIC = "factory/suzhou-smt/line1/printer/power_kw"
TS_MS = 1767571200000
N = 300
ROOM = 5


def test_full_queue_pauses_reading_and_loses_nothing(mosquitto, tmp_path):
    factory = small_factory()

    async def scenario():
        client = MqttClient(meters_source(mosquitto.url, client_id="test-backpressure"), factory.site.name,
                            known_signals(factory), tmp_path / "dead.jsonl")
        queue: asyncio.Queue = asyncio.Queue(maxsize=ROOM)
        task = asyncio.create_task(client.run(queue))
        assert (await next_sample(queue)).value == "up"

        pub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-backpressure-pub")
        pub.connect(mosquitto.host, mosquitto.port)
        pub.loop_start()
        infos = [pub.publish(TOPIC, json.dumps({"value": k, "ts": TS_MS + k}), qos=1) for k in range(N)]
        for info in infos:
            await asyncio.to_thread(info.wait_for_publish, 30)
        # every message is at the broker; give a client that ignored the full queue the time to read
        # them all (no condition can show a read that must not happen)
        await asyncio.sleep(0.5)
        read_while_full = client.stats()["received"]

        values = [(await next_sample(queue)).value for _ in range(N)]
        stats = client.stats()
        pub.disconnect()
        pub.loop_stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return read_while_full, values, stats

    read_while_full, values, stats = asyncio.run(scenario())
    assert read_while_full <= ROOM + 1  # the queue's room and the one message held while paused
    assert values == [float(k) for k in range(N)]
    assert stats["received"] == N and stats["rejected"] == 0 and stats["unsent_at_stop"] == 0
