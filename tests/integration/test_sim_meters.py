"""The simulated meters as a field meter behaves: a reading without a time is stamped by the meter's
own clock, the wall clock unless the caller gives another; ``url`` says which broker they use."""

import asyncio
import time

import pytest
from support.factories import small_factory
from support.mqtt_broker import meters_source, next_sample

from connectors.mqtt import MqttClient, MqttSensors
from factory_models import TsKind
from factory_models.signals import known_signals

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_meters_stamp_readings_with_their_own_clock(mosquitto, tmp_path):
    factory = small_factory()

    async def scenario():
        client = MqttClient(meters_source(mosquitto.url, client_id="test-clock-twin"), factory.site.name,
                            known_signals(factory), tmp_path / "dl.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        await next_sample(queue)  # connection/meters up
        wall = MqttSensors(factory, mosquitto.host, mosquitto.port, client_id="test-clock-wall")
        plant = MqttSensors(factory, mosquitto.host, mosquitto.port, client_id="test-clock-plant",
                            clock=lambda: 1_767_571_200.5)  # a plant clock of its own (the demo's simulated one)
        assert wall.url == mosquitto.url
        for sensors in (wall, plant):
            await sensors.start()
        before = time.time()
        wall.publish("line1/printer/power_kw", 4.0)
        got_wall = await next_sample(queue)
        after = time.time()
        plant.publish("line1/printer/energy_kwh", 2.5)
        got_plant = await next_sample(queue)
        for sensors in (wall, plant):
            await sensors.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return before, after, got_wall, got_plant

    before, after, got_wall, got_plant = asyncio.run(scenario())
    # the payload carries integer milliseconds: the stamp lies within the publish, to the millisecond
    assert (got_wall.value, got_wall.ts_kind) == (4.0, TsKind.SOURCE)
    assert before - 0.001 <= got_wall.ts <= after + 0.001
    assert (got_plant.value, got_plant.ts) == (2.5, 1_767_571_200.5)
