"""Username and password from the environment or a file, against mosquitto with a password file."""

import asyncio

import pytest
from support.mqtt_broker import Mosquitto, meters_source, next_sample
from support.factories import small_factory

from connectors.mqtt import MqttAuthError, MqttClient, MqttSensors
from factory_models.signals import known_signals
from factory_models import ConfigError

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


@pytest.fixture
def secured(tmp_path):
    broker = Mosquitto(tmp_path / "mosquitto", users={"twin": "s3cret-twin", "meters": "s3cret-meters"})
    broker.start()
    yield broker
    broker.stop()


def run_client(cfg, factory, tmp_path, sensors_password="s3cret-meters"):
    async def scenario():
        client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        try:
            up = await next_sample(queue)
            sensors = MqttSensors(factory, cfg.host, cfg.port, client_id="auth-sensors",
                                  username="meters", password=sensors_password)
            await sensors.start()
            sensors.publish("site/grid/power_kw", 42.5, 1767571200.5)
            reading = await next_sample(queue)
            await sensors.stop()
            return up, reading
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    return asyncio.run(scenario())


def test_password_from_env(secured, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_MQTT_USER", "twin")
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "s3cret-twin")
    cfg = meters_source(secured.url, client_id="auth-env", username_env="TEST_MQTT_USER", password_env="TEST_MQTT_PASSWORD")
    up, reading = run_client(cfg, small_factory(), tmp_path)
    assert up.value == "up"
    assert (reading.signal, reading.value, reading.ts) == ("site/grid/power_kw", 42.5, 1767571200.5)


def test_password_from_file(secured, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_MQTT_USER", "twin")
    pw = tmp_path / "mqtt-password"
    pw.write_text("s3cret-twin\n")
    cfg = meters_source(secured.url, client_id="auth-file", username_env="TEST_MQTT_USER", password_file=str(pw))
    up, reading = run_client(cfg, small_factory(), tmp_path)
    assert reading.value == 42.5


def test_wrong_password_is_refused_with_a_clear_error(secured, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_MQTT_USER", "twin")
    monkeypatch.setenv("TEST_MQTT_PASSWORD", "wrong")
    cfg = meters_source(secured.url, client_id="auth-wrong", username_env="TEST_MQTT_USER", password_env="TEST_MQTT_PASSWORD")
    factory = small_factory()
    client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
    with pytest.raises(MqttAuthError, match=r"refused the connection: (not authorized|bad user name or password)") as err:
        asyncio.run(asyncio.wait_for(client.run(asyncio.Queue()), 30))
    assert "wrong" not in str(err.value)  # the secret never appears in the message
    assert "TEST_MQTT_USER" in str(err.value)


def test_missing_password_variable_names_it(secured, tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_MQTT_USER", "twin")
    monkeypatch.delenv("TEST_MQTT_NOPE", raising=False)
    cfg = meters_source(secured.url, client_id="auth-missing", username_env="TEST_MQTT_USER", password_env="TEST_MQTT_NOPE")
    factory = small_factory()
    client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
    with pytest.raises(ConfigError, match=r"\$TEST_MQTT_NOPE"):
        asyncio.run(client.run(asyncio.Queue()))
