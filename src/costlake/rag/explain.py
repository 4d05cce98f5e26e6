"""`costlake explain` (and, later, the API's POST /explain): retrieve, prompt, generate, check.

The answer is an `ExplainResult`, whose JSON is exactly the API's shape: `explanation`, `latency_ms`,
`retrieved_context_count`, `citations` (chunk_id, account_id, service_name, usage_date, impact_usd),
`retrieval_ms`, `generation_ms`, `provider`, `degraded`, `degraded_reason`, `grounded`.

Two ways an answer is degraded (`degraded: true`):
- `degraded_reason: "provider_error"`: the provider failed (any `LLMError`), or answered with more than
  MAX_ANSWER_CHARS characters; the answer lists the retrieved
  anomalies' own sentences, unless `llm_failure = "error"`, which raises instead.
- `degraded_reason: "ungrounded"`: the model's answer failed the grounding check (a figure or date the
  context does not hold, or a chunk id that was not retrieved); with `llm_ungrounded = "replace"` (the
  default) the offline composition answers instead. With `"flag"` the model's text is kept, with
  `grounded: false` and not degraded.

A tenant that owns no account is refused (`UnknownTenant`), so a misspelt tenant is not answered with
"nothing found". The LLM client and the embedder are built once per process and configuration, not per
question. Relative dates in a question ("last week", "this month", "Q1") count from the tenant's
latest complete day (`readers.latest_complete_date`), and the answer says which dates it used.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from costlake.errors import InputError, NotReady
from costlake.lake.warehouse import Warehouse
from costlake.logs import phase
from costlake.rag.chunk_store import read_chunks
from costlake.rag.chunk_text import account_phrase, service_phrase
from costlake.rag.chunks import UNASSIGNED_TENANT, Chunk
from costlake.rag.embedders.cache import CachedEmbedder
from costlake.rag.formatting import format_signed_usd
from costlake.rag.grounding import GroundingResult, check_grounding
from costlake.rag.indexer import (
    CHUNKS_FILE,
    SOURCE_FILE,
    configured_embedder,
    index_source,
    rag_folder,
)
from costlake.rag.intents import Intent, classify
from costlake.rag.llm import LLMClient, LLMError, LLMTerminalError, compose_explanation, shared_llm
from costlake.rag.opened import DamagedIndex, open_index
from costlake.rag.prompt import Prompt, build_prompt
from costlake.rag.query_parser import QueryFilters, parse_query
from costlake.rag.results import Citation, DegradedReason, ExplainResult, context_of
from costlake.rag.retriever import Mode, Retrieval, Retriever, describe, narrowed, question_name
from costlake.rag.service_words import KNOWN_SERVICES
from costlake.settings import Settings

# The longest answer taken from a model (the prompt asks for a few short sentences): a longer one is
# treated as a failed provider, before the grounding check reads it.
MAX_ANSWER_CHARS = 8000

log = logging.getLogger(__name__)
# Intents answered from the published tables: no index, no model.
TABLE_INTENTS = ("lookup", "comparison", "trend")


@dataclass(frozen=True)
class _Answer:
    text: str
    grounding: GroundingResult
    degraded_reason: DegradedReason | None = None


class NoIndex(NotReady):
    public = "the explanation index is not built yet"


def configured_llm(settings: Settings) -> LLMClient:
    """The LLM client the settings name, built once per process and configuration (`shared_llm`)."""
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
    return shared_llm(settings.llm_provider, **options)


@dataclass
class Explainer:
    """Everything one warehouse needs to answer questions; build once, ask many times."""

    wh: Warehouse
    _damaged: DamagedIndex | None = field(default=None, init=False, repr=False)

    @cached_property
    def chunks(self) -> list[Chunk]:
        path = rag_folder(self.wh, create=False) / CHUNKS_FILE
        if not path.exists():
            raise NoIndex(f"no explanation index in {path.parent}: run `costlake index` first")
        # Each line's hash checked, and a file written before the name policy gets its names withheld
        # here, unless the file is byte for byte what `costlake index` wrote (chunk_store.py).
        return read_chunks(path)

    @property
    def stale(self) -> bool:
        """True when cost_anomalies, or the accounts' names and tenants, changed since `costlake index`
        built the chunks (an index of an older version, which recorded the anomalies only, is stale)."""
        path = rag_folder(self.wh, create=False) / SOURCE_FILE
        try:
            built = json.loads(path.read_text()) if path.exists() else None
        except (OSError, ValueError, RecursionError):  # cut short or edited: built from what is unknown
            return True
        return built != self.source

    @property
    def damaged(self) -> bool:
        """Whether the index was found unusable (`opened.DamagedIndex`)."""
        return self._damaged is not None

    def answers_at_once(self, question: str, tenant: str | None) -> bool:
        """Whether answering from the index takes a few ms: loaded, the question's vector at hand."""
        loaded = self.__dict__.get("retriever")
        return loaded is not None and loaded.knows(question, tenant)

    @cached_property
    def source(self) -> dict[str, int | str | None]:
        """What an index built from the lake as it is now would record (`indexer.index_source`)."""
        return index_source(self.wh)

    @cached_property
    def retriever(self) -> Retriever:
        from costlake.catalog import readers

        folder = rag_folder(self.wh, create=False)
        if self._damaged is not None:  # read once: every later question gets the same answer at once
            raise self._damaged
        embedder = self._warm_embedder()  # the model loads while the chunks, the index and the lake are read
        try:  # a missing index says to run `costlake index`
            chunks, index = open_index(folder, embedder.embedder_id, lambda: self.chunks)
        except DamagedIndex as exc:
            self._damaged = exc
            raise
        accounts = readers.accounts_table(readers.accounts(self.wh, None))

        def dense(vector: np.ndarray, k: int, candidates: Any) -> list[tuple[str, float]]:
            return index.search(vector, k, allowed_chunk_ids=candidates)

        # Tenants come from dim_account as it is now: moving an account to another tenant takes
        # effect at once, not at the next `costlake index`.
        owner = {r["account_id"]: r["tenant_id"] for r in accounts.to_pylist() if r["tenant_id"]}
        chunks = [
            c
            if c.tenant_id == (now := owner.get(c.account_id, UNASSIGNED_TENANT))
            else replace(c, tenant_id=now)
            for c in chunks
        ]
        return Retriever(chunks, embedder, dense, accounts=accounts)  # dates: `explain` passes its anchor

    def _warm_embedder(self) -> CachedEmbedder:
        """The configured embedder, its model (if any) starting to load when there is an index to search."""
        folder = rag_folder(self.wh, create=False)
        embedder = configured_embedder(self.wh.settings, folder)
        if (folder / CHUNKS_FILE).exists():
            embedder.warm_up()
        return embedder

    @property
    def llm(self) -> LLMClient:
        """The settings' LLM client: one per process and configuration, shared by every question."""
        return configured_llm(self.wh.settings)

    def explain(
        self,
        question: str,
        *,
        tenant: str | None,
        k: int = 5,
        mode: Mode = "hybrid",
        use_filters: bool = True,
        given: QueryFilters | None = None,
        anchor: dt.date | None = None,
    ) -> ExplainResult:
        """The answer to `question` from `tenant`'s anomalies (None: every tenant's, for operators); an
        unknown tenant is refused (`catalog.views.UnknownTenant`, an input error). The question's
        reads share one view of the lake (`readers.session`). `given` filters replace what the
        question says about the same thing; `anchor` is the tenant's `anchor` when the caller (the
        API) already knows it and has checked the tenant."""
        from costlake.catalog import readers

        with readers.session(self.wh, tenant, readers.QUESTION_TABLES):
            return self._explain(question, tenant, k, mode, use_filters, given, anchor)

    def _explain(
        self,
        question: str,
        tenant: str | None,
        k: int,
        mode: Mode,
        use_filters: bool,
        given: QueryFilters | None,
        anchor: dt.date | None,
    ) -> ExplainResult:
        started = time.perf_counter()
        intent = classify(question) if use_filters else Intent("explain")
        if intent.kind not in TABLE_INTENTS and "retriever" not in self.__dict__:  # (building it warmed it)
            self._warm_embedder()  # the question will be embedded: the model loads while the lake is read
        if anchor is None:  # before any answer: the tenant-scoped read refuses an unknown tenant
            anchor = self.anchor(tenant)
        if not any(ch.isalnum() for ch in question):
            raise InputError("the question has no words: ask about an account, a service or a date")
        if intent.kind in TABLE_INTENTS:
            return self._from_tables(question, tenant, intent, anchor, started, given)
        with phase(log, "retrieval", k=k, mode=mode, intent=intent.kind) as done:
            retrieval = self.retriever.retrieve(
                question,
                tenant_id=tenant,
                k=k,
                mode=mode,
                use_filters=use_filters,
                today=anchor,
                given=given,
            )
            if intent.kind == "ranking" and not retrieval.relaxed:
                retrieval = ranked(retrieval, self.retriever.pool(tenant), intent)
            done["chunks"] = len(retrieval.chunks)
        retrieved = time.perf_counter()
        prompt = build_prompt(question, [context_of(c) for c in retrieval.chunks])
        client = self.llm
        with phase(log, "generation", provider=client.name) as done:
            answer = self._answer(client, prompt, retrieval.chunks)
            done["degraded_reason"] = answer.degraded_reason
        generated = time.perf_counter()
        text = answer.text
        return ExplainResult(
            explanation=f"{retrieval.note}\n\n{text}" if retrieval.note else text,
            latency_ms=round((generated - started) * 1000, 3),
            retrieved_context_count=len(retrieval.chunks),
            citations=[Citation.of(c) for c in retrieval.chunks],
            retrieval_ms=round((retrieved - started) * 1000, 3),
            generation_ms=round((generated - retrieved) * 1000, 3),
            provider=client.name,
            degraded=answer.degraded_reason is not None,
            degraded_reason=answer.degraded_reason,
            grounded=answer.grounding.grounded or answer.degraded_reason is not None,
            unsupported=answer.grounding.unsupported,
            intent=intent.kind,
            **_dates(None if "date" in retrieval.relaxed else retrieval.filters),
        )

    def anchor(self, tenant: str | None) -> dt.date:
        """The day relative dates count from: the tenant's latest complete day (today before any)."""
        from costlake.catalog import readers

        return readers.latest_complete_date(self.wh, tenant) or dt.date.today()

    def _from_tables(
        self,
        question: str,
        tenant: str | None,
        intent: Intent,
        anchor: dt.date,
        started: float,
        given: QueryFilters | None,
    ) -> ExplainResult:
        """A look-up, comparison or trend: composed from the rows the tenant-scoped readers read,
        and checked against them. No index and no model are needed."""
        from costlake.rag import answers

        with phase(log, "tables", intent=intent.kind) as done:
            names = answers.Names.read(self.wh, tenant)
            accounts = {a: question_name(a, name) for a, name in names.accounts.items()}
            services = {*KNOWN_SERVICES, *names.services}
            parsed = parse_query(
                question, accounts=accounts, services=services, today=anchor, every_service=True
            )
            filters = narrowed(parsed, given)
            if intent.kind == "lookup":
                found = answers.lookup(self.wh, tenant, names, filters, intent, anchor)
            else:  # a comparison or a trend: the caller's dates replace the periods the question names
                window = answers.given_window(given, anchor)
                compare = answers.comparison if intent.kind == "comparison" else answers.trend
                found = compare(self.wh, tenant, names, question, filters, intent, anchor, window)
            done["rows"] = found.rows_read
        read = time.perf_counter()
        grounding = check_grounding(found.text, found.context)
        finished = time.perf_counter()
        return ExplainResult(
            explanation=found.text,
            latency_ms=round((finished - started) * 1000, 3),
            retrieved_context_count=len(found.context),
            citations=[],
            retrieval_ms=round((read - started) * 1000, 3),
            generation_ms=round((finished - read) * 1000, 3),
            provider="offline",
            degraded=False,
            degraded_reason=None,
            grounded=grounding.grounded,
            unsupported=grounding.unsupported,
            intent=intent.kind,
            date_from=found.date_from.isoformat(),
            date_to=found.date_to.isoformat(),
        )

    def _answer(self, client: LLMClient, prompt: Prompt, chunks: Sequence[Chunk]) -> _Answer:
        """The model's answer and its grounding; when the provider fails (and the settings allow it), the
        retrieved anomalies' own sentences; when the answer is not grounded, by default the offline
        composition (see the module doc)."""
        try:
            text = client.generate(prompt)
            if len(text) > MAX_ANSWER_CHARS:  # a server that ignores max_tokens, or is hostile
                raise LLMTerminalError(
                    f"its answer is {len(text):,} characters long, over the {MAX_ANSWER_CHARS:,} allowed"
                )
        except LLMError as exc:
            if self.wh.settings.llm_failure == "error":
                raise
            # What the provider said stays in the log: it may hold its URL, credentials or the prompt.
            log.warning("%s failed: %s", client.label, exc, extra={"provider": client.name})
            found = "\n".join(f"- [{c.chunk_id}] {c.text}" for c in chunks) or "No anomaly matched."
            text = f"The explanation service is unavailable; the retrieved anomalies are:\n{found}"
            return _Answer(text, GroundingResult(True, []), "provider_error")
        with phase(log, "grounding") as done:
            grounding = check_grounding(text, prompt.facts)
            done["grounded"] = grounding.grounded
        if grounding.grounded or self.wh.settings.llm_ungrounded == "flag":
            return _Answer(text, grounding)
        log.info(
            "%s: the answer is not grounded (unsupported: %s); answering with the offline composition",
            client.label,
            ", ".join(grounding.unsupported),
            extra={"provider": client.name, "unsupported": grounding.unsupported},
        )
        return _Answer(compose_explanation(prompt.context, facts=prompt.facts), grounding, "ungrounded")


def ranked(retrieval: Retrieval, pool: Sequence[Chunk], intent: Intent) -> Retrieval:
    """`retrieval` with its chunks replaced by every matching anomaly of the pool in order of impact
    (`answers.rank`), and a numbered list of them, composed from their fields, as its note."""
    from costlake.rag.answers import rank

    chunks = rank(pool, retrieval.filters, intent)
    if not chunks:
        return replace(retrieval, chunks=[], note=f"No anomaly matched {describe(retrieval.filters)}.")
    what = {"increase": "cost increases", "decrease": "cost decreases"}.get(
        intent.order or "", "cost anomalies"
    )
    scope = describe(replace(retrieval.filters, direction=None))
    if scope == "any anomaly":
        scope = ""
    else:  # "anomalies in March 2025" or "service AmazonRDS in March 2025"
        scope = " " + scope.removeprefix("anomalies ") if scope.startswith("anomalies ") else " for " + scope
    head = (
        f"The largest of the {what}{scope}, by impact:"
        if len(chunks) == 1
        else f"The {len(chunks)} largest {what}{scope}, by impact:"
    )
    lines = [head] + [f"{n}. {ranked_line(c)}" for n, c in enumerate(chunks, start=1)]
    return replace(retrieval, chunks=chunks, note="\n".join(lines))


def ranked_line(chunk: Chunk) -> str:
    """'Amazon EC2, account 1234 (web), 2025-02-11: +$1,361.00 (spike) [anom-...]', names as the
    chunk shows them (display names, through the name policy)."""
    meta = chunk.metadata
    who = account_phrase(str(meta.get("account_id", chunk.account_id)), meta.get("account_name"))
    kind = str(meta.get("kind", "anomaly")).replace("_", " ")
    return (
        f"{service_phrase(meta)}, {who}, {chunk.usage_date}: {format_signed_usd(chunk.impact_usd)} "
        f"({kind}) [{chunk.chunk_id}]"
    )


def _dates(filters: QueryFilters | None) -> dict[str, str | None]:
    """The date range an answer from the anomalies used (None when it was not constrained)."""
    if filters is None:
        return {"date_from": None, "date_to": None}
    return {
        "date_from": filters.date_from.isoformat() if filters.date_from else None,
        "date_to": filters.date_to.isoformat() if filters.date_to else None,
    }
