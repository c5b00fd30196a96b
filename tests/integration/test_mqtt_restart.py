"""A broker restart mid-stream loses no QoS 1 message: publisher and subscriber both keep sessions."""

import asyncio

import pytest
from support.mqtt_broker import meters_source, next_sample
from support.factories import small_factory

from connectors.mqtt import MqttClient, MqttSensors
from factory_models.signals import known_signals

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

T0 = 1767571200.0
N = 3000
RESTART_AT = 1500
SIGNAL = "site/grid/energy_kwh"


def test_broker_restart_loses_no_message(mosquitto, tmp_path):
    factory = small_factory()

    async def scenario():
        cfg = meters_source(mosquitto.url, client_id="test-restart-twin")
        client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        assert (await next_sample(queue)).value == "up"
        sensors = MqttSensors(factory, mosquitto.host, mosquitto.port, client_id="test-restart-sensors")
        await sensors.start()

        for k in range(N):
            assert sensors.publish(SIGNAL, float(k), T0 + k * 0.01)
            if k % 100 == 99:
                await asyncio.sleep(0.005)  # a stream, not one burst: the restart lands mid-flow
            if k == RESTART_AT:
                await asyncio.to_thread(mosquitto.restart)
        assert await sensors.drain(90), sensors.stats()

        values, events = set(), []
        while len(values) < N:
            s = await next_sample(queue, 60)
            if s.signal == SIGNAL:
                values.add(s.value)
            else:
                events.append(s.value)
        stats = client.stats()
        await sensors.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return values, events, stats, sensors.stats()

    values, events, stats, sensor_stats = asyncio.run(scenario())
    assert values == {float(k) for k in range(N)}
    assert events == ["down", "up"]  # the gap is reported in-band
    assert stats["reconnects"] == 1 and stats["rejected"] == 0
    assert sensor_stats["reconnects"] == 1 and sensor_stats["dropped"] == 0
    assert sensor_stats["acked"] == sensor_stats["published"] == N
