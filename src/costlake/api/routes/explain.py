"""POST /explain: a question about the caller's costs, answered as `costlake explain --format json`."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.responses import JSONResponse

from costlake.api.auth import Caller, caller, own_account
from costlake.api.metrics import DEGRADED, GENERATION, LLM_ERRORS, RETRIEVAL
from costlake.api.problems import EARLIEST, LATEST, TENANT_ERRORS, Problem, documented
from costlake.rag.explain import ExplainResult
from costlake.rag.llm import LLMError
from costlake.rag.query_parser import KNOWN_SERVICES, QueryFilters, parse_query

log = logging.getLogger(__name__)
router = APIRouter(tags=["explain"])
MAX_QUERY_CHARS = 2000
MAX_K = 50


class ExplainFilters(BaseModel):
    """Explicit filters: each replaces what the question says about the same thing."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    account_id: str | None = Field(None, max_length=64, description="One of the tenant's accounts.")
    service: str | None = Field(None, max_length=128, description="A service, e.g. AmazonEC2 or 'ec2'.")
    date_from: dt.date | None = Field(
        None, alias="from", ge=EARLIEST, le=LATEST, description="First usage day (inclusive)."
    )
    date_to: dt.date | None = Field(
        None, alias="to", ge=EARLIEST, le=LATEST, description="Last usage day (inclusive)."
    )

    @model_validator(mode="after")
    def _window(self) -> ExplainFilters:
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"from {self.date_from} is after to {self.date_to}")
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
            503: "the service is not configured to answer (e.g. the LLM provider's settings)",
        }
    ),
)
def explain(body: ExplainRequest, request: Request, who: Annotated[Caller, Depends(caller)]) -> JSONResponse:
    """`explanation`, `latency_ms` and `retrieved_context_count`, the citations it rests on, the timings,
    the provider and whether the answer is degraded or grounded, the intent and the dates it used."""
    given = _given(who, body.filters)
    explainer = who.explainer()
    try:
        result = explainer.explain(
            body.query, tenant=who.tenant, k=body.k, given=given, anchor=who.view.anchor(who.tenant)
        )
    except LLMError as exc:  # what the provider said goes to the log only (its URL, credentials, prompt)
        LLM_ERRORS.inc()
        log.warning("the LLM provider failed: %s", exc)
        raise Problem(
            502, "provider-error", "the LLM provider failed; the server's log has the details"
        ) from None
    _observe(result, request)
    return JSONResponse(result.model_dump(mode="json"))


def _given(who: Caller, filters: ExplainFilters | None) -> QueryFilters | None:
    if filters is None:
        return None
    own_account(who, filters.account_id)
    services: frozenset[str] = frozenset()
    if filters.service:
        parsed = parse_query(filters.service, accounts={}, services=KNOWN_SERVICES, today=dt.date.today())
        services = parsed.service_names or frozenset({filters.service})
    return QueryFilters(
        account_ids=frozenset({filters.account_id}) if filters.account_id else frozenset(),
        service_names=services,
        date_from=filters.date_from,
        date_to=filters.date_to,
    )


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
