"""A simulated PLC: an OPC UA server exposing every station of a factory model.

Address space (OPC UA Part 3 objects and variables, Part 5 FolderType)::

    Objects/<site>/<line>/<station>/state       String  (State name, e.g. "PRODUCING")
                                   /produced    UInt32  counters: produced, good, scrap, rework
                                   /power_kw    Double
                                   /energy_kwh  Double  (counter)
                                   /product     String

Each variable has the string NodeId ``s=<line>/<station>/<signal>`` in the PLC's own namespace
(``urn:factory-twin:simulated-plc`` by default), so a client that addresses it as
``nsu=<uri>;s=<signal>`` is immune to namespace renumbering. Before the first ``update`` a variable
reads with StatusCode BadWaitingForInitialData (Part 4 section 7.39): "no value yet" is never
mistaken for zero. The runtime drives it from the SimPy model through ``update``; this module does
not know the twin.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole

from factory_models.signals import STATION_SIGNALS, TEXT_NAMES
from factory_models import Factory

from .security import ensure_certificate

log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:factory-twin:simulated-plc"
APPLICATION_URI = "urn:factory-twin:simulated-plc:server"

COUNTER_NAMES = frozenset({"produced", "good", "scrap", "rework"})

#: OPC UA built-in type of each station signal.
VARIANT_TYPE: dict[str, ua.VariantType] = {
    name: (
        ua.VariantType.String
        if name in TEXT_NAMES
        else ua.VariantType.UInt32
        if name in COUNTER_NAMES
        else ua.VariantType.Double
    )
    for name in STATION_SIGNALS
}

_INITIAL = {ua.VariantType.String: "", ua.VariantType.UInt32: 0, ua.VariantType.Double: 0.0}


@dataclass(frozen=True)
class PlcSecurity:
    """Secure endpoints of the simulated PLC.

    ``cert``/``key``: the server's certificate (DER) and key (PEM), created on first start and kept.
    ``users``: username -> password; when given, anonymous sessions are refused.
    ``allow_none``: also offer the unsecured endpoint (policy None).
    """

    cert: Path
    key: Path
    users: dict[str, str] | None = None
    allow_none: bool = False


class _PasswordUsers:
    """asyncua user manager over a fixed username/password table; anything else is refused."""

    def __init__(self, users: dict[str, str]):
        self._users = dict(users)

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username is not None and self._users.get(username) == password:
            return User(role=UserRole.User, name=username)
        # never log the password
        log.warning("simulated PLC refused user %r", username)
        return None


class SimulatedPlc:
    """An asyncua server with one object per station of ``factory``, bound to ``host:port``.

    ``port=0`` picks a free port at start (see ``endpoint``). Use as ``async with`` or call
    ``start``/``stop``; ``update(signal, value, ts)`` sets a value with its source timestamp.
    """

    def __init__(
        self,
        factory: Factory,
        *,
        host: str = "127.0.0.1",
        port: int = 4840,
        namespace_uri: str = NAMESPACE_URI,
        security: PlcSecurity | None = None,
        extra_namespaces: tuple[str, ...] = (),
    ):
        self.factory = factory
        self.host = host
        self.port = port
        self.namespace_uri = namespace_uri
        self.security = security
        # registered before ours, to move our namespace index (renumbering tests, real PLCs do it too)
        self.extra_namespaces = extra_namespaces
        self._server: Server | None = None
        self._nodes: dict[str, ua.NodeId] = {}
        self._types: dict[str, ua.VariantType] = {}
        # last value of each signal, written back after a restart: a PLC keeps its counters
        self._last: dict[str, ua.DataValue] = {}
        self.updates = 0
        self.write_errors = 0
        self._pending: deque[tuple[ua.NodeId, ua.DataValue]] = deque()
        self._wake = asyncio.Event()
        self._writing = False
        self._writer_task: asyncio.Task | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://{self.host}:{self.port}"

    async def start(self) -> None:
        if self.port == 0:
            self.port = _free_port(self.host)
        users = self.security.users if self.security else None
        server = Server(user_manager=_PasswordUsers(users) if users else None)
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_server_name(f"factory-twin simulated PLC ({self.factory.site.name})")
        await server.set_application_uri(APPLICATION_URI)
        if self.security is None:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        else:
            await ensure_certificate(self.security.cert, self.security.key, APPLICATION_URI, server=True)
            await server.load_certificate(str(self.security.cert))
            await server.load_private_key(str(self.security.key))
            policies = [
                ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                ua.SecurityPolicyType.Basic256Sha256_Sign,
            ]
            if self.security.allow_none:
                policies.insert(0, ua.SecurityPolicyType.NoSecurity)
            server.set_security_policy(policies)
        tokens = [ua.UserNameIdentityToken] if users else [ua.AnonymousIdentityToken]
        server.set_identity_tokens(tokens)
        for uri in self.extra_namespaces:
            await server.register_namespace(uri)
        ns = await server.register_namespace(self.namespace_uri)
        await self._build(server, ns)
        await server.start()
        self._server = server
        self._writer_task = asyncio.create_task(self._writer())
        log.info("simulated PLC listening on %s (namespace %s = %d)", self.endpoint, self.namespace_uri, ns)

    async def stop(self) -> None:
        if self._writer_task is not None:
            await self.flush()
            self._writer_task.cancel()
            await asyncio.gather(self._writer_task, return_exceptions=True)
            self._writer_task = None
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()

    async def __aenter__(self) -> "SimulatedPlc":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def _build(self, server: Server, ns: int) -> None:
        site = await server.nodes.objects.add_folder(ns, self.factory.site.name)
        lines: dict[str, object] = {}
        self._nodes.clear()
        for ln, _, unit in self.factory.station_units():
            if ln.name not in lines:
                lines[ln.name] = await site.add_folder(ns, ln.name)
            station = await lines[ln.name].add_object(ns, unit)
            for name, vtype in VARIANT_TYPE.items():
                signal = f"{ln.name}/{unit}/{name}"
                nodeid = ua.NodeId(signal, ns, ua.NodeIdType.String)
                var = await station.add_variable(nodeid, name, ua.Variant(_INITIAL[vtype], vtype))
                await server.write_attribute_value(
                    var.nodeid,
                    ua.DataValue(
                        ua.Variant(_INITIAL[vtype], vtype),
                        StatusCode=ua.StatusCode(ua.StatusCodes.BadWaitingForInitialData),
                    ),
                )
                self._nodes[signal] = var.nodeid
                self._types[signal] = vtype
                if signal in self._last:
                    await server.write_attribute_value(var.nodeid, self._last[signal])

    # --- data -----------------------------------------------------------------------------------

    def signals(self) -> list[str]:
        """Every signal this PLC exposes, ``<line>/<station>/<name>``."""
        return list(self._nodes) if self._nodes else [
            f"{ln.name}/{unit}/{name}" for ln, _, unit in self.factory.station_units() for name in VARIANT_TYPE
        ]

    def node_id(self, signal: str) -> str:
        """The namespace-URI form of a signal's NodeId, as a mapping file writes it."""
        return f"nsu={self.namespace_uri};s={signal}"

    async def update(
        self, signal: str, value: float | int | str, ts: float | None = None, *, status: int = ua.StatusCodes.Good
    ) -> None:
        """Set ``signal`` to ``value`` with SourceTimestamp ``ts`` (epoch s, UTC; default now).

        Counters must be whole, non-negative numbers; ``state`` and ``product`` take strings.
        ``status`` is an OPC UA StatusCode value (e.g. ``ua.StatusCodes.BadSensorFailure``) to
        simulate a failing sensor; the server then sends no value (Part 4 section 7.7.1). Raises
        ValueError for a signal this PLC does not have or a value of the wrong type.
        """
        if self._server is None:
            raise RuntimeError("the simulated PLC is not started")
        nodeid, dv = self._datavalue(signal, value, ts, status)
        await self._server.write_attribute_value(nodeid, dv)

    def publish(self, signal: str, value: float | int | str, ts: float | None = None) -> None:
        """Non-blocking ``update`` for a simulation step: validated now, written in call order by
        one background task (no task per value). Same errors as ``update``."""
        if self._server is None:
            raise RuntimeError("the simulated PLC is not started")
        self._pending.append(self._datavalue(signal, value, ts, ua.StatusCodes.Good))
        self._wake.set()

    async def flush(self) -> None:
        """Wait until every ``publish``ed value is in the address space."""
        while (self._pending or self._writing) and self._writer_task is not None and not self._writer_task.done():
            await asyncio.sleep(0.005)

    async def _writer(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending and self._server is not None:
                self._writing = True
                nodeid, dv = self._pending.popleft()
                try:
                    await self._server.write_attribute_value(nodeid, dv)
                except Exception:  # one failed write must not stop the ones after it
                    self.write_errors += 1
                    log.exception("simulated PLC: writing %s failed", nodeid.Identifier)
                finally:
                    self._writing = False

    def _datavalue(self, signal: str, value, ts: float | None, status: int) -> tuple[ua.NodeId, ua.DataValue]:
        try:
            nodeid = self._nodes[signal]
        except KeyError:
            raise ValueError(
                f"the simulated PLC has no signal {signal!r}; it exposes <line>/<station>/<name> with names "
                f"{', '.join(VARIANT_TYPE)}"
            ) from None
        vtype = self._types[signal]
        variant = ua.Variant(_coerce(signal, value, vtype), vtype)
        now = datetime.now(timezone.utc)
        source = now if ts is None else datetime.fromtimestamp(ts, tz=timezone.utc)
        dv = ua.DataValue(variant, StatusCode=ua.StatusCode(status), SourceTimestamp=source, ServerTimestamp=now)
        self._last[signal] = dv
        self.updates += 1
        return nodeid, dv

    def stats(self) -> dict:
        """Values accepted (``updates``), still waiting for the writer (``pending``), and whether it serves."""
        return {
            "updates": self.updates,
            "pending": len(self._pending),
            "write_errors": self.write_errors,
            "running": self._server is not None,
        }

    async def read(self, signal: str) -> ua.DataValue:
        """The current DataValue of a signal (value, StatusCode, timestamps)."""
        if self._server is None:
            raise RuntimeError("the simulated PLC is not started")
        return self._server.read_attribute_value(self._nodes[signal])


def _coerce(signal: str, value: float | int | str, vtype: ua.VariantType) -> float | int | str:
    if vtype == ua.VariantType.String:
        if not isinstance(value, str):
            raise ValueError(f"{signal}: expected a string, got {value!r}")
        return value
    if isinstance(value, (str, bytes)) or isinstance(value, bool):
        raise ValueError(f"{signal}: expected a number, got {value!r}")
    if vtype == ua.VariantType.UInt32:
        if value < 0 or value != int(value) or value > 0xFFFFFFFF:
            raise ValueError(f"{signal}: a counter takes whole numbers 0..4294967295, got {value!r}")
        return int(value)
    return float(value)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
