"""The FastAPI app of `costlake serve`.

`create_app(settings)` builds it; `factory()` builds it from the environment, for uvicorn's workers
(`costlake serve` passes its settings down as `COSTLAKE_*` variables and the number of workers as
`COSTLAKE_API_WORKERS`, which divides the per-key rate limit between them).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from fastapi import FastAPI

from costlake import __version__
from costlake.api import problems
from costlake.api.cursors import Cursors
from costlake.api.limits import TokenBuckets
from costlake.api.middleware import ServiceMiddleware, configure_access_log
from costlake.api.routes import data, explain, page, series, service
from costlake.api.server import uvicorn_lines_as_ours
from costlake.api.state import ServiceState
from costlake.logs import configure_logging
from costlake.settings import Settings, load_settings

WORKERS_ENV = "COSTLAKE_API_WORKERS"
DESCRIPTION = """Costs, anomalies and explanations of one tenant's cloud accounts.

Every route but `/health`, `/metrics` and these docs needs `Authorization: Bearer <key>` (a key from
`costlake tenants add-key`), and answers from the key's tenant only: another tenant's account reads
exactly like one that does not exist. Errors are RFC 9457 problem details. Money is an exact decimal
in a string."""


def create_app(settings: Settings, workers: int = 1) -> FastAPI:
    state = ServiceState(settings)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state.warm_up()  # the index and the model load before the first request, not inside it
        yield

    app = FastAPI(
        lifespan=lifespan,
        title="costlake",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url=None,
        openapi_url="/openapi.json",
        # No redirect of /accounts/ to /accounts: Starlette builds its Location from the request's Host
        # header, so a proxy's cache could be taught to send users elsewhere. Such a path is a 404.
        redirect_slashes=False,
    )
    app.state.service = state
    app.state.limits = TokenBuckets(settings.api_rate_limit / max(1, workers))
    app.state.cursors = Cursors(state.keys.secret("cursors"))
    problems.install(app)
    app.include_router(explain.router)
    app.include_router(data.router)
    app.include_router(series.router)
    app.include_router(service.router)
    app.include_router(page.router)
    app.add_middleware(ServiceMiddleware, max_body=settings.api_max_body_bytes)
    return app


def factory() -> FastAPI:
    """The app of one uvicorn worker, configured by the environment."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    configure_access_log()
    uvicorn_lines_as_ours()
    return create_app(settings, int(os.environ.get(WORKERS_ENV, "1")))
