"""Errors of the PACT v3 API in the specification's shape: ``{"code": ..., "message": ...}`` with the
HTTP status the code goes with, and the middleware that turns every failure into one.

Codes and statuses (PACT Technical Specifications v3.0, "Error responses", error codes table, and
the ``Error`` schema of ``spec/v3/openapi.yaml``): BadRequest 400, AccessDenied 403, TokenExpired 401,
NotImplemented 400, InternalError 500. For an unknown footprint the v3 OpenAPI ``Error`` enum names
the code ``NotFound`` (the table of the v2 line called it ``NoSuchFootprint``) and the official
conformance tool (wbcsd/pact-conformance-service, V3 test case 8) accepts ``NotFound`` or
``BadRequest`` only, so ``NotFound`` with 404 it is.

A client's mistake is never a 500 nor a traceback: aiohttp's own HTTP errors (unknown route, wrong
method, body too large) become the spec's error; only a failure of the server itself is an
``InternalError`` 500, logged as one line without the request's headers or body.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

from aiohttp import web

log = logging.getLogger("twin.pact_api")

STATUS = {
    "BadRequest": 400,
    "AccessDenied": 403,
    "TokenExpired": 401,
    "NotFound": 404,
    "NotImplemented": 400,
    "InternalError": 500,
    # not a code of the spec (it defines none for rate limiting): the status says what it is
    "TooManyRequests": 429,
}


class PactError(Exception):
    """An error response of the API: ``code`` from ``STATUS``, a one-line ``message``, extra headers."""

    def __init__(self, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        if code not in STATUS:
            raise ValueError(f"unknown PACT error code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    @property
    def status(self) -> int:
        return STATUS[self.code]


def error_response(code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=STATUS[code], text=json.dumps({"code": code, "message": message}),
                        content_type="application/json", headers=dict(headers or {}))


def bad_request(message: str) -> PactError:
    return PactError("BadRequest", message)


def _from_http(exc: web.HTTPException, request: web.Request) -> web.Response:
    """aiohttp's own errors (raised before or around a handler) in the spec's shape."""
    if exc.status == 404:
        return error_response("NotFound", f"no such resource: {request.path}")
    if exc.status == 405:
        return error_response("BadRequest", f"method {request.method} is not allowed on {request.path}",
                              {"Allow": exc.headers.get("Allow", "")})
    if exc.status == 413:
        return error_response("BadRequest", "request body too large")
    if 400 <= exc.status < 500:
        return error_response("BadRequest", exc.reason or "bad request")
    return error_response("InternalError", "internal error")


@web.middleware
async def error_middleware(request: web.Request, handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except PactError as exc:
        return error_response(exc.code, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and the like are answers, not errors
        return _from_http(exc, request)
    except Exception as exc:  # noqa: BLE001 - the catch-all the API promises: one line, the spec's error
        log.error("%s %s failed: %s: %s", request.method, request.path, type(exc).__name__, exc)
        return error_response("InternalError", "internal error")
