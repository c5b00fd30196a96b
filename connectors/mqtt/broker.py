"""An embedded MQTT broker (amqtt) for the demo, so ``factory-twin demo`` needs no mosquitto.

It runs in-process on the caller's event loop, bound to 127.0.0.1, anonymous, without persistence:
good for a demonstration on one machine, not for a plant (use mosquitto or EMQX there). Port 0
picks a free port; ``port`` tells which after ``start()``.
"""

from __future__ import annotations

import logging

from amqtt.broker import Broker

log = logging.getLogger(__name__)


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self._broker: Broker | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    async def start(self) -> None:
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            # anonymous access only; no $SYS publisher and no per-packet logging (noise and CPU)
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        self._broker = Broker(config)
        await self._broker.start()
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
