"""Action ListFootprints (``GET /3/footprints``) and Action GetFootprint (``GET /3/footprints/{id}``)
of PACT Technical Specifications v3.0 (``spec/v3/openapi.yaml``, paths ``/3/footprints``).

What a client sees is what the data owner shared with it: the repository's ``shared_with`` (set when
the plant publishes) and the client's product ids or company ids (``--clients``); a footprint hidden
by either is absent from the list and AccessDenied (403) for GetFootprint, an unknown id NotFound
(404). Deprecated footprints are listed unless ``status`` asks otherwise (the spec's SHOULD).

Filters are the v3 ones (twin/pact_api/filters.py): several values of one filter OR-ed, different
filters AND-ed, a value of the wrong type BadRequest. ``x-...`` filters and the deprecated OData
``$filter`` are NotImplemented (400); any other unknown parameter is BadRequest.

Pagination (the spec's Pagination section): at most ``limit`` footprints (``limit`` 1 or more; at
most ``PAGE_MAX``, 100, whatever the limit) and, when more follow, a ``Link: <...>; rel="next"`` header
whose absolute https URI keeps the request's ``Host`` header, the same filters and limit, and the
next ``offset``. Offsets into the same ordered list (publication order) make a link good for as long
as nothing new is published.
"""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urlencode

from aiohttp import web

from .auth import CLIENT
from .errors import PactError, bad_request
from .filters import FILTERS, FilterError, parse_filters

PAGE_MAX = 100
#: a Host header we are willing to copy into a Link (name or [v6], optional port)
_HOST = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")


def _whole(name: str, values: list[str], minimum: int) -> int:
    if len(values) != 1:
        raise bad_request(f"{name}: give it once, got {len(values)} values")
    text = values[0].strip()
    if not text.isdigit() or int(text) < minimum:
        raise bad_request(f"{name}: expected a whole number {minimum} or more, got {values[0]!r}")
    return int(text)


def parse_query(query) -> tuple[dict[str, list[str]], int | None, int]:
    """(filters, limit, offset) of a ListFootprints query, or the spec's error for a wrong one."""
    filters: dict[str, list[str]] = {}
    limit, offset = None, 0
    for name in dict.fromkeys(query.keys()):
        values = query.getall(name)
        if name == "limit":
            limit = _whole("limit", values, 1)  # the spec: "the value MUST be a positive integer"
        elif name == "offset":
            offset = _whole("offset", values, 0)
        elif name in FILTERS:
            filters[name] = values
        elif name == "$filter":
            raise PactError("NotImplemented", "the OData $filter of v2 is deprecated in v3 and not implemented; "
                                              f"use the v3 filters {', '.join(FILTERS)}")
        elif name.lower().startswith("x-"):
            raise PactError("NotImplemented", f"the extension filter {name} is not implemented")
        else:
            raise bad_request(f"unknown query parameter {name!r}; the v3 filters are {', '.join(FILTERS)}")
    try:
        parse_filters(filters)  # types are checked before any read
    except FilterError as exc:
        raise bad_request(str(exc)) from None
    return filters, limit, offset


def next_link(request: web.Request, filters: dict[str, list[str]], limit: int, offset: int) -> str:
    host = request.headers.get("Host") or request.host
    if not _HOST.match(host):
        raise bad_request("the Host header is not a host name")
    pairs = [(k, v) for k, vs in filters.items() for v in vs] + [("limit", str(limit)), ("offset", str(offset))]
    return f'<https://{host}{request.path}?{urlencode(pairs)}>; rel="next"'


class FootprintsApi:
    """The two read actions over a ``FootprintRepository`` (called off the event loop: SQLite reads)."""

    def __init__(self, repo, page_max: int = PAGE_MAX) -> None:
        self.repo = repo
        self.page_max = page_max

    async def list(self, request: web.Request) -> web.Response:
        client = request[CLIENT]
        filters, limit, offset = parse_query(request.query)
        try:
            docs, _ = await asyncio.to_thread(self.repo.list, client.client_id, filters, None, 0)
        except FilterError as exc:
            raise bad_request(str(exc)) from None
        visible = [d for d in docs if client.may_see(d)]
        size = min(limit or self.page_max, self.page_max)
        page = visible[offset:offset + size]
        headers = {}
        if offset + size < len(visible):
            headers["Link"] = next_link(request, filters, size, offset + size)
        return web.json_response({"data": page}, headers=headers)

    async def get(self, request: web.Request) -> web.Response:
        client = request[CLIENT]
        pf_id = request.match_info["id"]
        doc = await asyncio.to_thread(self.repo.get, client.client_id, pf_id)
        if doc is None and not await asyncio.to_thread(self.repo.exists, pf_id):
            raise PactError("NotFound", f"footprint {pf_id[:100]!r} does not exist")
        if doc is None or not client.may_see(doc):
            raise PactError("AccessDenied", "access denied: this footprint is not shared with you")
        return web.json_response({"data": doc})
