"""`costlake explain` (and, later, the API's POST /explain): retrieve, prompt, generate, check.

The answer has exactly the API's shape: `explanation`, `latency_ms`, `retrieved_context_count`,
`citations` (chunk_id, account_id, service_name, usage_date, impact_usd), `retrieval_ms`,
`generation_ms`, `provider`, `degraded`, `grounded`. A provider failure (any `LLMError`) gives the
retrieved anomalies' own sentences with `degraded: true`, unless `llm_failure = "error"`.
Relative dates in a question ("last week", "yesterday") count from the day after the latest
published usage day, since billing data arrives a day late.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np

from costlake.errors import InputError
from costlake.lake.warehouse import Warehouse
from costlake.rag.chunks import UNASSIGNED_TENANT, Chunk, read_jsonl
from costlake.rag.grounding import check_grounding
from costlake.rag.index import VectorIndex
from costlake.rag.indexer import (
    CHUNKS_FILE,
    SOURCE_FILE,
    anomalies_snapshot,
    configured_embedder,
    index_folder,
    rag_folder,
)
from costlake.rag.llm import LLMError, llm_for
from costlake.rag.prompt import build_prompt, context_lines
from costlake.rag.retriever import Mode, Retriever


def context_of(chunk: Chunk) -> dict[str, Any]:
    """What the prompt shows of a chunk: its structured fields, its id and its sentence."""
    return {**chunk.metadata, "chunk_id": chunk.chunk_id, "text": chunk.text}


@dataclass(frozen=True)
class Answer:
    payload: dict[str, Any]  # exactly the API's fields
    unsupported: list[str]  # numbers of the explanation the context does not support (grounded: false)


@dataclass
class Explainer:
    """Everything one warehouse needs to answer questions; build once, ask many times."""

    wh: Warehouse

    @cached_property
    def chunks(self) -> list[Chunk]:
        path = rag_folder(self.wh) / CHUNKS_FILE
        if not path.exists():
            raise InputError(f"no explanation index in {path.parent}: run `costlake index` first")
        return read_jsonl(path)

    @property
    def stale(self) -> bool:
        """True when cost_anomalies changed since `costlake index` built the chunks."""
        path = rag_folder(self.wh) / SOURCE_FILE
        built = json.loads(path.read_text()).get("cost_anomalies_snapshot") if path.exists() else None
        return built != anomalies_snapshot(self.wh)

    @cached_property
    def retriever(self) -> Retriever:
        from costlake.catalog.views import run_query

        chunks = self.chunks  # first: a missing index says to run `costlake index`
        folder = rag_folder(self.wh)
        embedder = configured_embedder(self.wh.settings, folder)
        index = VectorIndex.open(
            index_folder(folder, embedder.embedder_id), expect_embedder_id=embedder.embedder_id
        )
        accounts = run_query(self.wh, "SELECT account_id, account_name, tenant_id FROM dim_account")
        latest = run_query(self.wh, "SELECT max(usage_date) AS d FROM daily_account_cost").to_pylist()[0]["d"]
        today = (latest or dt.date.today()) + dt.timedelta(days=1)

        def dense(vector: np.ndarray, k: int, candidates: Any) -> list[tuple[str, float]]:
            return index.search(vector, k, allowed_chunk_ids=candidates)

        # Tenants come from dim_account as it is now: moving an account to another tenant takes
        # effect at once, not at the next `costlake index`.
        owner = {r["account_id"]: r["tenant_id"] for r in accounts.to_pylist() if r["tenant_id"]}
        chunks = [replace(c, tenant_id=owner.get(c.account_id, UNASSIGNED_TENANT)) for c in chunks]
        return Retriever(chunks, embedder, dense, accounts=accounts, today=today)

    def explain(
        self,
        question: str,
        *,
        tenant: str | None,
        k: int = 5,
        mode: Mode = "hybrid",
        use_filters: bool = True,
    ) -> Answer:
        settings = self.wh.settings
        started = time.perf_counter()
        retrieval = self.retriever.retrieve(
            question, tenant_id=tenant, k=k, mode=mode, use_filters=use_filters
        )
        retrieved = time.perf_counter()
        context = [context_of(c) for c in retrieval.chunks]
        lines = context_lines(context)
        options: dict[str, Any] = {
            "timeout": settings.llm_timeout_seconds,
            "max_attempts": settings.llm_max_attempts,
        }
        if settings.llm_model:
            options["model"] = settings.llm_model
        if settings.llm_base_url:
            options["base_url"] = settings.llm_base_url
        if settings.llm_provider == "bedrock" and settings.aws_region:
            options["region"] = settings.aws_region
        client = llm_for(settings.llm_provider, **options)
        degraded = False
        try:
            text = client.generate(build_prompt(question, context))
        except LLMError as exc:
            if settings.llm_failure == "error":
                raise
            degraded = True
            found = "\n".join(f"- [{c.chunk_id}] {c.text}" for c in retrieval.chunks) or "No anomaly matched."
            text = f"The explanation service is unavailable ({exc}); the retrieved anomalies are:\n{found}"
        generated = time.perf_counter()
        grounding = check_grounding(text if not degraded else "", lines)
        explanation = f"{retrieval.note}\n\n{text}" if retrieval.note else text
        payload = {
            "explanation": explanation,
            "latency_ms": round((generated - started) * 1000, 3),
            "retrieved_context_count": len(retrieval.chunks),
            "citations": [
                {
                    "chunk_id": c.chunk_id,
                    "account_id": c.account_id,
                    "service_name": c.service_name,
                    "usage_date": c.usage_date.isoformat(),
                    "impact_usd": str(c.metadata.get("impact_usd", c.impact_usd)),
                }
                for c in retrieval.chunks
            ],
            "retrieval_ms": round((retrieved - started) * 1000, 3),
            "generation_ms": round((generated - retrieved) * 1000, 3),
            "provider": client.name,
            "degraded": degraded,
            "grounded": grounding.grounded,
        }
        return Answer(payload, grounding.unsupported)
