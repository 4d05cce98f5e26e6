"""POST /explain: a question about the caller's costs, answered as `costlake explain --format json`."""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from costlake.api.auth import Caller, caller, own_account
from costlake.api.limits import ACCOUNT_ID_CHARS, SERVICE_CHARS
from costlake.api.metrics import DEGRADED, GENERATION, LLM_ERRORS, RETRIEVAL
from costlake.api.problems import EARLIEST, LATEST, TENANT_ERRORS, Problem, documented
from costlake.catalog.filters import check_window
from costlake.errors import ConfigError, InputError
from costlake.rag.explain import TABLE_INTENTS, Explainer, ExplainResult
from costlake.rag.intents import classify
from costlake.rag.llm import LLMError
from costlake.rag.query_parser import QueryFilters, parse_query
from costlake.rag.service_words import KNOWN_SERVICES

log = logging.getLogger(__name__)
router = APIRouter(tags=["explain"])
MAX_QUERY_CHARS = 2000
MAX_K = 50


class ExplainFilters(BaseModel):
    """Explicit filters: each replaces what the question says about the same thing."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    account_id: str | None = Field(
        None, max_length=ACCOUNT_ID_CHARS, description="One of the tenant's accounts."
    )
    service: str | None = Field(
        None, max_length=SERVICE_CHARS, description="A service, e.g. AmazonEC2 or 'ec2'."
    )
    date_from: dt.date | None = Field(
        None, alias="from", ge=EARLIEST, le=LATEST, description="First usage day (inclusive)."
    )
    date_to: dt.date | None = Field(
        None, alias="to", ge=EARLIEST, le=LATEST, description="Last usage day (inclusive)."
    )

    @model_validator(mode="after")
    def _window(self) -> ExplainFilters:
        check_window(self.date_from, self.date_to)
        return self


class ExplainRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUERY_CHARS, description="The question.")
    k: int = Field(5, ge=1, le=MAX_K, strict=True, description="Anomalies to retrieve.")
    filters: ExplainFilters | None = None


@router.post(
    "/explain",
    response_model=ExplainResult,
    summary="Answer a question about the tenant's costs",
    responses=documented(
        TENANT_ERRORS
        | {
            400: "an admin key without X-Costlake-Tenant, or a question that cannot be answered as asked",
            413: "a body over `api_max_body_bytes`",
            502: "the LLM provider failed and `llm_failure = error` is set",
            503: "the service is not configured to answer (e.g. the LLM provider's settings, whatever "
            "`llm_failure` says), the catalog is `busy` (see Retry-After), or there is no index yet",
        }
    ),
)
async def explain(
    body: ExplainRequest, request: Request, who: Annotated[Caller, Depends(caller)]
) -> Response:
    """`explanation`, `latency_ms` and `retrieved_context_count`, the citations it rests on, the timings,
    the provider and whether the answer is degraded or grounded, the intent and the dates it used."""
    given = _given(who, body.filters)
    explainer = who.explainer()
    anchor = who.view.anchors.get(who.tenant)
    answer = functools.partial(
        _answer,
        explainer,
        body.query,
        who.tenant,
        body.k,
        given,
        lambda: anchor or who.view.anchor(who.tenant),
    )
    # A question asked again, answered from the loaded index by the local composer, is a few
    # milliseconds of CPU: answered here, without a thread hop. Anything that may take longer (a new
    # question's vector, reading the lake, a remote model) goes to a thread, so the event loop keeps
    # serving other requests, and other tenants, meanwhile.
    local = (
        anchor is not None
        and explainer.llm.name == "offline"
        and classify(body.query).kind not in TABLE_INTENTS
        and explainer.answers_at_once(body.query, who.tenant)
    )
    result = answer() if local else await run_in_threadpool(answer)
    _observe(result, request)
    return Response(result.model_dump_json(), media_type="application/json")


def _answer(
    explainer: Explainer,
    question: str,
    tenant: str,
    k: int,
    given: QueryFilters | None,
    anchor: Callable[[], dt.date],
) -> ExplainResult:
    try:
        return explainer.explain(question, tenant=tenant, k=k, given=given, anchor=anchor())
    except LLMError as exc:  # what the provider said goes to the log only (its URL, credentials, prompt)
        if isinstance(exc, ConfigError):  # the operator's to fix: 503 by the error handler, logged there
            raise
        LLM_ERRORS.inc()
        log.warning("the LLM provider failed: %s", exc)
        detail = "the LLM provider failed; the server's log has the details"
        raise Problem(502, "provider-error", detail) from None


def _given(who: Caller, filters: ExplainFilters | None) -> QueryFilters | None:
    if filters is None:
        return None
    own_account(who, filters.account_id)
    services: frozenset[str] = frozenset()
    if filters.service:
        services = _one_service(filters.service)
    return QueryFilters(
        account_ids=frozenset({filters.account_id}) if filters.account_id else frozenset(),
        service_names=services,
        date_from=filters.date_from,
        date_to=filters.date_to,
    )


def _one_service(given: str) -> frozenset[str]:
    """The service `filters.service` names: a known one or its common name ("ec2") when that is all
    it holds, else the name as given, matched as the lake spells it. A filter is not a question:
    "amazonec2 OR 1=1" and "amazonec2, amazons3" were read as the services they mention."""
    try:
        parsed = parse_query(given, accounts={}, services=KNOWN_SERVICES, today=dt.date.today())
    except InputError:  # words the question parser refuses ("amazonfoo"): a name, taken as given
        return frozenset({given})
    left = given
    for text in parsed.matched:
        left = left.replace(text, " ", 1)
    if len(parsed.service_names) != 1 or re.search(r"[^\W_]", left):
        return frozenset({given})
    return parsed.service_names


def _observe(result: ExplainResult, request: Request) -> None:
    RETRIEVAL.observe(result.retrieval_ms / 1000)
    GENERATION.observe(result.generation_ms / 1000)
    if result.degraded_reason:
        DEGRADED.labels(result.degraded_reason).inc()
        if result.degraded_reason == "provider_error":
            LLM_ERRORS.inc()
    request.scope.setdefault("costlake", {}).update(
        retrieval_ms=result.retrieval_ms,
        generation_ms=result.generation_ms,
        intent=result.intent,
        degraded=result.degraded,
    )
