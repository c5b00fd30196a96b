"""One POST to InfluxDB's ``/api/v2/write`` over a keep-alive connection, and what its answer means.

The sender POSTs each batch itself, with the body the spool already holds: no re-encoding, no
per-point work. (influxdb-client's synchronous API went through its generated request layer on
each call; the URL, headers and token are the same.)
"""

from __future__ import annotations

import gzip as gzip_module
import http.client
import json
import time
import urllib.parse
from email.utils import parsedate_to_datetime

from .config import InfluxConfig


class Transient(Exception):
    """The server or the network failed in a way that a later retry may fix."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def retry_after_s(value: str | None) -> float | None:
    """A ``Retry-After`` header (RFC 9110 section 10.2.3: delay seconds or an HTTP date) in seconds."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def server_message(body: bytes | None, reason: str | None) -> str:
    """The ``message`` of an InfluxDB JSON error body, else the body, else the HTTP reason."""
    text = (body or b"").decode("utf-8", "replace").strip()
    if text:
        try:
            return str(json.loads(text).get("message", text))
        except (ValueError, AttributeError):
            return text[:1000]
    return reason or ""


class WriteClient:
    """POSTs line protocol to one server; the token lives only in its headers, never in a log."""

    def __init__(self, config: InfluxConfig, token: str | None) -> None:
        self.gzip = config.gzip
        self.timeout_s = config.timeout_s
        self._headers = {"Content-Type": "text/plain; charset=utf-8", "Accept": "application/json",
                         "User-Agent": "factory-twin-influx"}
        if config.gzip:
            self._headers["Content-Encoding"] = "gzip"
        if token:
            self._headers["Authorization"] = f"Token {token}"
        query = urllib.parse.urlencode({"org": config.org, "bucket": config.bucket, "precision": config.precision})
        url = urllib.parse.urlsplit(config.url)
        self._target = f"{url.path.rstrip('/')}/api/v2/write?{query}"
        self._conn_args = (url.scheme, url.hostname, url.port)
        self._conn: http.client.HTTPConnection | None = None  # one keep-alive connection (one sender)

    def post(self, body: bytes) -> tuple[int | None, str, float | None]:
        """One POST; (None, "", None) on 2xx, else (status, server message, Retry-After seconds).

        Headers and body leave in one ``send`` (http.client joins them for a bytes body) on a
        keep-alive connection. A connection the server closed while idle fails on reuse: that is
        retried at once on a new connection (a write is idempotent); any other failure raises
        ``Transient``.
        """
        if self.gzip:
            body = gzip_module.compress(body, compresslevel=1)
        for fresh in (self._conn is None, True):
            if self._conn is None:
                scheme, host, port = self._conn_args
                cls = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
                self._conn = cls(host, port, timeout=self.timeout_s)
            try:
                self._conn.request("POST", self._target, body=body, headers=self._headers)
                r = self._conn.getresponse()
                data = r.read()
            except Exception as e:  # noqa: BLE001 - refused, reset, timeout: all transient
                self._conn.close()
                self._conn = None
                if fresh or isinstance(e, TimeoutError):
                    raise Transient(f"{type(e).__name__}: {e}") from None
                continue
            if r.will_close:
                self._conn.close()
                self._conn = None
            break
        if 200 <= r.status < 300:
            return None, "", None
        return r.status, server_message(data, r.reason), retry_after_s(r.getheader("Retry-After"))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
