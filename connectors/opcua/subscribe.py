"""Monitoring a source's nodes: subscriptions of bounded size, monitored items in batches.

Servers and clients struggle near 1,000 items in one subscription (telegraf #17874, #14568), so the
items are spread over as many subscriptions as ``max_items_per_subscription`` needs, and created
``batch_size`` per CreateMonitoredItems request. A node the server refuses is counted and skipped
without touching its siblings (telegraf #10849), also when the server refuses a whole request (the
batch is split until the failing node is alone) or a whole subscription (its nodes are counted, the
other subscriptions run on). A refusal that means the session is gone ends the connection instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

from asyncua import Client, ua
from asyncua.ua import uaerrors

from .config import Subscription
from .session import SESSION_GONE, status_name

log = logging.getLogger(__name__)

#: reject(reason, signal, detail): how a refused node is counted (SourceStats.reject of the source)
Reject = Callable[[str, str | None, str], None]


@dataclass
class Monitored:
    """The subscriptions that carry the monitored items, and how many items were refused."""

    subscriptions: list = field(default_factory=list)
    monitored: int = 0
    failed: int = 0


def parameters(cfg: Subscription) -> ua.CreateSubscriptionParameters:
    # a keep-alive about every 10 s when nothing changes, and a lifetime of six of them, so a
    # subscription left behind by a dead client is reclaimed within a minute (Part 4 5.13.2)
    keepalive = max(3, math.ceil(10_000 / cfg.publishing_interval_ms))
    return ua.CreateSubscriptionParameters(
        RequestedPublishingInterval=cfg.publishing_interval_ms,
        RequestedLifetimeCount=6 * keepalive,
        RequestedMaxKeepAliveCount=keepalive,
        MaxNotificationsPerPublish=0,
        PublishingEnabled=True,
        Priority=0,
    )


async def subscribe(client: Client, items: dict, cfg: Subscription, reject: Reject, source: str) -> Monitored:
    """Subscriptions holding every node of ``items`` (node id -> the items it feeds, each with
    ``signal`` and ``text``), at most ``max_items_per_subscription`` each, all with the configured
    intervals. Refused nodes are counted through ``reject`` and skipped."""
    params = parameters(cfg)
    pending = list(items.items())
    per_sub = cfg.max_items_per_subscription
    out = Monitored()
    for first in range(0, len(pending), per_sub):
        share = pending[first : first + per_sub]
        try:
            # iterator mode with an unbounded queue: asyncua never drops a notification, and one
            # task per subscription forwards them in order (no task per notification)
            sub = await client.create_subscription(params, None, queue_maxsize=0)
        except uaerrors.UaStatusCodeError as exc:
            name = status_name(exc)
            if name.startswith(SESSION_GONE):
                raise
            # e.g. BadTooManySubscriptions: these nodes are lost until the next connection, the
            # other subscriptions run on
            log.error("%s: the server refused subscription %d of %d (%s); %d nodes not monitored",
                      source, first // per_sub + 1, math.ceil(len(pending) / per_sub), name, len(share))
            for _, feeds in share:
                for item in feeds:
                    reject("subscription_refused", item.signal, f"{item.text}: {name}")
            out.failed += len(share)
            continue
        out.subscriptions.append(sub)
        for start in range(0, len(share), cfg.batch_size):
            ok, bad = await _monitor(client, sub, share[start : start + cfg.batch_size], cfg, reject)
            out.monitored += ok
            out.failed += bad
    return out


async def _monitor(client: Client, sub, batch: list, cfg: Subscription, reject: Reject) -> tuple[int, int]:
    """Create the monitored items of ``batch`` in ``sub``: (monitored, refused). A node the server
    refuses is counted alone; a request the server refuses as a whole (an operation limit, one node
    it chokes on) is split in halves until the refusal is down to single nodes."""
    nodes = [client.get_node(nodeid) for nodeid, _ in batch]
    try:
        results = await sub.subscribe_data_change(nodes, queuesize=cfg.queue_size,
                                                  sampling_interval=cfg.sampling_interval_ms)
    except uaerrors.UaStatusCodeError as exc:
        name = status_name(exc)
        if name.startswith(SESSION_GONE):
            raise
        if len(batch) > 1:
            half = len(batch) // 2
            a = await _monitor(client, sub, batch[:half], cfg, reject)
            b = await _monitor(client, sub, batch[half:], cfg, reject)
            return a[0] + b[0], a[1] + b[1]
        results = [ua.StatusCode(getattr(exc, "code", ua.StatusCodes.Bad))]
    monitored = failed = 0
    for (_, feeds), result in zip(batch, results):
        if isinstance(result, ua.StatusCode):
            failed += 1
            for item in feeds:
                reject("node_failed", item.signal, f"{item.text}: {result.name}")
        else:
            monitored += 1
    return monitored, failed
