"""Simulated meters -> real mosquitto -> MQTT source -> Samples with exact values and timestamps."""

import asyncio
import json

import pytest
from support.mqtt_broker import meters_source, next_sample
from support.factories import small_factory

from connectors.mqtt import MqttClient, MqttSensors, metered_signals
from factory_models.signals import known_signals
from factory_models import Quality, Sample, TsKind

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

T0 = 1767571200.0  # 2026-01-05T00:00:00Z


def test_sensors_to_samples_exact(mosquitto, tmp_path):
    factory = small_factory()
    signals = metered_signals(factory)
    assert signals[:2] == ["line1/printer/power_kw", "line1/printer/energy_kwh"]
    assert "site/gas/volume_nm3" in signals

    async def scenario():
        cfg = meters_source(mosquitto.url, client_id="test-e2e-twin")
        client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        assert client.possible_signals() == {s for s in known_signals(factory)}  # the pattern covers every signal
        assert client.signals() == set()  # but feeds none until it delivers
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        up = await next_sample(queue)
        assert (up.signal, up.value, up.ts_kind) == ("connection/meters", "up", TsKind.RECEIVE)

        sensors = MqttSensors(factory, mosquitto.host, mosquitto.port, client_id="test-e2e-sensors")
        await sensors.start()
        sent = []
        for k in range(20):
            for i, signal in enumerate(signals):
                ts = T0 + k * 0.125 + i * 0.001  # millisecond-exact, as the convention carries
                value = round(k * 1.5 + i, 3)
                assert sensors.publish(signal, value, ts)
                sent.append(Sample(signal, value, ts, Quality.GOOD, TsKind.SOURCE))
        assert await sensors.drain(30)
        got = [await next_sample(queue) for _ in sent]
        stats = client.stats()
        assert client.signals() == set(signals)  # what it delivered: a gap of this source covers these
        await sensors.stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return sent, got, stats, sensors.stats()

    sent, got, stats, sensor_stats = asyncio.run(scenario())
    # one publisher, QoS 1, one topic per signal: per-signal order is kept
    for signal in set(s.signal for s in sent):
        assert [s for s in got if s.signal == signal] == [s for s in sent if s.signal == signal]
    assert sorted(got, key=lambda s: (s.signal, s.ts)) == sorted(sent, key=lambda s: (s.signal, s.ts))
    assert stats["received"] == len(sent) and stats["rejected"] == 0 and stats["connected"]
    assert sensor_stats["acked"] == sensor_stats["published"] == len(sent) and sensor_stats["held_max"] == 0


def test_scale_deadband_field_path_and_receive_time(mosquitto, tmp_path):
    """A legacy device in watts under its own topic scheme, mapped by pattern, field path and scale."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    factory = small_factory()
    cfg = meters_source(
        mosquitto.url,
        name="legacy",
        client_id="test-legacy-twin",
        topics=[{
            "pattern": "legacy/{station}/watts",
            "signal": "line1/{station}/power_kw",
            "field": "data.w",
            "scale": 0.001,
            "deadband": 0.05,
            "timestamp": "source",
        }],
    )

    async def scenario():
        client = MqttClient(cfg, factory.site.name, known_signals(factory), tmp_path / "dl.jsonl")
        assert client.possible_signals() == {"line1/printer/power_kw", "line1/cnc-1/power_kw", "line1/cnc-2/power_kw"}
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        assert (await next_sample(queue)).value == "up"
        pub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="legacy-dev")
        pub.connect(mosquitto.host, mosquitto.port)
        pub.loop_start()
        # 1000 W, 1020 W (inside 50 W deadband: held back), 1100 W, then one with no ts: receive time
        for w in (1000, 1020, 1100):
            pub.publish("legacy/cnc-2/watts", json.dumps({"data": {"w": w}, "ts": 1767571200000 + w}), qos=1).wait_for_publish(10)
        pub.publish("legacy/cnc-2/watts", json.dumps({"data": {"w": 2000}}), qos=1).wait_for_publish(10)
        got = [await next_sample(queue) for _ in range(3)]
        pub.disconnect()
        pub.loop_stop()
        stats = client.stats()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return got, stats

    got, stats = asyncio.run(scenario())
    assert got[0] == Sample("line1/cnc-2/power_kw", 1.0, 1767571201.0, Quality.GOOD, TsKind.SOURCE)
    assert got[1] == Sample("line1/cnc-2/power_kw", 1.1, 1767571201.1, Quality.GOOD, TsKind.SOURCE)
    assert (got[2].value, got[2].ts_kind) == (2.0, TsKind.RECEIVE) and got[2].ts > 1767571201.1
    assert stats["suppressed"] == 1 and stats["received"] == 4 and stats["rejected"] == 0
