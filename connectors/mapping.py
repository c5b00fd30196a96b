"""The connection mapping: which OPC UA node or MQTT topic feeds which signal of the twin.

One YAML file per site (see connectors/mqtt/README.md and configs/mapping_demo_mqtt.yaml). OPC UA
nodes are named by ``nsu=<namespace URI>;<identifier>`` so that a server restart that renumbers its
namespaces changes nothing (node-red-contrib-opcua #478), or matched by a browse pattern. MQTT topics
are matched by a pattern with named placeholders plus a dotted JSON field path (telegraf #10049).
Each entry may set scale, offset, unit, deadband and a timestamp policy (telegraf #9011); the
source's ``defaults`` fill what an entry leaves out.

``load_mapping`` fails at start-up, naming the file, the field and its line, when an entry names a
station or signal the factory does not have.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from factory_models import ConfigError, Factory, TsKind, load_model
from factory_models.loading import field_path, line_of  # the error format of every other config
from factory_models.schema import NAME

from factory_models.signals import CONNECTION, SITE, known_signals

Name = Annotated[str, Field(pattern=NAME, max_length=64)]
TimestampPolicy = Literal["source", "server", "receive"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- value transform -----------------------------------------------------------------------------


class Transform(Strict):
    """engineering value = raw x scale + offset; a change smaller than ``deadband`` is not forwarded.

    ``timestamp`` is the preferred clock: ``source`` falls back to the server time, then to the
    receive time; ``server`` falls back to the receive time; the clock actually used is recorded on
    the Sample as its ``ts_kind``.
    """

    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    deadband: Annotated[float, Field(ge=0)] = 0.0
    timestamp: TimestampPolicy = "source"

    def apply(self, raw: float) -> float:
        return raw * self.scale + self.offset


class Overrides(Strict):
    """Per-entry transform fields; None inherits the source's ``defaults``."""

    scale: float | None = None
    offset: float | None = None
    unit: str | None = None
    deadband: Annotated[float, Field(ge=0)] | None = None
    timestamp: TimestampPolicy | None = None

    def transform(self, defaults: Transform) -> Transform:
        own = {k: getattr(self, k) for k in Transform.model_fields if getattr(self, k) is not None}
        return defaults.model_copy(update=own)


def pick_timestamp(
    policy: str, source_ts: float | None, server_ts: float | None, receive_ts: float
) -> tuple[float, TsKind]:
    """The timestamp a Sample carries under ``policy`` and which clock it came from."""
    if policy == "source" and source_ts is not None:
        return source_ts, TsKind.SOURCE
    if policy in ("source", "server") and server_ts is not None:
        return server_ts, TsKind.SERVER
    return receive_ts, TsKind.RECEIVE


class Deadband:
    """Absolute deadband per signal: forward a value only when it moved at least ``deadband`` from
    the last forwarded one. Text values pass when they change. A deadband of 0 forwards everything
    (a repeated counter value is still a heartbeat the twin uses to see the source is alive)."""

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last: dict[str, float | str] = {}

    def passes(self, signal: str, value: float | str, deadband: float) -> bool:
        if deadband <= 0:
            return True
        last = self._last.get(signal)
        if last is not None:
            if isinstance(value, str) or isinstance(last, str):
                if value == last:
                    return False
            elif abs(value - last) < deadband:
                return False
        self._last[signal] = value
        return True

    def forget(self) -> None:
        """After a reconnect the first value must pass again, whatever it is."""
        self._last.clear()


# --- patterns with named placeholders -------------------------------------------------------------

_PLACEHOLDER = re.compile(r"^\{([A-Za-z_][A-Za-z0-9_]*)\}$")
_NAME_RE = re.compile(NAME)


class PathPattern:
    """A ``/``-separated pattern such as ``factory/{site}/{line}/{station}/{signal}``.

    Each ``{name}`` stands for exactly one path level (a signal name segment, so no ``/``); ``+``
    for one anonymous level; ``#`` (last level only) for any remaining levels. ``fixed`` values
    (typically ``site``) are substituted before matching, so only that site's paths match.
    """

    def __init__(self, pattern: str, fixed: dict[str, str] | None = None):
        self.pattern = pattern
        self.levels: list[tuple[str, str]] = []  # (kind, text): kind is lit | var | plus | hash
        levels = pattern.split("/")
        for i, level in enumerate(levels):
            m = _PLACEHOLDER.match(level)
            if m:
                name = m.group(1)
                if fixed and name in fixed:
                    self.levels.append(("lit", fixed[name]))
                else:
                    self.levels.append(("var", name))
            elif level == "+":
                self.levels.append(("plus", level))
            elif level == "#":
                if i != len(levels) - 1:
                    raise ValueError(f"'#' may only be the last level of {pattern!r}")
                self.levels.append(("hash", level))
            elif level == "" and 0 < i < len(levels) - 1 or any(c in level for c in "{}+#"):
                raise ValueError(
                    f"level {level!r} of {pattern!r} is neither text nor a '{{name}}' placeholder"
                )
            else:
                self.levels.append(("lit", level))
        names = [t for k, t in self.levels if k == "var"]
        if len(set(names)) != len(names):
            raise ValueError(f"placeholder repeated in {pattern!r}")
        self.names = frozenset(names) | frozenset(fixed or ()) & _names_in(pattern)
        self.fixed = dict(fixed or {})

    def subscription(self) -> str:
        """The MQTT topic filter this pattern needs (placeholders become ``+``)."""
        return "/".join("+" if k in ("var", "plus") else t for k, t in self.levels)

    def match(self, path: str) -> dict[str, str] | None:
        """The placeholder values if ``path`` matches, else None. A value must be a valid name."""
        parts = path.split("/")
        out = dict(self.fixed)
        for i, (kind, text) in enumerate(self.levels):
            if kind == "hash":
                return out
            if i >= len(parts):
                return None
            part = parts[i]
            if kind == "lit":
                if part != text:
                    return None
            elif kind == "var":
                if not _NAME_RE.match(part) or len(part) > 64:
                    return None
                out[text] = part
            elif not part:
                return None
        return out if len(parts) == len(self.levels) else None


def _names_in(template: str) -> frozenset[str]:
    return frozenset(re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", template))


def render(template: str, values: dict[str, str]) -> str:
    """``{line}/{station}/{signal}`` filled from ``values`` (every placeholder must be there)."""
    return re.sub(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", lambda m: values[m.group(1)], template)


def template_regex(template: str) -> re.Pattern:
    """A regex matching every signal a template can produce (each placeholder: one path segment)."""
    parts = re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", template)
    return re.compile("".join("[^/]+" if _PLACEHOLDER.match(p) else re.escape(p) for p in parts) + "$")


def _check_template(template: str, available: frozenset[str], pattern: str) -> None:
    missing = _names_in(template) - available
    if missing:
        raise ValueError(
            f"signal template {template!r} uses {sorted(missing)}, which pattern {pattern!r} does not define"
        )


# --- credentials -----------------------------------------------------------------------------------


class Credentials(Strict):
    """User name and password named by environment variables or a file; never written in the config."""

    username_env: str | None = None
    password_env: str | None = None
    password_file: Path | None = None

    @model_validator(mode="after")
    def _one_password(self):
        if self.password_env and self.password_file:
            raise ValueError("give password_env or password_file, not both")
        if (self.password_env or self.password_file) and not self.username_env:
            raise ValueError("a password needs username_env (the variable holding the user name)")
        return self

    def resolve_credentials(self) -> tuple[str | None, str | None]:
        """(username, password) read now; a named variable or file that is missing is a ConfigError."""
        if not self.username_env:
            return None, None
        user = os.environ.get(self.username_env)
        if user is None:
            raise ConfigError(f"${self.username_env}", ["environment variable for the user name is not set"])
        password = None
        if self.password_env:
            password = os.environ.get(self.password_env)
            if password is None:
                raise ConfigError(f"${self.password_env}", ["environment variable for the password is not set"])
        elif self.password_file:
            try:
                password = self.password_file.read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ConfigError(self.password_file, [f"cannot read the password file: {exc.strerror or exc}"]) from None
        return user, password


# --- OPC UA ---------------------------------------------------------------------------------------

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
        if self.browse is not None:
            pattern = PathPattern(self.browse)
            _check_template(self.signal_template, pattern.names | {"site"}, self.browse)
        return self

    @property
    def signal_template(self) -> str:
        return self.signal or "{line}/{station}/{signal}"


class OpcUaSource(Credentials):
    name: Name
    endpoint: str
    security: OpcUaSecurity = OpcUaSecurity()
    subscription: Subscription = Subscription()
    defaults: Transform = Transform()
    nodes: Annotated[list[OpcUaNode], Field(min_length=1)]

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme != "opc.tcp" or not parts.hostname:
            raise ValueError("expected opc.tcp://HOST:PORT[/path]")
        return v


# --- MQTT -----------------------------------------------------------------------------------------


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
    JSON object) is taken whole. ``ts_field`` and ``quality_field`` follow the default convention
    (DESIGN.md section 5) unless set.
    """

    pattern: str
    signal: str = "{line}/{station}/{signal}"
    field: str = "value"
    ts_field: str = "ts"
    quality_field: str = "quality"

    @model_validator(mode="after")
    def _placeholders(self):
        pattern = PathPattern(self.pattern)
        _check_template(self.signal, pattern.names | {"site"}, self.pattern)
        return self


class MqttSource(Credentials):
    name: Name
    url: str = "mqtt://127.0.0.1:1883"
    tls: MqttTls | None = None
    client_id: str | None = None  # default: factory-twin-<name>; fixed, so the session persists
    qos: Literal[0, 1] = 1
    keepalive_s: Annotated[int, Field(ge=5, le=3600)] = 30
    session_expiry_s: Annotated[int, Field(ge=0)] = 86_400  # broker keeps our queue this long offline
    reconnect_min_s: Annotated[float, Field(gt=0)] = 1.0
    reconnect_max_s: Annotated[float, Field(gt=0)] = 30.0
    max_payload_bytes: Annotated[int, Field(ge=16, le=268_435_455)] = 65_536
    dead_letter: Path | None = None
    defaults: Transform = Transform()
    topics: Annotated[list[MqttTopic], Field(min_length=1)]

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ValueError("expected mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
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


# --- the file ---------------------------------------------------------------------------------------


class Mapping(Strict):
    site: Name
    opcua: list[OpcUaSource] = []
    mqtt: list[MqttSource] = []

    @model_validator(mode="after")
    def _names(self):
        names = [s.name for s in (*self.opcua, *self.mqtt)]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"source names must be unique (they name the {CONNECTION}/<source> signals); repeated: {dup}")
        if not names:
            raise ValueError("no sources: give at least one opcua or mqtt entry")
        return self


def _describe_unknown(signal: str, factory: Factory, known: set[str]) -> str:
    """Why ``signal`` is unknown, naming what would have been accepted at the level that fails."""
    parts = signal.split("/")
    if len(parts) != 3:
        return f"unknown signal {signal!r}: expected <line>/<station>/<name> or site/<meter>/<name>"
    line, unit, name = parts
    lines = [ln.name for ln in factory.lines]
    if line == SITE:
        meters = [m.name for m in factory.meters]
        if unit not in meters:
            return f"unknown signal {signal!r}: no site meter {unit!r}; meters are {meters}"
    elif line not in lines:
        return f"unknown signal {signal!r}: no line {line!r}; lines are {lines} (or 'site' for meters)"
    else:
        units = [u for ln, _, u in factory.station_units() if ln.name == line]
        if unit not in units:
            return f"unknown signal {signal!r}: line {line!r} has no station {unit!r}; its stations are {units}"
    names = sorted({s.rsplit("/", 1)[1] for s in known if s.startswith(f"{line}/{unit}/")})
    return f"unknown signal {signal!r}: {line}/{unit} has no signal {name!r}; its signals are {names}"


def check_signals(mapping: Mapping, factory: Factory) -> list[tuple[tuple, str]]:
    """Problems as (field location, message): site mismatch, unknown fixed signals, and templates
    that can match no known signal (a typo in the literal part of a template)."""
    known = known_signals(factory)
    problems: list[tuple[tuple, str]] = []
    if mapping.site != factory.site.name:
        problems.append((("site",), f"mapping is for site {mapping.site!r} but the factory is {factory.site.name!r}"))

    def check(loc: tuple, template: str) -> None:
        if not _names_in(template) - {"site"}:
            signal = render(template, {"site": mapping.site})
            if signal not in known:
                problems.append((loc, _describe_unknown(signal, factory, known)))
            return
        rx = template_regex(template.replace("{site}", mapping.site))
        if not any(rx.match(s) for s in known):
            problems.append((loc, f"signal template {template!r} matches no signal of site {factory.site.name!r}"))

    for i, src in enumerate(mapping.opcua):
        for j, node in enumerate(src.nodes):
            check(("opcua", i, "nodes", j, "signal"), node.signal_template)
    for i, src in enumerate(mapping.mqtt):
        for j, topic in enumerate(src.topics):
            check(("mqtt", i, "topics", j, "signal"), topic.signal)
    return problems


def load_mapping(path: str | Path, factory: Factory) -> Mapping:
    """The mapping in ``path``, validated and checked against the signals of ``factory``.

    Raises ConfigError naming the file, each bad field with its line, and what was expected.
    """
    mapping = load_model(path, Mapping)
    problems = check_signals(mapping, factory)
    if problems:
        import yaml

        node = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        lines = []
        for loc, msg in problems:
            # the 'signal' key may be absent (a browse default); point at the entry then
            line = line_of(node, loc)
            where = f"line {line}: " if line else ""
            lines.append(f"{where}{field_path(loc)}: {msg}")
        raise ConfigError(path, lines)
    return mapping
