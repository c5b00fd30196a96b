"""MQTT: the subscribing source, the payload reader, simulated meters and an embedded demo broker.

The names below are imported on first use: loading a mapping reads ``mqtt/config.py`` through
this package, and that must not load paho.
"""

import importlib

_WHERE = {
    "MqttAuthError": ".client",
    "MqttClient": ".client",
    "mqtt_sources": ".client",
    "MqttSensors": ".sensors",
    "metered_signals": ".sensors",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
