"""An embedded MQTT broker (amqtt) for the demo, so ``factory-twin demo`` needs no mosquitto.

It runs in-process on the caller's event loop, bound to 127.0.0.1, without passwords: good for a
demonstration on one machine, not for a plant (use mosquitto or EMQX there). The demo binds the
port its configuration names (1883, MQTT's registered port, by default); one already taken is one
``PortInUse`` line naming the option to change, not amqtt's traceback. Port 0 (tests) picks a free
port; ``port`` and ``url`` tell which after ``start()``.

A persistent session (QoS 1, ``clean_session=False``) loses nothing while its client is away:
amqtt queues such a client's messages without a bound, but only for a client it did not let in
as *anonymous* (it forgets anonymous sessions at once). So every client is let in by
``LoopbackAuth`` as a known client instead of by amqtt's anonymous plugin. The queues live in
memory: a restart of the demo is a new plant (a new model and new meters), nothing to carry over.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from amqtt.broker import Broker
from amqtt.errors import BrokerError
from amqtt.plugins.base import BaseAuthPlugin

from connectors.ports import check_port, port_in_use

log = logging.getLogger(__name__)


class LoopbackAuth(BaseAuthPlugin):
    """Lets every client of the loopback broker in as a known client, so its persistent session
    (subscriptions and queued QoS 1 messages) is kept while it is away."""

    @dataclass
    class Config:
        pass

    async def authenticate(self, *, session) -> bool:
        return True


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, port_option: str = "--broker-port"):
        self.host = host
        self.port = port
        self.port_option = port_option  # what the PortInUse line tells to change
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        if self.port:
            check_port(self.host, self.port, "embedded MQTT broker", self.port_option)
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # every client let in and its session kept; no $SYS publisher and no per-packet logging
            "plugins": {f"{__name__}.LoopbackAuth": {}},
        }
        self._broker = Broker(config)
        try:
            await self._broker.start()
        except BrokerError as exc:  # taken between the check and the bind
            self._broker = None
            cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else OSError(str(exc))
            raise port_in_use("embedded MQTT broker", self.host, self.port, self.port_option, cause) from None
        if self.port == 0:
            # amqtt keeps its asyncio servers per listener; read back the port the OS chose
            server = self._broker._servers["default"].instance
            self.port = server.sockets[0].getsockname()[1]
        log.info("embedded MQTT broker listening on %s", self.url)

    async def stop(self) -> None:
        if self._broker is not None:
            await self._broker.shutdown()
            self._broker = None

    async def __aenter__(self) -> "EmbeddedBroker":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()
