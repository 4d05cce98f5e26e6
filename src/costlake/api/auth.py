"""Who is asking: `Authorization: Bearer <key>` resolved to exactly one tenant, then the key's rate.

A tenant key acts for its tenant only. An admin key (`costlake tenants add-key --admin`) acts for the
tenant named in `X-Costlake-Tenant`; a tenant that owns no account is a 404, like any other thing the
caller cannot see. Without a key, or with a key that is unknown, malformed or revoked: 401. A tenant
key that names another tenant in the header gets the same 404 as an unknown tenant.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from costlake.api.metrics import RATE_LIMITED
from costlake.api.problems import Problem, not_found
from costlake.api.state import ServiceState, View
from costlake.lake.warehouse import Warehouse
from costlake.rag.explain import Explainer

TENANT_HEADER = "x-costlake-tenant"
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="costlake"'}


@dataclass(frozen=True)
class Caller:
    tenant: str
    key_id: str
    view: View  # the lake as this request sees it, start to end
    wh: Warehouse  # this request's own: a Warehouse caches metadata and is not shared between threads

    def explainer(self) -> Explainer:
        """The view's explainer (its index and model loaded once) reading through this request's
        warehouse."""
        found = copy.copy(self.view.explainer)
        found.wh = self.wh
        return found

    @property
    def accounts(self) -> frozenset[str]:
        return self.view.accounts(self.tenant)


_BEARER = HTTPBearer(
    auto_error=False, scheme_name="tenant key", description="A key from `costlake tenants add-key`."
)


async def caller(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)],
    _tenant: Annotated[
        str | None,
        Header(
            alias="X-Costlake-Tenant",
            description="With an admin key: the tenant to act for (required). With a tenant key: its own "
            "tenant, or absent.",
        ),
    ] = None,
) -> Caller:
    """The FastAPI dependency of every tenant-scoped route. It runs on the event loop (no thread hop):
    a key is looked up in memory or with one indexed SQLite read, and the view's check is well under
    a millisecond; only a view that must be rebuilt goes to a thread. (The two parameters put the
    key and the header in the OpenAPI document; the headers are read here, whatever their case.)"""
    state: ServiceState = request.app.state.service
    for header in ("authorization", TENANT_HEADER):  # two credentials, or two tenants: which one counts?
        if len(request.headers.getlist(header)) > 1:
            raise Problem(400, "ambiguous-credentials", f"send one {header.title()} header, not several")
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        raise Problem(401, "unauthorized", "send an API key as 'Authorization: Bearer <key>'", _CHALLENGE)
    key = state.key(presented)
    if key is None:
        raise Problem(401, "unauthorized", "the API key is not valid (unknown or revoked)", _CHALLENGE)
    named = request.headers.get(TENANT_HEADER) or None  # an empty header names no tenant
    if key.admin:
        if not named:
            raise Problem(400, "tenant-required", "an admin key names its tenant in X-Costlake-Tenant")
        tenant = named
    else:
        assert key.tenant_id is not None
        if named is not None and named != key.tenant_id:
            raise not_found("such tenant")
        tenant = key.tenant_id
    wait = request.app.state.limits.take(key.key_id)
    if wait > 0:
        RATE_LIMITED.inc()
        raise Problem(
            429,
            "rate-limited",
            f"more than {state.settings.api_rate_limit:g} requests per second with this key",
            {"Retry-After": str(max(1, math.ceil(wait)))},
        )
    view = state.current()
    if view is None:
        view = await run_in_threadpool(state.view)
    if not view.accounts(tenant):
        raise not_found("such tenant")
    request.scope.setdefault("costlake", {})["tenant"] = tenant
    return Caller(tenant, key.key_id, view, Warehouse(state.settings))


def own_account(who: Caller, account_id: str | None) -> None:
    """A 404 for an account the caller's tenant does not own, the same as for one that does not exist."""
    if account_id is not None and account_id not in who.accounts:
        raise not_found("such account")
