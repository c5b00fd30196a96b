"""Action Events (``POST /3/events``) of PACT Technical Specifications v3.0 (``spec/v3/openapi.yaml``,
path ``/3/events`` and the schemas BaseEvent, RequestCreatedEvent, RequestFulfilledEvent,
RequestRejectedEvent, PublishedEvent; ``spec/v3/index.md`` "Asynchronous Exchange").

Events are CloudEvents 1.0 in structured mode: a JSON object with ``specversion`` "1.0", ``id``,
``source``, ``type``, ``time`` (RFC 3339) and a ``data`` object. The four types a host MUST handle:

- ``org.wbcsd.pact.ProductFootprint.RequestCreatedEvent.3``: a customer asks for footprints by the
  v3 filters (twin/pact_api/filters.py; at least one criterion, ``comment`` free text). A request
  that cannot be handled at all (no criterion, a criterion of the wrong type, no events endpoint
  configured for the customer) is BadRequest at once; otherwise 200, and later a
  ``RequestFulfilledEvent`` with every matching footprint shared with the customer, or a
  ``RequestRejectedEvent`` (``NotFound``) when none matches, sent to the customer's events endpoint
  (twin/pact_api/delivery.py), never to the event's ``source`` (any client could name any URL there);
- ``RequestFulfilledEvent``, ``RequestRejectedEvent``, ``PublishedEvent`` from a supplier's host:
  checked, counted and logged (the plant does not keep its suppliers' footprints).

An unknown ``type`` is an invalid event: BadRequest (400), as the spec asks of an event it cannot
validate ("MUST validate the event and return an HTTP 4xx status code if the event is invalid").

``PublishedEvent`` notices go the other way: when footprints are published or deprecated
(repository changes), each customer with an events endpoint is sent the ids of the changed
footprints shared with it, once; a customer first configured is told of every footprint shared with
it so far.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from datetime import UTC, datetime

from .delivery import Courier, Recipient
from .errors import PactError, bad_request
from .filters import FilterError, parse_filters, parse_time

log = logging.getLogger("twin.pact_api.events")

_PREFIX = "org.wbcsd.pact.ProductFootprint."
REQUEST_CREATED = _PREFIX + "RequestCreatedEvent.3"
REQUEST_FULFILLED = _PREFIX + "RequestFulfilledEvent.3"
REQUEST_REJECTED = _PREFIX + "RequestRejectedEvent.3"
PUBLISHED = _PREFIX + "PublishedEvent.3"
TYPES = (REQUEST_CREATED, REQUEST_FULFILLED, REQUEST_REJECTED, PUBLISHED)
#: requests remembered to answer each once
MAX_REMEMBERED = 10_000


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{where}: expected a non-empty string")
    return value


def check_cloudevent(body: dict) -> str:
    """The event's type once its CloudEvents envelope is valid; BadRequest naming what is not."""
    if body.get("specversion") != "1.0":
        raise bad_request(f"specversion: expected \"1.0\" (CloudEvents 1.0), got {body.get('specversion')!r}")
    for name in ("id", "source", "type"):
        _text(body.get(name), name)
    try:
        parse_time("time", body.get("time"))
    except FilterError as exc:
        raise bad_request(str(exc)) from None
    if not isinstance(body.get("data"), dict):
        raise bad_request("data: expected an object")
    if body["type"] not in TYPES:
        raise bad_request(f"unknown event type {body['type'][:200]!r}; expected one of {', '.join(TYPES)}")
    return body["type"]


def _check_received(kind: str, data: dict) -> str:
    """Validate an event a supplier's host sent; a short description for the log."""
    if kind == PUBLISHED:
        ids = data.get("pfIds")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
            raise bad_request("data.pfIds: expected a non-empty list of footprint ids")
        return f"{len(ids)} footprint id(s)"
    _text(data.get("requestEventId"), "data.requestEventId")
    if kind == REQUEST_FULFILLED:
        pfs = data.get("pfs")
        if not isinstance(pfs, list) or not pfs or not all(isinstance(p, dict) for p in pfs):
            raise bad_request("data.pfs: expected a non-empty list of ProductFootprints")
        return f"{len(pfs)} footprint(s) for request {data['requestEventId'][:100]!r}"
    error = data.get("error")
    if not isinstance(error, dict):
        raise bad_request("data.error: expected an Error object (code, message)")
    _text(error.get("code"), "data.error.code")
    _text(error.get("message"), "data.error.message")
    return f"request {data['requestEventId'][:100]!r} rejected: {str(error['code'])[:50]}"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class EventHandler:
    """``await handler(body, client, repo, post)``: the Events action (None when accepted, else the
    PactError to answer). ``attach(app)`` runs the PublishedEvent notices with the app and stops
    them, and every delivery under way, on its cleanup."""

    def __init__(self, repo=None, registry=None, recipients: dict[str, Recipient] | None = None,
                 courier: Courier | None = None, *, source: str = "urn:factory-twin:pact-api",
                 poll_s: float = 5.0) -> None:
        self.repo, self.registry = repo, registry
        self.recipients = dict(recipients or {})
        if registry is not None:
            for cid in self.recipients:
                if registry.get(cid) is None:
                    raise ValueError(f"events endpoint configured for client {cid!r}, which is not a client")
        self.courier = courier or Courier()
        self.source, self.poll_s = source, poll_s
        self.received: Counter[str] = Counter()
        self._tasks: set[asyncio.Task] = set()
        self._telling: set[str] = set()
        self._answered: dict[tuple[str, str, str], None] = {}  # insertion order: the oldest go first
        self._loop_task: asyncio.Task | None = None

    @property
    def pending(self) -> int:
        """Deliveries under way (answers to requests, notices), retries included."""
        return len(self._tasks)

    async def __call__(self, body: dict, client, repo, post=None) -> PactError | None:
        try:
            kind = check_cloudevent(body)
            if kind == REQUEST_CREATED:
                self._accept_request(body, client, repo)
            else:
                what = _check_received(kind, body["data"])
                log.info("received %s from client %s: %s", kind.removeprefix(_PREFIX), client.client_id, what)
        except PactError as exc:
            self.received["rejected"] += 1
            return exc
        self.received[kind.removeprefix(_PREFIX)] += 1
        return None

    # -- RequestCreated: checked now, answered later ----------------------------------------------

    def _accept_request(self, body: dict, client, repo) -> None:
        data = dict(body["data"])
        comment = data.pop("comment", None)
        if comment is not None and not isinstance(comment, str):
            raise bad_request("data.comment: expected a string")
        if not data:
            raise bad_request("data: a RequestCreatedEvent needs at least one criterion "
                              "(productId, companyId, geography, classification, validOn, validAfter, validBefore, status)")
        try:
            parse_filters(data)
        except FilterError as exc:
            raise bad_request(f"data.{exc}") from None
        to = self.recipients.get(client.client_id)
        if to is None:
            raise bad_request(f"no events endpoint is configured for client {client.client_id!r}: "
                              "the answer to a request could not be sent")
        # one answer per request (the spec: a single RequestFulfilled per RequestCreated); a request
        # sent again (same source and id, CloudEvents' identity) is accepted and not answered twice
        key = (client.client_id, body["source"], body["id"])
        if key in self._answered:
            log.info("request %s of client %s already accepted: not answered again", body["id"][:100], client.client_id)
            return
        self._answered[key] = None
        while len(self._answered) > MAX_REMEMBERED:
            self._answered.pop(next(iter(self._answered)))
        self._spawn(self._answer(body["id"], data, client, repo, to))

    async def _answer(self, request_id: str, criteria: dict, client, repo, to: Recipient) -> None:
        docs, _ = await asyncio.to_thread(repo.list, client.client_id, criteria)
        docs = [d for d in docs if client.may_see(d)]
        if docs:
            event = self._event(REQUEST_FULFILLED, {"requestEventId": request_id, "pfs": docs})
        else:
            event = self._event(REQUEST_REJECTED, {"requestEventId": request_id, "error": {
                "code": "NotFound", "message": "no footprint shared with you matches the request's criteria"}})
        await self.courier.send(to, event)

    def _event(self, kind: str, data: dict) -> dict:
        return {"type": kind, "specversion": "1.0", "id": str(uuid.uuid4()), "source": self.source,
                "time": _now(), "data": data}

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            log.error("event delivery failed: %s: %s", type(exc).__name__, exc)

    # -- PublishedEvent notices ------------------------------------------------------------------

    async def notify_once(self) -> int:
        """One round of notices: for each customer not being told already, the changed footprints
        shared with it; returns the number of notices started."""
        started = 0
        for cid, to in self.recipients.items():
            if cid in self._telling:
                continue
            client = self.registry.get(cid)
            ids, seq = await asyncio.to_thread(self.repo.changes, cid)
            shown = []
            for pf_id in ids:
                doc = await asyncio.to_thread(self.repo.get, cid, pf_id)
                if doc is not None and client.may_see(doc):
                    shown.append(pf_id)
            if not shown:
                if ids:
                    await asyncio.to_thread(self.repo.mark_told, cid, seq)
                continue
            self._telling.add(cid)
            self._spawn(self._tell(cid, to, shown, seq))
            started += 1
        return started

    async def _tell(self, cid: str, to: Recipient, ids: list[str], seq: int) -> None:
        try:
            await self.courier.send(to, self._event(PUBLISHED, {"pfIds": ids}))
            # told, refused or abandoned after 72 h: either way these changes are done with
            await asyncio.to_thread(self.repo.mark_told, cid, seq)
        finally:
            self._telling.discard(cid)

    async def _notify_forever(self) -> None:
        while True:
            try:
                await self.notify_once()
            except Exception as exc:  # noqa: BLE001 - a bad round is logged; the next one tries again
                log.error("published notices: %s: %s", type(exc).__name__, exc)
            await asyncio.sleep(self.poll_s)

    def attach(self, app) -> None:
        async def _start(_app) -> None:
            if self.recipients and self.repo is not None:
                self._loop_task = asyncio.get_running_loop().create_task(self._notify_forever())

        async def _stop(_app) -> None:
            tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.courier.close()

        app.on_startup.append(_start)
        app.on_cleanup.append(_stop)


#: the handler ``create_app`` uses by default: no customer has an events endpoint, so a
#: RequestCreatedEvent is BadRequest; events from suppliers' hosts are accepted
handle_event = EventHandler()
