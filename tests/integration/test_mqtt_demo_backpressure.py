"""The demo's simulated meters never drop a reading: with a tiny publish backlog and the broker
stopped for a moment, the driver holds the simulated clock instead, says so once, and counts it;
every reading reaches the twin's MQTT client with no gap in its seq."""

import asyncio
import logging

import pytest
from support.factories import small_factory

from connectors.mqtt import MqttClient
from factory_models.signals import known_signals
from twin.runtime.demo_plant import DemoPlant

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


async def until(check, timeout_s: float, what: str, detail=lambda: "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():
        if loop.time() > deadline:
            raise AssertionError(f"not within {timeout_s} s: {what}{detail()}")
        await asyncio.sleep(0.02)


def test_meters_hold_the_clock_instead_of_dropping(mosquitto, tmp_path, caplog):
    factory = small_factory()
    caplog.set_level(logging.INFO, logger="twin.runtime.demo_plant")

    async def scenario():
        plant = DemoPlant(factory, seed=3, speed=3600.0, mqtt_url=mosquitto.url, sensor_window=2, sensor_backlog=5)
        await plant.start()
        try:
            client = MqttClient(plant.mapping().mqtt[0], factory.site.name, known_signals(factory),
                                tmp_path / "dead.jsonl")
            queue: asyncio.Queue = asyncio.Queue()
            reader = asyncio.create_task(client.run(queue))
            stop = asyncio.Event()
            driver = asyncio.create_task(plant.drive(stop, until(lambda: client.stats()["connected"], 20, "subscribed")))
            sensors = plant.sensors
            await until(lambda: sensors.stats()["acked"] > 50, 30, "meters flowing")
            await asyncio.to_thread(mosquitto.stop)  # the broker goes away: the backlog fills at once
            await until(lambda: plant.slowed_s > 1.0, 30, "the simulated clock held")
            sim_while_down = plant.sim.env.now
            await asyncio.to_thread(mosquitto.start)
            await until(lambda: sensors.stats()["reconnects"] == 1 and plant.sim.env.now > sim_while_down + 600, 60,
                        "the meters reconnected and the clock runs on",
                        lambda: f" {sensors.stats()} sim {plant.sim.env.now - sim_while_down:.0f} s")
            stop.set()
            await driver
            await plant.finish()
            published = sensors.stats()["published"]
            await until(lambda: client.stats()["received"] >= published, 60, "every reading at the twin")
            await until(lambda: client.highest_seq() == sensors.last_seq(), 30, "the last reading of every meter")
            stats = client.stats()
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
            return plant.extra(), stats
        finally:
            await plant.stop()

    extra, stats = asyncio.run(scenario())
    sensors = extra["sensors"]
    assert sensors["held_max"] > 0 and sensors["backlog_full"] >= 1
    assert sensors["unsent_at_stop"] == 0 and sensors["acked"] == sensors["published"]
    assert stats["received"] >= sensors["published"]
    assert stats["lost"] == 0 and stats["seq_resets"] == 0 and stats["rejected"] == 0
    bp = extra["backpressure"]
    assert bp["slowed_s"] > 1.0 and bp["slowdowns"] >= 1 and 0 < bp["speed_reached"] < 3600
    warnings = [r for r in caplog.records if r.name == "twin.runtime.demo_plant" and r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "slows down instead of dropping" in warnings[0].getMessage()


def test_the_model_waits_for_a_twin_that_lags(mosquitto, tmp_path, monkeypatch):
    """The broker takes everything, but the twin does not read: the model stops making readings
    once MAX_UNDELIVERED are on their way, and goes on when the twin catches up."""
    import twin.runtime.demo_plant as demo_plant

    monkeypatch.setattr(demo_plant, "MAX_UNDELIVERED", 300)
    factory = small_factory()

    async def scenario():
        plant = DemoPlant(factory, seed=3, speed=3600.0, mqtt_url=mosquitto.url)
        await plant.start()
        try:
            client = MqttClient(plant.mapping().mqtt[0], factory.site.name, known_signals(factory),
                                tmp_path / "dead.jsonl")
            queue: asyncio.Queue = asyncio.Queue(maxsize=20)  # a twin that stops taking samples
            reader = asyncio.create_task(client.run(queue))
            received = lambda: client.stats()["received"]
            stop = asyncio.Event()
            driver = asyncio.create_task(plant.drive(stop, until(lambda: client.stats()["connected"], 20, "subscribed"),
                                                     delivered=received))
            sensors = plant.sensors
            await until(lambda: plant.slowed_s > 1.0, 30, "the simulated clock held")
            ahead = sensors.stats()["published"] - received()
            got = 0

            async def twin_reads():
                nonlocal got
                while True:
                    await queue.get()
                    got += 1

            consumer = asyncio.create_task(twin_reads())
            sim_at = plant.sim.env.now
            await until(lambda: plant.sim.env.now > sim_at + 3600, 30, "the model runs on")
            stop.set()
            await driver
            await plant.settle()
            await plant.finish()
            stats = client.stats()
            consumer.cancel()
            reader.cancel()
            await asyncio.gather(consumer, reader, return_exceptions=True)
            return ahead, plant.extra(), stats
        finally:
            await plant.stop()

    ahead, extra, stats = asyncio.run(scenario())
    assert 300 <= ahead <= 300 + 200  # one step of the model past the bound at most
    assert stats["received"] == extra["sensors"]["published"] and stats["lost"] == 0
    assert extra["backpressure"]["slowed_s"] > 1.0 and extra["sensors"]["held_max"] == 0
