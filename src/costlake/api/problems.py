"""Errors as RFC 9457 problem details (`application/problem+json`): `type`, `title`, `status`,
`detail`, plus extension members. No response ever carries a stack trace or an exception's text that
was not written for the caller; validation errors name the field."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from costlake.errors import ConfigError, CostlakeError, InputError, NotReady

log = logging.getLogger(__name__)
PROBLEM = "application/problem+json"
# The usage days a request may name: wide enough for any bill, narrow enough that a window computed
# around one (a month, the 30 days before) stays a valid date.
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2999, 12, 31)
TYPES = "https://costlake.dev/problems/"  # each type is documented in docs/api.md, under its slug
TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "description": "a validation problem's fields and messages",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
TENANT_ERRORS = {  # what every tenant-scoped route can answer with (auth.py, FastAPI's validation)
    400: "an admin key without X-Costlake-Tenant, or a request that cannot be answered as asked",
    401: "no valid API key",
    404: "an account (or tenant) the key cannot see: the same as one that does not exist",
    422: "a parameter or body field that is not valid, named in `errors`",
    429: "more requests per second than the key's rate (see Retry-After)",
    503: "`busy`: another process is committing to the catalog (see Retry-After); `unavailable`: the lake "
    "or the index cannot be read yet",
}


def documented(described: dict[int, str]) -> dict[int | str, dict[str, Any]]:
    """A route's `responses=` for OpenAPI: each status, so described, as problem details."""
    return {
        s: {"description": d, "content": {PROBLEM: {"schema": PROBLEM_SCHEMA}}} for s, d in described.items()
    }


class Problem(Exception):
    """An error to answer with: its status, a slug naming its type, one line for the caller, and
    extension members (e.g. `errors` of a validation problem)."""

    def __init__(
        self,
        status: int,
        slug: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail)
        self.status, self.slug, self.detail = status, slug, detail
        self.headers = headers or {}
        self.extensions = extensions

    def response(self) -> JSONResponse:
        body = {
            "type": TYPES + self.slug,
            "title": TITLES.get(self.status, "Error"),
            "status": self.status,
            "detail": self.detail,
            **self.extensions,
        }
        return JSONResponse(body, status_code=self.status, media_type=PROBLEM, headers=self.headers)


def not_found(what: str) -> Problem:
    """The one 404 for anything the caller may not see: another tenant's account reads exactly like an
    account that does not exist."""
    return Problem(404, "not-found", f"no {what}")


def install(app: FastAPI) -> None:
    """Every error the app can raise, as problem details."""

    async def problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return exc.response()

    async def http(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "error")
        headers = dict(exc.headers or {})
        return Problem(exc.status_code, slug, detail, headers).response()

    async def invalid(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [_field_error(e) for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5]) or "invalid request"
        return Problem(422, "validation", detail, errors=errors).response()

    async def costlake(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, CostlakeError)
        line = (str(exc).splitlines() or [type(exc).__name__])[0]
        if isinstance(exc, NotReady):  # what the operator must do is in the log, not in the answer
            log.warning("not ready: %s", line)
            return Problem(503, "unavailable", exc.public, {"Retry-After": "60"}).response()
        if isinstance(exc, ConfigError):
            log.error("configuration error: %s", line)
            return Problem(503, "unavailable", "the service is not configured to answer this").response()
        if isinstance(exc, InputError):
            return Problem(400, "bad-request", line).response()
        log.error("request failed: %s", line)
        return Problem(500, "internal", "the request failed; the server's log has the details").response()

    async def crash(_: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error: %s", type(exc).__name__, exc_info=exc)
        return Problem(500, "internal", "the request failed; the server's log has the details").response()

    app.add_exception_handler(Problem, problem)
    app.add_exception_handler(StarletteHTTPException, http)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(CostlakeError, costlake)
    app.add_exception_handler(Exception, crash)


def _field_error(error: Any) -> dict[str, str]:
    """One validation error: the field's path (`query.limit`, `body.filters.from`) and the message."""
    location = [str(p) for p in error.get("loc", ())]
    return {"field": ".".join(location) or "request", "message": str(error.get("msg", "invalid"))}
