"""The outermost layer of the app, in plain ASGI (no per-request objects beyond what it logs): a
request id, the body-size limit, the metrics and one JSON log line per request.

The log line: request id, tenant (once known), method, route template, status, latency, plus what
the route added (retrieval and generation times of POST /explain). Never a header, a key or a body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from costlake.api.metrics import LATENCY, REQUESTS
from costlake.api.problems import PROBLEM, TITLES, TYPES
from costlake.api.routes.page import HEADERS as PAGE_HEADERS

log = logging.getLogger("costlake.api.access")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def configure_access_log() -> None:
    """The request log: one JSON object per line on stderr, whatever `--log-format` says for the rest
    (a request log is read by machines), at INFO whatever `--log-level` says."""
    import sys

    from costlake.logs import JsonFormatter, RedactingFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter())
    for old in list(log.handlers):
        log.removeHandler(old)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False


MAX_HEADER_BYTES = 16 * 1024  # all request headers together; more is a 431
_BODY_METHODS = {"POST", "PUT", "PATCH"}


class ServiceMiddleware:
    def __init__(self, app: ASGI, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        given = _header(scope, b"x-request-id")
        request_id = given if given and _REQUEST_ID.fullmatch(given) else uuid.uuid4().hex
        info: dict[str, Any] = {}
        scope["costlake"] = info
        sent = {"status": 500, "started": False}
        try:
            refused = self._refusal(scope)
            if (
                refused is None
                and _header(scope, b"content-length") is None
                and scope["method"] in _BODY_METHODS
            ):
                # A body of unknown length (chunked) is read here first, up to the limit, then handed on.
                body = await _read_body(receive, self.max_body)
                if body is None:
                    refused = (413, "too-large", f"the request body is larger than {self.max_body} bytes")
                else:
                    receive = _replay(body, receive)
            if refused is not None:
                sent["status"] = refused[0]
                await _refuse(send, *refused, request_id)
                return

            head = scope["method"] == "HEAD"  # answered as a GET without its body (RFC 9110, 9.3.2)
            inner = {**scope, "method": "GET"} if head else scope
            try:
                await self.app(inner, receive, _sender(send, scope["path"], sent, request_id, head))
            finally:
                scope.setdefault("route", inner.get("route"))  # what the request log names
        except asyncio.CancelledError:  # still running when a stop's grace ran out (api/server.py)
            await _cancelled(send, sent, request_id)
        except Exception as exc:  # noqa: BLE001 - the one place an unexpected error becomes a 500
            extra = {"request_id": request_id}
            if not sent["started"] and _busy(exc):  # another process holds the catalog: try again soon
                log.warning("the catalog database is busy: %s", exc, extra=extra)
                sent["status"] = 503
                detail = "the lake's catalog is busy with a commit; retry in a moment"
                await _refuse(send, 503, "busy", detail, request_id, retry_after=1)
                return
            log.error("unexpected error: %s", type(exc).__name__, exc_info=exc, extra=extra)
            if not sent["started"]:  # answered here, so the connection stays usable and the id is in it
                sent["status"] = 500
                detail = "the request failed; the server's log has the details"
                await _refuse(send, 500, "internal", detail, request_id)
        finally:
            self._done(scope, info, int(sent["status"]), started, request_id)

    def _refusal(self, scope: Scope) -> tuple[int, str, str] | None:
        """(status, type, detail) of a request refused before it is read, or None."""
        size = sum(len(k) + len(v) for k, v in scope.get("headers", ()))
        if size > MAX_HEADER_BYTES:
            return 431, "headers-too-large", f"the request headers are larger than {MAX_HEADER_BYTES} bytes"
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            return 413, "too-large", f"the request body is larger than {self.max_body} bytes"
        return None

    def _done(self, scope: Scope, info: dict[str, Any], status: int, started: float, request_id: str) -> None:
        seconds = time.perf_counter() - started
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        method = scope.get("method", "")
        REQUESTS.labels(method, route, str(status)).inc()
        LATENCY.labels(method, route).observe(seconds)
        fields = {
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "latency_ms": round(seconds * 1000, 2),
            **info,
        }
        log.info("%s %s %s", method, route, status, extra=fields)


_PAGE_HEADERS = [(k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()]


def _on_page(path: str) -> bool:
    """Whether `path` is the page's (`/`, `/static` and below), whose answers carry its headers."""
    return path == "/" or path == "/static" or path.startswith("/static/")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _busy(exc: BaseException) -> bool:
    """Whether `exc` (sqlite3's, or SQLAlchemy's around it) is a database locked by another process."""
    seen: BaseException | None = exc
    while seen is not None:
        if "database is locked" in str(seen) or "database is busy" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _sender(send: Send, path: str, sent: dict[str, Any], request_id: str, head: bool) -> Send:
    """`send` with the service's headers on the answer's start (noted in `sent`), and no body for a
    HEAD request."""

    async def sending(message: Message) -> None:
        if head and message["type"] == "http.response.body":
            message = {**message, "body": b""}
        if message["type"] == "http.response.start":
            sent["status"], sent["started"] = message["status"], True
            headers = message.setdefault("headers", [])
            headers.append((b"x-request-id", request_id.encode()))
            if _on_page(path):  # any answer there, a 404 or a 405 too: the page's policy
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in _PAGE_HEADERS if k not in present]
            if not any(k.lower() == b"cache-control" for k, _ in headers):
                headers.append((b"cache-control", b"no-store"))  # a tenant's data stays out of caches
        await send(message)

    return sending


async def _cancelled(send: Send, sent: dict[str, Any], request_id: str) -> None:
    """A request cancelled when a stop's grace ran out: one line, and a 503 if nothing was sent yet."""
    log.warning(
        "request cancelled: the server stopped before it was answered", extra={"request_id": request_id}
    )
    if not sent["started"]:
        sent["status"] = 503
        await _refuse(send, 503, "unavailable", "the server is stopping; retry", request_id, retry_after=1)


async def _refuse(
    send: Send, status: int, slug: str, detail: str, request_id: str, retry_after: int | None = None
) -> None:
    title = TITLES.get(status, "Error")
    body = json.dumps({"type": TYPES + slug, "title": title, "status": status, "detail": detail}).encode()
    headers = [
        (b"content-type", PROBLEM.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if status in (413, 431):  # the rest of what was sent is not read: this connection is done
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it is larger than `limit`."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives `body` once, then whatever the connection says (a disconnect)."""
    given = [False]

    async def again() -> Message:
        if not given[0]:
            given[0] = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return again
