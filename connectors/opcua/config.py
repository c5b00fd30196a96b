"""The ``opcua:`` part of a mapping file: one ``OpcUaSource`` per server (see sample.yaml here).

Nodes are named by ``nsu=<namespace URI>;<identifier>`` so that a server restart that renumbers
its namespaces changes nothing (node-red-contrib-opcua #478), or matched by a browse pattern.
Pure configuration: nothing here imports asyncua, so loading a mapping stays cheap.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from factory_models.schema import NAME

from ..config_base import Credentials, SourceConfig, Strict, checked_url
from ..registry import Plugin
from ..transform import Overrides, PathPattern, Transform, check_template

_NODE_ID = re.compile(r"^(nsu=[^;]+;)?(i=\d+|s=.+|g=[0-9A-Fa-f-]{36}|b=.+)$")


class OpcUaSecurity(Strict):
    policy: Literal["None", "Basic256Sha256"] = "None"
    mode: Literal["Sign", "SignAndEncrypt"] | None = None
    client_cert: Path | None = None  # generated once at this path when missing, then kept
    client_key: Path | None = None
    server_cert: Path | None = None  # pinned: a server presenting another certificate is refused

    @model_validator(mode="after")
    def _consistent(self):
        if self.policy == "None":
            if self.mode is not None:
                raise ValueError("mode needs policy Basic256Sha256 (policy None neither signs nor encrypts)")
        elif self.mode is None:
            raise ValueError("policy Basic256Sha256 needs mode: Sign or SignAndEncrypt")
        elif not (self.client_cert and self.client_key):
            raise ValueError("policy Basic256Sha256 needs client_cert and client_key paths")
        return self


class Subscription(Strict):
    """How a source monitors its nodes.

    Monitored items are created ``batch_size`` at a time (one CreateMonitoredItems request each),
    and spread over as many subscriptions as needed so that none holds more than
    ``max_items_per_subscription`` (servers and clients struggle near 1,000 items in one
    subscription: telegraf #17874, #14568). Every subscription gets the same intervals.
    """

    publishing_interval_ms: Annotated[float, Field(gt=0)] = 500
    sampling_interval_ms: Annotated[float, Field(ge=0)] = 250
    queue_size: Annotated[int, Field(ge=1, le=10_000)] = 10
    batch_size: Annotated[int, Field(ge=1, le=10_000)] = 100
    max_items_per_subscription: Annotated[int, Field(ge=1, le=100_000)] = 1000

    @model_validator(mode="after")
    def _batch_fits(self):
        if self.max_items_per_subscription < self.batch_size:
            raise ValueError(
                f"max_items_per_subscription ({self.max_items_per_subscription}) must be at least "
                f"batch_size ({self.batch_size}): a batch goes to one subscription"
            )
        return self


class OpcUaNode(Overrides):
    """One node by id (``node`` + ``signal``), or every leaf a ``browse`` pattern matches."""

    node: str | None = None
    browse: str | None = None
    signal: str | None = None  # with browse: a template, default "{line}/{station}/{signal}"
    # with browse: the twin's name of a browse name ("Press 01": press-1), looked up first, then
    # ``case: lower`` folds the rest; a pattern's text levels match either spelling
    rename: dict[str, Annotated[str, Field(pattern=NAME, max_length=64)]] | None = None
    case: Literal["lower"] | None = None

    def twin_name(self, browse_name: str) -> str:
        """The name a browse name stands for in signals: ``rename`` first, else ``case``."""
        if self.rename and browse_name in self.rename:
            return self.rename[browse_name]
        return browse_name.lower() if self.case == "lower" else browse_name

    @field_validator("node")
    @classmethod
    def _node_id(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if v.startswith("ns="):
            raise ValueError(
                "address the node by namespace URI, 'nsu=<uri>;s=...', not by index 'ns=<n>;' "
                "(a server restart may renumber namespaces)"
            )
        if not _NODE_ID.match(v):
            raise ValueError("expected a node id such as 'nsu=urn:example:plc;s=line1/printer/state' or 'i=2258'")
        return v

    @model_validator(mode="after")
    def _node_or_browse(self):
        if (self.node is None) == (self.browse is None):
            raise ValueError("give exactly one of node (with signal) or browse (a pattern)")
        if self.node is not None and not self.signal:
            raise ValueError("a node needs the signal it feeds")
        if self.node is not None and (self.rename or self.case):
            raise ValueError("rename and case apply to browse patterns; a node names its signal itself")
        if self.browse is not None:
            pattern = PathPattern(self.browse)
            check_template(self.signal_template, pattern.names | {"site"}, self.browse)
        return self

    @property
    def signal_template(self) -> str:
        return self.signal or "{line}/{station}/{signal}"


class OpcUaSource(Credentials, SourceConfig):
    endpoint: str
    security: OpcUaSecurity = OpcUaSecurity()
    subscription: Subscription = Subscription()
    defaults: Transform = Transform()
    nodes: Annotated[list[OpcUaNode], Field(min_length=1)]

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        checked_url(v, ("opc.tcp",), "expected opc.tcp://HOST:PORT[/path]")
        return v

    def signal_templates(self) -> Iterator[tuple[tuple, str]]:
        for j, node in enumerate(self.nodes):
            yield ("nodes", j, "signal"), node.signal_template


PLUGIN = Plugin(key="opcua", config=OpcUaSource, sources="connectors.opcua.client:opcua_sources")
