"""The embedded amqtt broker of the demo carries sensors -> client traffic."""

import asyncio

import pytest
from support.mqtt_broker import meters_source, next_sample
from support.factories import small_factory

from connectors.mqtt import MqttClient, MqttSensors
from connectors.mqtt.broker import EmbeddedBroker
from factory_models.signals import known_signals
from factory_models import Sample

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


def test_sensors_to_client_through_embedded_broker(tmp_path):
    factory = small_factory()
    sent = [
        Sample("line1/cnc-1/power_kw", 3.5, 1767571200.25),
        Sample("line1/cnc-1/energy_kwh", 10.0, 1767571200.5),
        Sample("site/gas/volume_nm3", 0.75, 1767571201.0),
    ]

    async def scenario():
        async with EmbeddedBroker() as broker:
            assert broker.host == "127.0.0.1" and broker.port > 0
            cfg = meters_source(broker.url, client_id="embedded-twin")
            client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
            queue: asyncio.Queue = asyncio.Queue()
            task = asyncio.create_task(client.run(queue))
            assert (await next_sample(queue)).value == "up"
            sensors = MqttSensors(factory, broker.host, broker.port, client_id="embedded-sensors")
            await sensors.start()
            for s in sent:
                sensors.publish(s.signal, s.value, s.ts)
            assert await sensors.drain(20)
            got = [await next_sample(queue) for _ in sent]
            await sensors.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return got

    got = asyncio.run(scenario())
    assert sorted(got, key=lambda s: s.ts) == sent


def test_embedded_broker_keeps_everything_for_a_twin_away(tmp_path):
    """The demo's broker queues without a bound for a persistent session: 2500 readings published
    while the twin is away (more than mosquitto's default queue of 1000) all reach it, no seq gap."""
    factory = small_factory()
    signal, away = "site/grid/energy_kwh", 2500

    async def scenario():
        async with EmbeddedBroker() as broker:
            def twin():
                cfg = meters_source(broker.url, client_id="embedded-away-twin")
                return MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")

            first, queue = twin(), asyncio.Queue()
            task = asyncio.create_task(first.run(queue))
            assert (await next_sample(queue)).value == "up"
            sensors = MqttSensors(factory, broker.host, broker.port, client_id="embedded-away-sensors")
            await sensors.start()
            sensors.publish(signal, 0.0, 1767571200.0)
            assert (await next_sample(queue)).value == 0.0
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

            for k in range(1, away + 1):
                sensors.publish(signal, float(k), 1767571200.0 + k)
            assert await sensors.drain(60), sensors.stats()

            second, queue = twin(), asyncio.Queue()
            task = asyncio.create_task(second.run(queue))
            values = set()
            while away not in values:
                s = await next_sample(queue, 30)
                if s.signal == signal:
                    values.add(int(s.value))
            stats = second.stats()
            await sensors.stop()
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return values, stats

    values, stats = asyncio.run(scenario())
    assert values == set(range(1, away + 1))
    assert stats["lost"] == 0 and stats["rejected"] == 0
