"""GET /health and GET /metrics: public (the metrics may require their own token), no tenant data."""

from __future__ import annotations

import hmac
import platform
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from costlake import __version__
from costlake.api.metrics import exposition
from costlake.api.problems import Problem, documented

router = APIRouter(tags=["service"])


@router.get(
    "/health",
    summary="Whether the lake and the index can be read; versions; index freshness",
    responses={503: {"description": "the lake cannot be read: the same body, with `status: unavailable`"}},
)
def health(request: Request) -> JSONResponse:
    import duckdb
    import pyarrow

    found: dict[str, Any] = request.app.state.service.health()
    ok = bool(found["lake"]["reachable"])
    body = {
        "status": "ok" if ok else "unavailable",
        **found,
        "versions": {
            "costlake": __version__,
            "python": platform.python_version(),
            "duckdb": duckdb.__version__,
            "pyarrow": pyarrow.__version__,
        },
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses=documented(
        {401: "`api_metrics_token` is set and the request does not carry it as a Bearer token"}
    ),
)
def metrics(request: Request) -> Response:
    token = request.app.state.service.settings.api_metrics_token
    if token:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
            raise Problem(401, "unauthorized", "GET /metrics needs its token", {"WWW-Authenticate": "Bearer"})
    body, media = exposition()
    return Response(body, media_type=media)
