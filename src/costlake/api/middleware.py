"""The outermost layer of the app, in plain ASGI (no per-request objects beyond what it logs): a
request id, the body-size limit, the metrics and one JSON log line per request.

The log line: request id, tenant (once known), method, route template, status, latency, plus what
the route added (retrieval and generation times of POST /explain). Never a header, a key or a body.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from costlake.api.metrics import LATENCY, REQUESTS
from costlake.api.problems import PROBLEM, TITLES, TYPES

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


class TooLarge(Exception):
    pass


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
        status = [500]
        length = _header(scope, b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _refuse(send, 413, f"the request body is larger than {self.max_body} bytes", request_id)
            status[0] = 413
            self._done(scope, info, 413, started, request_id)
            return
        seen = [0]

        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                seen[0] += len(message.get("body", b""))
                if seen[0] > self.max_body:
                    raise TooLarge
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", request_id.encode()))
            await send(message)

        try:
            await self.app(scope, counted, sending)
        except TooLarge:
            status[0] = 413
            await _refuse(send, 413, f"the request body is larger than {self.max_body} bytes", request_id)
        finally:
            self._done(scope, info, status[0], started, request_id)

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


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _refuse(send: Send, status: int, detail: str, request_id: str) -> None:
    body = json.dumps(
        {"type": TYPES + "too-large", "title": TITLES[status], "status": status, "detail": detail}
    ).encode()
    headers = [
        (b"content-type", PROBLEM.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", request_id.encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
