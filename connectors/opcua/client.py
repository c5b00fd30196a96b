"""OPC UA source: subscriptions on a server's nodes, turned into Samples, kept alive across restarts.

One ``OpcUaClient`` per ``opcua:`` entry of the mapping (connectors/opcua/config.py). Its ``run``
is a supervisor: connect, resolve every ``nsu=`` id against the server's *current* namespace array
and expand browse patterns, create the monitored items in batches spread over as many subscriptions
as ``max_items_per_subscription`` needs (telegraf #17874, #14568), forward notifications, and on any
loss tear everything down and start again with exponential backoff. So
a server restart that renumbers namespaces or drops subscriptions (telegraf #19186, opcua-asyncio
#1034, node-red-contrib-opcua #478) costs a gap, which is reported in-band as
``connection/<source>`` "down" then "up" Samples, never a silent stall.

Quality comes from the StatusCode severity, its top two bits (OPC UA Part 4 section 7.39): 00 good,
01 uncertain, 10 and 11 bad. Value, timestamp and deadband rules are connectors/transform.py's,
shared with every source. A Bad value is forwarded with quality BAD so the twin counts it and
keeps it out of KPIs; a node the server refuses (BadNodeIdUnknown ...) is counted and skipped
without touching its siblings (telegraf #10849), also when the server refuses a whole
CreateMonitoredItems request (the batch is split until the failing node is alone) or a whole
subscription (its nodes are counted, the other subscriptions run on). Security refusals (pinned
certificate mismatch, rejected user) are not retried: the source stops with a clear error, failing
closed. Opening one connection, and reading a notification's StatusCode and timestamps, is
session.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from pathlib import Path
from typing import Any

from asyncua import Client, ua

from factory_models import ConfigError, Factory, Quality, Sample
from factory_models.signals import known_signals

from ..source import Backoff, DeadLetterLog, SourceStats, connection_sample, dead_letter_path
from ..transform import DEADBAND, Deadband, PathPattern, Rules, Transform, render, template_signals, to_sample
from .address_space import walk
from .config import OpcUaNode, OpcUaSource
from .security import CertificatePinError
from .session import OpcUaRefused, epoch_s, open_client, quality_of, resolve_node_id
from .subscribe import subscribe

__all__ = ["OpcUaClient", "OpcUaRefused", "epoch_s", "open_client", "opcua_sources", "quality_of", "resolve_node_id"]

log = logging.getLogger(__name__)

_GOOD, _BAD = Quality.GOOD, Quality.BAD


class _Item:
    """What a monitored item feeds: the signal and its rules, and the node id text for messages."""

    __slots__ = ("signal", "text", "rules")

    def __init__(self, signal: str, transform: Transform, text: str):
        self.signal = signal
        self.text = text
        self.rules = Rules(signal, transform)


class OpcUaClient:
    """A Source (connectors/source.py) reading one OPC UA server through one or more subscriptions
    (``subscription.max_items_per_subscription`` items each at most).

    ``site`` fills ``{site}`` in browse patterns; ``known`` (from ``known_signals(factory)``)
    rejects browsed leaves that name no signal of the twin; ``dead_letter`` is the JSON-lines file
    for rejections (default: ``factory-twin-deadletter-<name>.jsonl`` in the temp directory).
    Backoff doubles from ``reconnect_min_s`` to ``reconnect_max_s`` with jitter, and resets on
    each successful connection: with the 3 s cap, samples flow again within about 4 s of a
    server's return however long it was away (issue 12 saw 34 s with a 30 s cap).
    """

    def __init__(
        self,
        config: OpcUaSource,
        site: str,
        known: set[str] | None = None,
        dead_letter: str | Path | None = None,
        *,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 3.0,
        timeout_s: float = 4.0,
        watchdog_s: float = 1.0,
    ):
        self.config = config
        self.name = config.name
        self.site = site
        self.known = frozenset(known) if known is not None else None
        self.dead_letter = DeadLetterLog.for_source(config, dead_letter)
        self._stats = SourceStats(self.name, self.dead_letter)
        self._backoff = Backoff(reconnect_min_s, reconnect_max_s)
        self.timeout_s = timeout_s
        self.watchdog_s = watchdog_s
        self._deadband = Deadband()
        # one node may feed several signals (e.g. a state also mapped to a product): a list each
        self._items: dict[ua.NodeId, list[_Item]] = {}
        self._signals: set[str] = {n.signal for n in config.nodes if n.node is not None}
        if self.known:
            for entry in config.nodes:
                if entry.browse is not None:
                    # a PLC's stations are not the site's meters: a gap here must not blank them
                    self._signals |= template_signals(entry.signal_template, site, self.known, meters=False)
        self._extra: dict[str, Any] = {
            "bad": 0,
            "uncertain": 0,
            "subscriptions": 0,
            "monitored_items": 0,
            "failed_nodes": 0,
            "gaps": 0,
            "last_gap_s": None,
            "last_error": None,
            "connect_failures": 0,
        }
        self._last_logged: str | None = None  # the failure last logged, so a server away logs once

    # --- Source interface -----------------------------------------------------------------------

    def stats(self) -> dict:
        """The shared Source counts, plus Bad/Uncertain values, subscriptions, monitored and refused
        items (of the current connection, or the last one while down), gaps."""
        return {**self._stats.as_dict(), **self._extra, "unmapped_by_signal": dict(self._deadband.unmapped),
                "counter_wraps": dict(self._deadband.unwrap.wraps)}

    def signals(self) -> set[str]:
        return set(self._signals)

    def delivered_signals(self) -> set[str]:
        """The signals a Sample was put on the queue for (``signals() - this``: never received)."""
        return set(self._stats.delivered)

    async def run(self, out: asyncio.Queue) -> None:
        """Put Samples on ``out`` until cancelled, reconnecting by itself.

        Raises CertificatePinError, OpcUaRefused or ConfigError (a credential variable or file
        missing) when a retry cannot help; every other failure is retried with backoff.
        """
        try:
            await self._supervise(out)
        finally:
            self._stats.connected = False

    async def _supervise(self, out: asyncio.Queue) -> None:
        down_since: float | None = None
        while True:
            failure: Exception | None = None
            try:
                await self._session(out, down_since)
            except asyncio.CancelledError:
                raise
            except (CertificatePinError, OpcUaRefused, ConfigError) as exc:
                self._extra["last_error"] = str(exc)
                log.error("%s: %s", self.name, exc)
                raise
            except Exception as exc:  # any transport or server error: back off and retry
                failure = exc
            if self._stats.connected:
                self._lost(failure)
                self._stats.connected = False
                sample = connection_sample(self.name, False)
                down_since = sample.ts
                await out.put(sample)
            else:
                self._attempt_failed(failure, ever=down_since is not None)
            await self._backoff.sleep()

    def _lost(self, failure: Exception | None) -> None:
        """A working connection ended: one WARNING line (asyncua's own tracebacks of it are
        quietened in session.py; the attempts that follow while the server is away log at DEBUG)."""
        why = _describe(failure) if failure is not None else self._extra["last_error"] or "the session ended"
        self._extra["last_error"] = self._last_logged = why
        log.warning("%s: lost the connection to %s (%s); reconnecting every %g s at most",
                    self.name, self.config.endpoint, why, self._backoff.max_s)

    def _attempt_failed(self, failure: Exception | None, *, ever: bool) -> None:
        """A connection attempt failed: counted; logged at WARNING before the first connection (once
        per reason), at DEBUG while reconnecting (the loss was the one line)."""
        why = _describe(failure) if failure is not None else "the server closed the session while it was set up"
        self._extra["connect_failures"] += 1
        self._extra["last_error"] = why
        if ever or why == self._last_logged:
            log.debug("%s: cannot connect to %s: %s", self.name, self.config.endpoint, why)
        else:
            log.warning("%s: cannot connect to %s: %s; retrying", self.name, self.config.endpoint, why)
        self._last_logged = why

    # --- one connection -------------------------------------------------------------------------

    async def _session(self, out: asyncio.Queue, down_since: float | None) -> None:
        """Connect, subscribe, forward until the connection is lost. ``down_since``: when the
        previous connection was lost (None before the first one)."""
        username, password = self.config.resolve_credentials()
        client = await open_client(
            self.config.endpoint,
            self.config.security,
            username=username,
            password=password,
            source_name=self.name,
            timeout_s=self.timeout_s,
            watchdog_s=self.watchdog_s,
        )
        lost = asyncio.Event()

        async def on_lost(exc: Exception) -> None:
            self._extra["last_error"] = _describe(exc)
            lost.set()

        client.connection_lost_callback = on_lost
        try:
            self._items = await self._resolve(client)
            up = connection_sample(self.name, True)
            self._stats.connected = True
            self._extra["last_error"] = self._last_logged = None
            self._backoff.reset()  # a working server: the next loss starts at reconnect_min_s again
            if down_since is not None:
                self._stats.reconnects += 1
                self._extra["gaps"] += 1
                self._extra["last_gap_s"] = up.ts - down_since
            await out.put(up)
            # after a gap every value is news, even one inside the deadband of the last one seen
            self._deadband.forget()
            subs = await self._subscribe(client, self._items)
            if down_since is not None:
                log.info("%s: reconnected to %s after %.1f s", self.name, self.config.endpoint, up.ts - down_since)
            # one forwarding task per subscription: each reads its own notification queue in order
            pumps = [asyncio.create_task(self._pump(sub, out)) for sub in subs]
            watch = asyncio.create_task(lost.wait())
            try:
                done, _ = await asyncio.wait({*pumps, watch}, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    if task is not watch:
                        task.result()  # re-raise what stopped it
            finally:
                for task in (*pumps, watch):
                    task.cancel()
                await asyncio.gather(*pumps, watch, return_exceptions=True)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), self.timeout_s)

    async def _resolve(self, client: Client) -> dict[ua.NodeId, list[_Item]]:
        """Every node to monitor and what it feeds, ids resolved against the namespace array now.

        A node named twice for the same signal (a fixed entry and a browse match) feeds it once,
        with the first entry's transform."""
        namespaces = await client.get_namespace_array()
        items: dict[ua.NodeId, list[_Item]] = {}

        def add(nodeid: ua.NodeId, item: _Item) -> None:
            feeds = items.setdefault(nodeid, [])
            if all(i.signal != item.signal for i in feeds):
                feeds.append(item)

        for entry in self.config.nodes:
            transform = entry.transform(self.config.defaults)
            if entry.node is not None:
                try:
                    nodeid = resolve_node_id(entry.node, namespaces)
                except (KeyError, ValueError) as exc:
                    self._reject("node_unresolved", entry.signal, f"{entry.node}: {exc}")
                    continue
                add(nodeid, _Item(entry.signal, transform, entry.node))
            else:
                for nodeid, signal, text in await self._expand(client, entry, namespaces):
                    add(nodeid, _Item(signal, transform, text))
        # from now on exactly what is subscribed, replacing the guess made before the first browse
        self._signals = {n.signal for n in self.config.nodes if n.node is not None}
        self._signals |= {i.signal for feeds in items.values() for i in feeds}
        return items

    async def _expand(self, client: Client, entry: OpcUaNode, namespaces: list[str]) -> list[tuple[ua.NodeId, str, str]]:
        pattern = PathPattern(entry.browse, fixed={"site": self.site})
        found = []
        name_of = entry.twin_name if entry.rename or entry.case else None
        for leaf in await walk(client, pattern, name_of):
            signal = render(entry.signal_template, {**leaf.values, "site": self.site})
            if self.known is not None and signal not in self.known:
                self._reject("unknown_signal", signal, f"browse {entry.browse!r} matched {leaf.path}")
                continue
            found.append((leaf.nodeid, signal, leaf.expanded_id(namespaces)))
        if not found:
            log.warning("%s: browse pattern %r matched no variable", self.name, entry.browse)
        return found

    async def _subscribe(self, client: Client, items: dict[ua.NodeId, list[_Item]]) -> list:
        done = await subscribe(client, items, self.config.subscription, self._reject, self.name)
        self._extra["subscriptions"] = len(done.subscriptions)
        self._extra["monitored_items"] = done.monitored
        self._extra["failed_nodes"] = done.failed
        log.info("%s: monitoring %d items in %d subscriptions (%d refused) on %s",
                 self.name, done.monitored, len(done.subscriptions), done.failed, self.config.endpoint)
        return done.subscriptions

    async def _pump(self, sub, out: asyncio.Queue) -> None:
        items = self._items
        # an int client handle per monitored item: a cheaper key than hashing the NodeId per value
        by_handle: dict[int, list[_Item] | None] = {}
        stats = self._stats
        async for event in sub:
            data = getattr(event, "data", None)
            if data is None:  # a subscription status change (e.g. BadTimeout): the watchdog acts on it
                status = getattr(getattr(event, "notification", None), "Status", None)
                log.info("%s: subscription status %s", self.name, status)
                continue
            handle = data.monitored_item.ClientHandle
            feeds = by_handle.get(handle)
            if feeds is None:
                feeds = by_handle[handle] = items.get(event.node.nodeid)
                if feeds is None:
                    continue
            dv = data.monitored_item.Value
            stats.received += 1
            for item in feeds:
                try:
                    sample = self._sample(item, dv)
                except Exception as exc:  # a bug here must cost this value, counted, never its siblings
                    log.exception("%s: unexpected error on %s", self.name, item.text)
                    self._reject("internal_error", item.signal, f"{item.text}: {exc!r}"[:200])
                    continue
                if sample is not None:
                    try:
                        out.put_nowait(sample)
                    except asyncio.QueueFull:
                        await out.put(sample)  # back-pressure: asyncua buffers meanwhile, nothing dropped
                    stats.samples += 1
                    stats.delivered.add(item.signal)

    # --- one value ------------------------------------------------------------------------------

    def _sample(self, item: _Item, dv: ua.DataValue | None) -> Sample | None:
        """The Sample of one notification, or None when it is rejected (counted) or inside the deadband."""
        if dv is None:
            self._reject("no_value", item.signal, item.text)
            return None
        status = dv.StatusCode
        quality = _GOOD if status is None or status.value == 0 else quality_of(status)
        raw = dv.Value.Value if dv.Value is not None else None
        out = to_sample(item.rules, raw, quality, epoch_s(dv.SourceTimestamp), epoch_s(dv.ServerTimestamp),
                        time.time(), self._deadband)
        if type(out) is Sample:
            if quality is not _GOOD:
                self._extra["bad" if quality is _BAD else "uncertain"] += 1
            return out
        if out is DEADBAND:
            self._stats.suppressed += 1
        else:
            self._reject(out.reason, item.signal, f"{item.text}: {out.detail}")
            return out.sample  # unmapped_value: counted, and the station is UNKNOWN from now on
        return None

    def _reject(self, reason: str, signal: str | None, detail: str) -> None:
        self._stats.reject(reason, detail, where=signal)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def opcua_sources(mapping, factory: Factory, dead_letter_dir: str | Path | None = None) -> list[OpcUaClient]:
    """One OpcUaClient per ``opcua`` entry of ``mapping`` (a loaded Mapping); browsed signals are
    checked against ``factory``; dead letters as ``source.dead_letter_path`` says."""
    known = known_signals(factory)
    return [OpcUaClient(cfg, mapping.site, known, dead_letter_path(cfg, dead_letter_dir)) for cfg in mapping.opcua]
