"""A third-party energy meter on MQTT, written for the tests: one JSON per reading carrying the
energy register (kWh), the active power (W) and the meter's local time without an offset, as many
field meters and gateways send it::

    acme/meters/press  {"EnergyTotal": 1200.0125, "ActivePower": 9000.0, "Timestamp": "2026-12-02T15:04:05.250"}
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

TOPIC = "acme/meters/press"


def payload(energy_kwh: float, power_w: float, ts: float, tz: ZoneInfo) -> bytes:
    """The JSON of one reading; its time is ``ts`` to the millisecond (built from whole ms, so no
    float rounding moves it), in the meter's local time, without offset."""
    ms = round(ts * 1000)
    local = (datetime.fromtimestamp(ms // 1000, tz) + timedelta(milliseconds=ms % 1000)).replace(tzinfo=None)
    local = local.isoformat(timespec="milliseconds")
    return json.dumps({"EnergyTotal": round(energy_kwh, 6), "ActivePower": power_w, "Timestamp": local}).encode()


class ThirdPartyMeter:
    def __init__(self, host: str, port: int, tz: ZoneInfo):
        self.tz = tz
        self.client = paho.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="acme-meter-press",
                                  protocol=paho.MQTTv311)
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        self.sent: list[tuple[float, float, float]] = []  # (ts to the ms, kWh, W) as published

    def publish(self, energy_kwh: float, power_w: float, ts: float, retain: bool = False) -> None:
        """One reading, QoS 1; returns once the broker has it (call from a worker thread). A
        retained one reaches a subscriber whenever it subscribes."""
        info = self.client.publish(TOPIC, payload(energy_kwh, power_w, ts, self.tz), qos=1, retain=retain)
        info.wait_for_publish(10)
        self.sent.append((round(ts * 1000) / 1000, round(energy_kwh, 6), power_w))

    def close(self) -> None:
        self.client.publish(TOPIC, b"", qos=1, retain=True).wait_for_publish(10)  # clears the retained one
        self.client.disconnect()
        self.client.loop_stop()
