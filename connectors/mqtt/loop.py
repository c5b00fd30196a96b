"""paho inside the asyncio event loop, with back-pressure: no network thread of its own.

The event loop watches paho's socket (``add_reader``/``add_writer``) and calls ``loop_read`` /
``loop_write``, and ``loop_misc`` once a second for keep-alive. ``on_message`` runs in the loop,
so a Sample goes straight onto the twin's queue and paho acknowledges a QoS 1 message only once
its Sample is queued. When the queue is full the socket is no longer read until the twin has made
room, and the broker holds the rest (back-pressure, not loss). A paho network thread, as
``loop_start`` runs it, cost 40 % of throughput here: every Sample crossed threads and paho's
thread fought the event loop for the GIL at every socket call (bench/ingest.py).
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

import paho.mqtt.client as paho

from factory_models import Sample


class PahoInLoop:
    """Drives ``client`` from the running event loop and feeds ``out``. ``gone`` is set whenever
    the connection's socket closes; the owner counts ``messages`` in its ``on_message``."""

    #: messages read from the socket per turn of the event loop at most, so other tasks keep running
    READ_BURST = 200

    def __init__(self, client: paho.Client, out: asyncio.Queue):
        self.client = client
        self.out = out
        self.loop = asyncio.get_running_loop()
        self.gone = asyncio.Event()
        self.messages = 0  # on_message calls, to tell a read that found a message from one that did not
        self.stopping = False
        self._thread = threading.get_ident()
        self._overflow: deque[Sample] = deque()  # Samples waiting for room on the queue (socket paused)
        self._paused = False
        self._resumer: asyncio.Task | None = None
        self._sock = None  # the socket the event loop watches
        client.on_socket_open = lambda c, u, sock: self._in_loop(self._watch, sock)
        client.on_socket_close = lambda c, u, sock: self._in_loop(self._unwatch, sock)
        client.on_socket_register_write = lambda c, u, sock: self._in_loop(self._watch_write, sock)
        client.on_socket_unregister_write = lambda c, u, sock: self._in_loop(self._unwatch_write, sock)
        self._misc = self.loop.create_task(self._housekeeping())

    def emit(self, sample: Sample) -> None:
        """Put a Sample on the twin's queue; when it is full, hold it and stop reading the socket
        until the twin has taken it (the broker keeps the rest: back-pressure, not loss)."""
        if not self._overflow:
            try:
                self.out.put_nowait(sample)
                return
            except asyncio.QueueFull:
                pass
        self._overflow.append(sample)
        if not self._paused:
            self._paused = True
            if self._sock is not None and self._sock.fileno() >= 0:
                self.loop.remove_reader(self._sock)
            self._resumer = self.loop.create_task(self._resume())

    def stop(self) -> int:
        """Disconnect cleanly (the broker keeps a persistent session) and hand over what is held;
        the number of Samples the full queue could not take."""
        self.stopping = True
        self._misc.cancel()
        if self._resumer is not None:
            self._resumer.cancel()
        if self.client.socket() is not None:
            self.client.disconnect()
            self.client.loop_write()  # sends the DISCONNECT now and closes the socket
        self._unwatch()
        left, self._overflow = self._overflow, deque()
        unsent = 0
        for sample in left:
            try:
                self.out.put_nowait(sample)
            except asyncio.QueueFull:
                unsent += 1
        return unsent

    async def _housekeeping(self) -> None:
        """paho's keep-alive pings, and noticing a broker that stopped answering."""
        while True:
            await asyncio.sleep(1.0)
            if self.client.socket() is not None:
                self.client.loop_misc()

    def _in_loop(self, fn, *args) -> None:
        if threading.get_ident() == self._thread:
            fn(*args)
        else:  # paho calls back from the worker thread that connects
            self.loop.call_soon_threadsafe(fn, *args)

    def _watch(self, sock) -> None:
        if self.stopping:  # a connect that finished after the source was cancelled
            return
        self._sock = sock
        if not self._paused and sock.fileno() >= 0:
            self.loop.add_reader(sock, self._readable)

    def _unwatch(self, sock=None) -> None:
        sock = sock if sock is not None else self._sock
        if sock is None:
            return
        if sock.fileno() >= 0:
            self.loop.remove_reader(sock)
            self.loop.remove_writer(sock)
        if sock is self._sock:
            self._sock = None
        self.gone.set()

    def _watch_write(self, sock) -> None:
        if sock.fileno() >= 0 and self.client.socket() is sock:
            self.loop.add_writer(sock, self.client.loop_write)

    def _unwatch_write(self, sock) -> None:
        if sock.fileno() >= 0:
            self.loop.remove_writer(sock)

    def _readable(self) -> None:
        """Read what the socket holds, up to READ_BURST messages. paho acknowledges a QoS 1
        message when ``on_message`` returns, by which time its Sample is on the queue (or, when
        the queue is full, held here with the socket no longer read: back-pressure)."""
        client = self.client
        for _ in range(self.READ_BURST):
            before = self.messages
            client.loop_read()
            if self.messages == before or self._paused or client.socket() is None:
                break
        sock = client.socket()
        # TLS: records already decrypted into the SSL object do not wake the selector
        if sock is not None and not self._paused and hasattr(sock, "pending") and sock.pending():
            self.loop.call_soon(self._readable)

    async def _resume(self) -> None:
        while self._overflow:
            await self.out.put(self._overflow[0])
            self._overflow.popleft()
        self._paused = False
        self._resumer = None
        if self._sock is not None and self._sock.fileno() >= 0 and not self.stopping:
            self.loop.add_reader(self._sock, self._readable)
            self.loop.call_soon(self._readable)  # what arrived meanwhile is already in the socket
