"""The ``mqtt:`` part of a mapping file: one ``MqttSource`` per broker connection (see sample.yaml).

Topics are matched by a pattern with named placeholders plus a dotted JSON field path
(telegraf #10049). Pure configuration: nothing here imports paho.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ..config_base import Credentials, SourceConfig, Strict, TimeZoneName, checked_url
from ..registry import Plugin
from ..transform import Overrides, PathPattern, Transform, check_template


class MqttTls(Strict):
    ca_file: Path | None = None  # None: the system's trusted CAs
    cert_file: Path | None = None  # client certificate, for brokers that require one
    key_file: Path | None = None

    @model_validator(mode="after")
    def _pair(self):
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class MqttTopic(Overrides):
    """A topic pattern and how to read the payload.

    ``field`` is a dotted JSON path to the value; a bare payload (a number or text that is not a
    JSON object) is taken whole. ``ts_field``, ``quality_field`` and ``seq_field`` follow the default
    convention (docs/architecture.md, Contracts) unless set; a payload without the seq field is
    simply not checked for gaps. Every topic entry whose pattern matches a message applies to it,
    so one JSON payload feeds as many signals as entries read a ``field`` of it.
    """

    pattern: str
    signal: str = "{line}/{station}/{signal}"
    field: str = "value"
    ts_field: str = "ts"
    quality_field: str = "quality"
    seq_field: str = "seq"

    @model_validator(mode="after")
    def _placeholders(self):
        pattern = PathPattern(self.pattern)
        check_template(self.signal, pattern.names | {"site"}, self.pattern)
        return self


class MqttBroker(Credentials, SourceConfig):
    """One connection to an MQTT broker: what the ``mqtt:`` and ``sparkplug:`` sources share."""

    url: str = "mqtt://127.0.0.1:1883"
    tls: MqttTls | None = None
    client_id: str | None = None  # default: factory-twin-<name>; fixed, so the session persists
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    reconnect_min_s: Annotated[float, Field(gt=0)] = 0.5
    # capped low so samples flow again within seconds of the broker's return (issue 12)
    reconnect_max_s: Annotated[float, Field(gt=0)] = 3.0
    dead_letter: Path | None = None
    defaults: Transform = Transform()

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = checked_url(v, ("mqtt", "mqtts"), "expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
        if parts.username or parts.password:
            raise ValueError("no credentials in the url; use username_env and password_env or password_file")
        return v

    @model_validator(mode="after")
    def _backoff(self):
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts" or self.tls is not None

    @property
    def session_id(self) -> str:
        return self.client_id or f"factory-twin-{self.name}"


class MqttSource(MqttBroker):
    qos: Literal[0, 1] = 1
    session_expiry_s: Annotated[int, Field(ge=0)] = 86_400  # broker keeps our queue this long offline
    max_payload_bytes: Annotated[int, Field(ge=16, le=268_435_455)] = 65_536
    timezone: TimeZoneName | None = None  # device times without a UTC offset are in this zone
    topics: Annotated[list[MqttTopic], Field(min_length=1)]

    def signal_templates(self) -> Iterator[tuple[tuple, str]]:
        for j, topic in enumerate(self.topics):
            yield ("topics", j, "signal"), topic.signal


PLUGIN = Plugin(key="mqtt", config=MqttSource, sources="connectors.mqtt.client:mqtt_sources")
