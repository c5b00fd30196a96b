"""A broker restart, or a twin away, mid-stream loses no QoS 1 message: publisher and subscriber
both keep sessions, the broker's queue per client is large enough and persisted, and the
publisher's seq shows nothing missing. With mosquitto's default queue (1000) the loss is counted."""

import asyncio

import pytest
from support.factories import small_factory
from support.mqtt_broker import Mosquitto, meters_source, next_sample

from connectors.mqtt import MqttClient, MqttSensors
from connectors.mqtt.sensors import topic_of
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
    assert stats["lost"] == 0 and stats["seq_resets"] == 0 and stats["lost_by_topic"] == {}
    assert sensor_stats["reconnects"] == 1 and sensor_stats["held_max"] == 0
    assert sensor_stats["acked"] == sensor_stats["published"] == N and sensor_stats["unsent_at_stop"] == 0


def _twin_away(broker: Mosquitto, tmp_path, restart_broker: bool):
    """The twin reads 10 messages and goes away; 2500 are published (the broker restarted in the
    middle when asked); a new twin process with the same session comes back, and 10 more are
    published live. Returns (values the second twin got, its stats)."""
    factory = small_factory()
    away, live = 2500, 10
    last = 10 + away + live - 1

    def twin():
        cfg = meters_source(broker.url, client_id="test-away-twin")
        return MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")

    async def scenario():
        sensors = MqttSensors(factory, broker.host, broker.port, client_id="test-away-sensors")
        first, queue = twin(), asyncio.Queue()
        task = asyncio.create_task(first.run(queue))
        assert (await next_sample(queue)).value == "up"
        await sensors.start()
        for k in range(10):
            sensors.publish(SIGNAL, float(k), T0 + k)
        got = [(await next_sample(queue)).value for _ in range(10)]
        assert got == [float(k) for k in range(10)]
        task.cancel()  # the twin stops; its session (subscription, queue) stays on the broker
        await asyncio.gather(task, return_exceptions=True)

        for k in range(10, 10 + away):
            assert sensors.publish(SIGNAL, float(k), T0 + k)
            if restart_broker and k == 10 + away // 2:
                assert await sensors.drain(60)
                await asyncio.to_thread(broker.restart)
        assert await sensors.drain(60), sensors.stats()

        second, queue = twin(), asyncio.Queue()
        task = asyncio.create_task(second.run(queue))
        values = []
        while True:
            s = await next_sample(queue, 60)
            if s.signal != SIGNAL:
                if s.value == "up":  # back: the live part follows what the broker kept
                    for k in range(10 + away, last + 1):
                        sensors.publish(SIGNAL, float(k), T0 + k)
                continue
            values.append(int(s.value))
            if values[-1] == last:
                break
        stats = second.stats()
        await sensors.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return values, stats

    return asyncio.run(scenario())


def test_twin_away_through_a_broker_restart_loses_nothing(mosquitto, tmp_path):
    values, stats = _twin_away(mosquitto, tmp_path, restart_broker=True)
    assert sorted(set(values)) == list(range(10, 2520))
    assert stats["lost"] == 0 and stats["seq_resets"] == 0 and stats["rejected"] == 0


def test_a_broker_queue_that_overflows_is_counted_as_lost(tmp_path):
    broker = Mosquitto(tmp_path / "mosquitto", max_queued_messages=1000)  # mosquitto's default
    broker.start()
    try:
        values, stats = _twin_away(broker, tmp_path, restart_broker=False)
    finally:
        broker.stop()
    missing = set(range(10, 2520)) - set(values)
    assert len(missing) > 1000  # the broker dropped what did not fit its queue
    assert stats["lost"] == len(missing)
    assert stats["lost_by_topic"] == {topic_of("suzhou-smt", SIGNAL): len(missing)} and stats["seq_resets"] == 0
