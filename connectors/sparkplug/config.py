"""The ``sparkplug:`` part of a mapping file: one ``SparkplugSource`` per broker connection, the
twin acting as a Sparkplug B Host Application (see sample.yaml). Pure configuration: nothing here
imports paho or protobuf.

A metric entry names which metrics feed which signal: ``edge_node`` and ``device`` (one topic
level each: text, ``{name}`` or ``+``) and ``metric`` (the metric name, whose ``/`` separates
levels as in a topic: ``Counters/{signal}``). Left out, ``device`` means the Edge Node's own
metrics (NBIRTH/NDATA). Every entry that matches a metric applies, so one metric may feed several
signals; the per-entry rules are those of every source (connectors/transform.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from pydantic import Field, field_validator, model_validator

from ..mqtt.config import MqttBroker
from ..registry import Plugin
from ..transform import Overrides, PathPattern, check_template

_RESERVED = set("+/#")


class SparkplugMetric(Overrides):
    """Which metrics of which Edge Nodes and Devices feed ``signal``."""

    edge_node: str
    device: str | None = None
    metric: str
    signal: str

    @model_validator(mode="after")
    def _patterns(self):
        names: list[str] = []
        for what, text in (("edge_node", self.edge_node), ("device", self.device)):
            if text is None:
                continue
            if "/" in text:
                raise ValueError(f"{what} {text!r} is one topic level: no '/'")
            names += PathPattern(text).names
        metric = PathPattern(self.metric)
        if any(k == "hash" for k, _ in metric.levels):
            raise ValueError(f"metric {self.metric!r}: '#' is not allowed; name the levels")
        names += metric.names
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"placeholder {dup} used twice across edge_node, device and metric")
        check_template(self.signal, frozenset(names) | {"site"}, "edge_node/device/metric")
        return self

    def placeholders(self) -> tuple[PathPattern, PathPattern | None, PathPattern]:
        return (PathPattern(self.edge_node), None if self.device is None else PathPattern(self.device),
                PathPattern(self.metric))


class SparkplugSource(MqttBroker):
    max_payload_bytes: Annotated[int, Field(ge=16, le=268_435_455)] = 262_144
    group_id: str | None = None  # None: every group
    host_id: str | None = None  # set: publish the STATE birth and death of a Host Application
    rebirth: bool = True  # send 'Node Control/Rebirth' requests (a read-only host may not)
    reorder_timeout_s: Annotated[float, Field(ge=0, le=60)] = 2.0
    rebirth_interval_s: Annotated[float, Field(gt=0, le=3600)] = 5.0
    metrics: Annotated[list[SparkplugMetric], Field(min_length=1)]

    @field_validator("group_id", "host_id")
    @classmethod
    def _topic_level(cls, v: str | None) -> str | None:
        if v is not None and (not v or _RESERVED & set(v)):
            raise ValueError(f"{v!r} must be one topic level: not empty, no '+', '/' or '#' (Sparkplug 3.0.0, 4.1)")
        return v

    def signal_templates(self) -> Iterator[tuple[tuple, str]]:
        for j, entry in enumerate(self.metrics):
            yield ("metrics", j, "signal"), entry.signal


PLUGIN = Plugin(key="sparkplug", config=SparkplugSource, sources="connectors.sparkplug.client:sparkplug_sources")
