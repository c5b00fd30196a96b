"""MQTT: the subscribing source, the payload reader, simulated meters and an embedded demo broker."""

from .client import MqttAuthError, MqttClient, mqtt_sources
from .sensors import MqttSensors, metered_signals

__all__ = ["MqttAuthError", "MqttClient", "MqttSensors", "metered_signals", "mqtt_sources"]
