"""The MQTT source after its broker comes back (issue 12, item 6): samples flow again within 5 s
however long the broker was away, and the drop is one log line.

The broker (mosquitto) stays away until the source has failed several connection attempts (an
uncapped backoff would be growing by then), then starts again on the same port. Measured: the time
from the broker listening again to the first sample of a meter reading published after it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from support.factories import small_factory
from support.mqtt_broker import meters_source
from support.vendor_opcua import until

from connectors.mqtt import MqttClient
from factory_models.signals import known_signals

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

AWAY_ATTEMPTS = 4
TOPIC = "factory/{site}/line1/printer/power_kw"


def publish_once(host: str, port: int, topic: str, payload: dict) -> None:
    """One QoS 1 reading from a fresh meter connection (a field meter coming back on its own)."""
    pub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="meter-7")
    pub.connect(host, port)
    pub.loop_start()
    try:
        # retained: delivered on subscription too, whichever of the two reconnects comes first
        pub.publish(topic, json.dumps(payload), qos=1, retain=True).wait_for_publish(5)
    finally:
        pub.disconnect()
        pub.loop_stop()


def test_samples_flow_within_5_s_of_the_broker_return_and_the_drop_is_one_line(mosquitto, tmp_path, caplog):
    caplog.set_level(logging.DEBUG, logger="connectors.mqtt")
    factory = small_factory()
    topic = TOPIC.format(site=factory.site.name)

    async def scenario():
        cfg = meters_source(mosquitto.url, client_id="test-reconnect-twin")  # default backoff
        client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        got: list[tuple[float, object]] = []

        async def drain():
            while True:
                s = await queue.get()
                got.append((time.monotonic(), s))

        tasks = [asyncio.create_task(client.run(queue)), asyncio.create_task(drain())]
        try:
            await until(lambda: client.stats()["connected"], 15, "first connection")
            await asyncio.to_thread(mosquitto.stop)
            await until(lambda: [s.value for _, s in got] == ["up", "down"], 15, "the drop noticed")
            await until(lambda: client.stats()["connect_failures"] >= AWAY_ATTEMPTS, 60, "attempts while away")
            logged_while_away = len(caplog.records)
            await asyncio.to_thread(mosquitto.start)
            returned = time.monotonic()
            await until(lambda: client.stats()["connected"], 15, "reconnected")
            await asyncio.to_thread(publish_once, mosquitto.host, mosquitto.port, topic,
                                    {"value": 4.2, "ts": int(time.time() * 1000)})
            await until(lambda: any(s.signal == "line1/printer/power_kw" for _, s in got), 15, "a reading")
            first = next(when for when, s in got if s.signal == "line1/printer/power_kw")
            stats = client.stats()
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        return first - returned, stats, logged_while_away

    flow_s, stats, logged_while_away = asyncio.run(scenario())
    print(f"\nMQTT: first sample {flow_s:.2f} s after the broker listened again "
          f"({stats['connect_failures']} failed attempts while it was away)")
    assert flow_s < 5.0
    assert stats["reconnects"] == 1 and stats["last_error"] is None
    warnings = [r.getMessage() for r in caplog.records[:logged_while_away]
                if r.name.startswith("connectors") and r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "lost the connection" in warnings[0], warnings
    assert not [r for r in caplog.records if r.exc_info]
