"""A storm of malformed payloads is counted by reason and dead-lettered; valid ones in between arrive."""

import asyncio
import json
import math

import paho.mqtt.client as paho
import pytest
from support.mqtt_broker import meters_source, next_sample
from paho.mqtt.enums import CallbackAPIVersion
from support.factories import small_factory

from connectors.mqtt import MqttClient
from factory_models.signals import known_signals
from factory_models import Quality

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

TS_MS = 1767571200000
GOOD_TOPIC = "factory/suzhou-smt/line1/printer/power_kw"
MAX_BYTES = 256

#: (topic, payload, reason) for each kind of bad message
BAD = [
    (GOOD_TOPIC, b"\xff\xfe\x00\x81", "not_utf8"),
    (GOOD_TOPIC, b'{"value": 1,', "bad_json"),
    (GOOD_TOPIC, b'{"value": NaN}', "not_finite"),
    (GOOD_TOPIC, b"nan", "not_finite"),
    (GOOD_TOPIC, b"-Infinity", "not_finite"),
    (GOOD_TOPIC, b'{"value": "abc"}', "wrong_type"),
    (GOOD_TOPIC, b'{"value": true}', "wrong_type"),
    (GOOD_TOPIC, b'{"value": [1, 2]}', "wrong_type"),
    (GOOD_TOPIC, b"7" * 2000, "oversized"),  # longer than the 1 KiB the dead letter keeps
    (GOOD_TOPIC, b'{"value": 1, "ts": 1767571200}', "bad_ts"),
    (GOOD_TOPIC, b'{"value": 1, "ts": "not a time"}', "bad_ts"),
    (GOOD_TOPIC, b'{"value": 1, "quality": "so-so"}', "bad_quality"),
    (GOOD_TOPIC, b'{"ts": 1767571200000}', "missing_field"),
    ("factory/suzhou-smt/line1/printer/state", b"MELTED", "bad_state"),
    ("factory/suzhou-smt/line9/oven/power_kw", b"1.0", "unknown_signal"),
    ("junk/left/over", b"1.0", "unknown_topic"),  # from a subscription the old session still holds
]
ROUNDS = 20


def test_malformed_storm_counted_by_reason(mosquitto, tmp_path):
    factory = small_factory()
    dead_letter = tmp_path / "dead" / "meters.jsonl"

    # An earlier version of this client subscribed to junk/#; the broker keeps that in the session.
    old = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-storm-twin", clean_session=False)
    old.connect(mosquitto.host, mosquitto.port)
    old.loop_start()
    old.subscribe("junk/#", qos=1)[1]
    old.disconnect()
    old.loop_stop()

    async def scenario():
        cfg = meters_source(mosquitto.url, client_id="test-storm-twin", max_payload_bytes=MAX_BYTES)
        client = MqttClient(cfg, factory.site.name, known_signals(factory), dead_letter)
        queue: asyncio.Queue = asyncio.Queue()
        task = asyncio.create_task(client.run(queue))
        assert (await next_sample(queue)).value == "up"

        pub = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-storm-pub")
        pub.max_inflight_messages_set(100)
        pub.connect(mosquitto.host, mosquitto.port)
        pub.loop_start()
        infos, n_good = [], 0
        for r in range(ROUNDS):
            for topic, payload, _ in BAD:
                infos.append(pub.publish(topic, payload, qos=1))
                infos.append(pub.publish(GOOD_TOPIC, json.dumps({"value": n_good, "ts": TS_MS + n_good}), qos=1))
                n_good += 1
            # a Bad reading is not malformed: it reaches the twin, marked bad
            infos.append(pub.publish(GOOD_TOPIC, b'{"value": null, "quality": "bad"}', qos=1))
        for info in infos:
            info.wait_for_publish(30)

        good, bad_quality = [], []
        while len(good) + len(bad_quality) < n_good + ROUNDS:
            s = await next_sample(queue)
            (bad_quality if s.quality == Quality.BAD else good).append(s)
        # every message was read once the last one was; wait for the counters (a guard, not timing)
        for _ in range(500):
            if client.stats()["received"] >= len(infos):
                break
            await asyncio.sleep(0.02)
        stats = client.stats()
        pub.disconnect()
        pub.loop_stop()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        return n_good, good, bad_quality, stats

    n_good, good, bad_quality, stats = asyncio.run(scenario())
    assert [s.value for s in good] == [float(k) for k in range(n_good)]
    assert len(bad_quality) == ROUNDS and all(math.isnan(s.value) for s in bad_quality)

    expected = {}
    for _, _, reason in BAD:
        expected[reason] = expected.get(reason, 0) + ROUNDS
    assert stats["rejected_by_reason"] == expected
    assert stats["rejected"] == len(BAD) * ROUNDS
    assert stats["received"] == len(BAD) * ROUNDS + n_good + ROUNDS

    lines = [json.loads(line) for line in dead_letter.read_text().splitlines()]
    assert len(lines) == stats["rejected"]
    assert {line["reason"] for line in lines} == set(expected)
    by_reason = {line["reason"]: line for line in lines}
    assert "payload_b64" in by_reason["not_utf8"]
    assert by_reason["oversized"]["truncated"] and by_reason["oversized"]["payload_bytes"] == 2000
    assert by_reason["unknown_topic"]["where"] == "junk/left/over"
