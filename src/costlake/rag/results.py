"""What an answer is: `ExplainResult`, the body of POST /explain and of `costlake explain --format json`,
and the citations it rests on."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from costlake.rag.chunks import Chunk
from costlake.rag.intents import Kind


def context_of(chunk: Chunk) -> dict[str, Any]:
    """What the prompt shows of a chunk: its structured fields, its id and its sentence."""
    return {**chunk.metadata, "chunk_id": chunk.chunk_id, "text": chunk.text}


class Citation(BaseModel):
    """One retrieved anomaly the explanation may cite."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    chunk_id: str
    account_id: str
    service_name: str
    usage_date: str = Field(description="ISO 8601 day, e.g. 2025-03-02")
    impact_usd: str = Field(description="exact decimal, as a string so no float ever rounds it")

    @classmethod
    def of(cls, chunk: Chunk) -> Citation:
        """The citation of a chunk, its names as the chunk shows them (through the name policy)."""
        return cls(
            chunk_id=chunk.chunk_id,
            account_id=str(chunk.metadata.get("account_id", chunk.account_id)),
            service_name=str(chunk.metadata.get("service_name", chunk.service_name)),
            usage_date=chunk.usage_date.isoformat(),
            impact_usd=str(chunk.metadata.get("impact_usd", chunk.impact_usd)),
        )


DegradedReason = Literal["provider_error", "ungrounded"]


class ExplainResult(BaseModel):
    """The answer to one question; `model_dump(mode="json")` is the API's body (without `unsupported`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    explanation: str
    latency_ms: float = Field(description="retrieval and generation, in milliseconds")
    retrieved_context_count: int
    citations: list[Citation]
    retrieval_ms: float
    generation_ms: float
    provider: str
    degraded: bool = Field(
        description="true when the model's answer is not shown: the provider failed, or its answer was "
        "not grounded and the offline composition replaced it"
    )
    degraded_reason: DegradedReason | None = Field(
        None,
        description='why the answer is degraded: "provider_error" or "ungrounded"; null when not degraded',
    )
    grounded: bool = Field(
        description="true when every number, date and cited chunk id of the explanation is in the context"
    )
    intent: Kind = Field(
        "explain",
        description="what the question was read as asking: explain, ranking, lookup, comparison or trend",
    )
    date_from: str | None = Field(None, description="first day of the range the answer used (ISO 8601)")
    date_to: str | None = Field(None, description="last day of the range the answer used (ISO 8601)")
    #: what the grounding check found unsupported in the model's answer (numbers, dates, chunk ids), also
    #: when the answer was replaced; not part of the body
    unsupported: list[str] = Field(default_factory=list, exclude=True)
