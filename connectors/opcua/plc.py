"""A simulated PLC: an OPC UA server exposing every station of a factory model, typed as a
vendor's server types its variables.

Address space (OPC 10000-3 objects and variables, 10000-5 FolderType, 10000-8 Data Access)::

    Objects/<site>/<line>/<station>/state       UInt32  MultiStateDiscreteType: a PackML StateCurrent
                                                        code by default, EnumStrings naming every code
                                   /produced    UInt32  counters: produced, good, scrap, rework
                                   /power_kw    Double  AnalogItemType, EngineeringUnits kW (UNECE KWT),
                                                        EURange 0 .. the station's highest draw
                                   /energy_kwh  Double  AnalogItemType, kWh (UNECE KWH), a counter
                                   /product     String

Every node, folders included, has a string NodeId in the PLC's own namespace
(``urn:factory-twin:simulated-plc`` by default): ``s=<site>``, ``s=<line>``, ``s=<line>/<station>``
and ``s=<line>/<station>/<signal>`` for the variables, so a mapping that writes
``nsu=<uri>;s=<signal>`` is immune to namespace renumbering. Every variable holds a Good value from
the start, as a running PLC does (counters 0, the state PackML Stopped, the first product); the
state codes and why each twin state is written as it is: ``plc_states.py``.

Source timestamps come from the PLC's ``clock`` at the moment a value is written: the wall clock
unless the caller gives another (the demo gives its simulated plant's clock, the one its twin
runs on, since it plays hours in minutes) or stamps a value itself. The PLC listens on a fixed
port (4840 by default); a port already taken is one ``PortInUse`` line, not a traceback. The
runtime drives it from the SimPy model through ``update``/``publish``; this module does not know
the twin.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.permission_rules import User, UserRole

from connectors.ports import PortInUse, check_port, free_port, port_in_use  # noqa: F401 (PortInUse: for callers)
from factory_models import Factory, State
from factory_models.signals import STATION_SIGNALS, TEXT_NAMES

from .plc_nodes import add_analog, add_multistate, add_plain
from .plc_states import INITIAL_STATE, StateCodes, state_codes
from .security import ensure_certificate

log = logging.getLogger(__name__)

NAMESPACE_URI = "urn:factory-twin:simulated-plc"
APPLICATION_URI = "urn:factory-twin:simulated-plc:server"

COUNTER_NAMES = frozenset({"produced", "good", "scrap", "rework"})

#: OPC UA built-in type of each station signal (the state is a code: plc_states.py).
VARIANT_TYPE: dict[str, ua.VariantType] = {
    name: (
        ua.VariantType.UInt32
        if name in COUNTER_NAMES or name == "state"
        else ua.VariantType.String
        if name in TEXT_NAMES
        else ua.VariantType.Double
    )
    for name in STATION_SIGNALS
}

#: EngineeringUnits of the analog variables (engineering_units.UNITS symbols).
ANALOG_UNITS = {"power_kw": "kW", "energy_kwh": "kWh"}
#: EURange high of an energy counter, kWh: what a meter register holds before it wraps.
ENERGY_RANGE_KWH = 1e9


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
        state_values: str = "packml",
        clock: Callable[[], float] = time.time,
        port_option: str = "--plc-port",
    ):
        self.factory = factory
        self.host = host
        self.port = port
        self.namespace_uri = namespace_uri
        self.security = security
        # registered before ours, to move our namespace index (renumbering tests, real PLCs do it too)
        self.extra_namespaces = extra_namespaces
        self.codes: StateCodes = state_codes(state_values)
        self.clock = clock
        self.port_option = port_option  # what the PortInUse line tells to change
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
            self.port = free_port(self.host)
        check_port(self.host, self.port, "simulated PLC", self.port_option)
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
        try:
            await server.start()
        except OSError as exc:  # taken between the check and the bind
            raise port_in_use("simulated PLC", self.host, self.port, self.port_option, exc) from None
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
        def sid(text: str) -> ua.NodeId:
            return ua.NodeId(text, ns, ua.NodeIdType.String)

        site_name = self.factory.site.name
        site = await server.nodes.objects.add_folder(sid(site_name), ua.QualifiedName(site_name, ns))
        lines: dict[str, object] = {}
        self._nodes.clear()
        now = datetime.fromtimestamp(self.clock(), tz=timezone.utc)
        for ln, spec, unit in self.factory.station_units():
            if ln.name not in lines:
                lines[ln.name] = await site.add_folder(sid(ln.name), ua.QualifiedName(ln.name, ns))
            station = await lines[ln.name].add_object(sid(f"{ln.name}/{unit}"), ua.QualifiedName(unit, ns))
            for name, vtype in VARIANT_TYPE.items():
                signal = f"{ln.name}/{unit}/{name}"
                value = self._initial(name, vtype)
                if name in ANALOG_UNITS:
                    high = max(spec.power_kw.kw(s) for s in State) if name == "power_kw" else ENERGY_RANGE_KWH
                    var = await add_analog(station, sid(signal), name, ns, value, ANALOG_UNITS[name], (0.0, high))
                elif name == "state":
                    var = await add_multistate(station, sid(signal), name, ns, value, self.codes.names)
                else:
                    var = await add_plain(station, sid(signal), name, ns, value, vtype)
                # a running PLC holds a Good value in every variable before anyone connects
                dv = ua.DataValue(ua.Variant(value, vtype), StatusCode=ua.StatusCode(ua.StatusCodes.Good),
                                  SourceTimestamp=now, ServerTimestamp=now)
                await server.write_attribute_value(var.nodeid, self._last.get(signal, dv))
                self._nodes[signal] = var.nodeid
                self._types[signal] = vtype

    def _initial(self, name: str, vtype: ua.VariantType) -> float | int | str:
        if name == "state":
            return self.codes.code(INITIAL_STATE)
        if name == "product":
            products = self.factory.product_names()
            return products[0] if products else ""
        return 0 if vtype == ua.VariantType.UInt32 else 0.0

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
        """Set ``signal`` to ``value`` with SourceTimestamp ``ts`` (epoch s, UTC; default the PLC's clock).

        Counters must be whole, non-negative numbers; ``product`` takes a string; ``state`` a twin
        State or its name (written as its code, ``plc_states.py``) or an integer written as it is
        (a code of the PLC's own, mapped or not).
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
        if signal.endswith("/state") and isinstance(value, (str, State)):
            value = self.codes.code(value)
        variant = ua.Variant(_coerce(signal, value, vtype), vtype)
        clock = self.clock()
        now = datetime.fromtimestamp(clock, tz=timezone.utc)
        source = datetime.fromtimestamp(clock if ts is None else ts, tz=timezone.utc)
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
            raise ValueError(f"{signal}: a counter or state code takes whole numbers 0..4294967295, got {value!r}")
        return int(value)
    return float(value)

