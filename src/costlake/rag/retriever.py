"""Hybrid retrieval of anomaly chunks: tenant filter, filters parsed from the question, then BM25 and
dense rankings fused by reciprocal rank.

The tenant filter comes first and is never relaxed: a tenant sees only its own chunks, whatever the
question says. The parsed filters come next; when they leave nothing, they are relaxed one at a time
(direction, then an exact day widened to its month, then the date, then the service), and at most
`NEAREST` anomalies are returned with a note that says none matched and that these do not. The
account filter is never dropped: in the lab, dropping every filter surfaced a wrong account.

>>> rrf_fuse([["a", "b", "c"], ["c", "a"]])
[('a', 0.032522...), ('c', 0.032266...), ('b', 0.016129...)]
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from typing import Literal

import numpy as np
import pyarrow as pa

from costlake.catalog.readers import service_key
from costlake.errors import ConfigError, InputError
from costlake.rag.bm25 import BM25Ranker
from costlake.rag.chunks import Chunk
from costlake.rag.dense import InMemoryDenseSearch, QuestionVectors
from costlake.rag.embedders.base import Embedder
from costlake.rag.query_parser import QueryFilters, parse_query
from costlake.rag.service_words import KNOWN_SERVICES
from costlake.text.names import LABEL, is_shown, name_hash, shown_value, with_kind

Mode = Literal["hybrid", "bm25", "dense"]
#: dense_search(query_vec, k, candidate_chunk_ids) -> [(chunk_id, cosine)], best first, only candidates
DenseSearch = Callable[[np.ndarray, int, Collection[str]], list[tuple[str, float]]]
RRF_K = 60
#: the order in which parsed filters are relaxed when nothing matches (the account filter never is)
RELAX_ORDER = ("direction", "day_to_month", "date", "service")
#: anomalies shown, labelled as not matching, when none matches the question
NEAREST = 3
_MODES = ("hybrid", "bm25", "dense")
_MONTH_NAMES = ("January", "February", "March", "April", "May", "June", "July", "August", "September",
                "October", "November", "December")  # fmt: skip


@dataclass(frozen=True)
class Retrieval:
    """Chunks best first; the filters applied (before relaxation); the relaxations, in order; a note for
    the reader when the question could not be matched as asked; timings in milliseconds."""

    chunks: list[Chunk]
    filters: QueryFilters
    relaxed: list[str]
    note: str | None
    timings: dict[str, float] = field(default_factory=dict, compare=False)


def rrf_fuse(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[tuple[str, float]]:
    """Reciprocal-rank fusion: score = sum of 1 / (k + rank), rank from 1; ties go to the smaller id."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc_id in enumerate(ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def one_spelling(services: Collection[str]) -> list[str]:
    """One name per service (the parser gives a service's lake spelling and its usual one, which
    compare equal): the one with capitals, for people.

    >>> one_spelling({"amazons3", "AmazonS3", "AWSLambda"})
    ['AWSLambda', 'AmazonS3']
    """
    chosen: dict[str, str] = {}
    for name in sorted(services, key=lambda n: (n.islower(), n)):
        chosen.setdefault(service_key(name), name)
    return sorted(chosen.values())


def relax_steps(filters: QueryFilters) -> list[tuple[str, QueryFilters]]:
    """The successively looser filters to try, each with the name of what it relaxed (`RELAX_ORDER`)."""
    steps: list[tuple[str, QueryFilters]] = []
    current = filters
    if current.direction is not None:
        current = replace(current, direction=None)
        steps.append(("direction", current))
    if current.single_day and current.date_from is not None:
        first = current.date_from.replace(day=1)
        current = replace(current, date_from=first, date_to=_month_end(first))
        steps.append(("day_to_month", current))
    if current.date_from is not None or current.date_to is not None:
        current = replace(current, date_from=None, date_to=None)
        steps.append(("date", current))
    if current.service_names:
        current = replace(current, service_names=frozenset())
        steps.append(("service", current))
    return steps


def matches(chunk: Chunk, filters: QueryFilters) -> bool:
    """Whether `chunk` satisfies every constraint in `filters` (services compare case-insensitively)."""
    return matcher(filters)(chunk)


def matcher(filters: QueryFilters) -> Callable[[Chunk], bool]:
    """`matches` for one set of filters, their services' keys computed once for a whole pool."""
    keys = {_service_key(s) for s in filters.service_names}

    def match(chunk: Chunk) -> bool:
        if filters.account_ids and chunk.account_id not in filters.account_ids:
            return False
        if filters.service_names and _service_key(chunk.service_name) not in keys:
            return False
        if filters.date_from is not None and chunk.usage_date < filters.date_from:
            return False
        if filters.date_to is not None and chunk.usage_date > filters.date_to:
            return False
        return filters.direction is None or chunk.direction == filters.direction

    return match


def _listed(kind: str, shown: list[str]) -> str:
    """How the filters name one kind: "service AmazonRDS", "services AmazonRDS, AmazonS3"; a withheld
    name's label names its kind itself ("service 3f2a9c (name withheld)", never "service service …")."""
    if len(shown) == 1:
        return with_kind(kind, shown[0])
    return f"{kind}s " + ", ".join(shown)


_service_key = lru_cache(maxsize=4096)(service_key)  # the few service names a lake has


def describe(filters: QueryFilters) -> str:
    """Filters in words for notes (services through the name policy: a note is text for people).

    >>> describe(QueryFilters(service_names=frozenset({"AmazonRDS"}), date_from=date(2025, 3, 2),
    ...                       date_to=date(2025, 3, 2), direction="up"))
    'increases in service AmazonRDS on 2025-03-02'
    """
    nouns = []
    if filters.account_ids:
        accounts = sorted(str(shown_value("account_id", a)) for a in filters.account_ids)
        nouns.append(_listed("account", accounts))
    if filters.service_names:
        shown = sorted(str(shown_value("service_name", s)) for s in one_spelling(filters.service_names))
        nouns.append(_listed("service", shown))
    text = ", ".join(nouns)
    if filters.direction is not None:
        text = ("increases" if filters.direction == "up" else "decreases") + (f" in {text}" if text else "")
    start, end = filters.date_from, filters.date_to
    if start is not None and end is not None:
        if start == end:
            when = f"on {start}"
        elif start.day == 1 and end == _month_end(start):
            when = f"in {_MONTH_NAMES[start.month - 1]} {start.year}"
        else:
            when = f"from {start} to {end}"
        text = f"{text} {when}" if text else f"anomalies {when}"
    elif start is not None or end is not None:
        text = f"{text} {'since ' + str(start) if start else 'until ' + str(end)}".strip()
    return text or "any anomaly"


class Retriever:
    """Retrieval over one list of chunks (all tenants); see `retrieve`.

    `accounts` is dim_account (account_id, account_name, tenant_id): account names in a question are
    read only against the asking tenant's accounts, so another tenant's names are never revealed or
    resolved. Services are read against `services` (default: the canonical names the parser knows) plus
    the tenant's own, never against what other tenants have. `today` (for "last week") defaults to the
    date of each call. Without `dense_search`, an embedder gets an exact in-memory numpy search.
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        embedder: Embedder | None = None,
        dense_search: DenseSearch | None = None,
        *,
        accounts: pa.Table | None = None,
        services: Collection[str] | None = None,
        today: date | None = None,
        rrf_k: int = RRF_K,
    ) -> None:
        self._chunks = {c.chunk_id: c for c in sorted(chunks, key=lambda c: c.chunk_id)}
        if len(self._chunks) != len(chunks):
            raise InputError("Retriever: two chunks share a chunk_id; rebuild the chunks")
        self._embedder = embedder
        self._questions = QuestionVectors(embedder) if embedder is not None else None
        if dense_search is None and embedder is not None:
            dense_search = InMemoryDenseSearch.from_chunks(list(self._chunks.values()), embedder)
        self._dense_search = dense_search
        self._services = frozenset(KNOWN_SERVICES if services is None else services)
        self._today = today
        self._rrf_k = rrf_k
        self._by_tenant: dict[str | None, list[Chunk]] = {None: list(self._chunks.values())}
        self._names: dict[str | None, dict[str, str]] = {None: {}}
        self._own_services: dict[str | None, set[str]] = {None: {c.service_name for c in chunks}}
        # An account's name as dim_account has it now first: one renamed since `costlake index` is
        # asked about by its new name, and its old one (in the chunks) no longer names it
        if accounts is not None:
            for row in accounts.select(["account_id", "account_name", "tenant_id"]).to_pylist():
                if row["account_id"] is not None and row["tenant_id"] is not None:
                    self._add_name(row["tenant_id"], row["account_id"], row["account_name"] or "")
        for chunk in self._chunks.values():
            self._by_tenant.setdefault(chunk.tenant_id, []).append(chunk)
            self._own_services.setdefault(chunk.tenant_id, set()).add(chunk.service_name)
            self._add_name(chunk.tenant_id, chunk.account_id, chunk.account_name)
        self._rankers: dict[str | None, BM25Ranker] = {}

    def _add_name(self, tenant_id: str, account_id: str, name: str) -> None:
        name = question_name(account_id, name)
        self._names.setdefault(tenant_id, {}).setdefault(account_id, name)
        self._names[None].setdefault(account_id, name)

    def knows(self, question: str, tenant_id: str | None) -> bool:
        """Whether retrieving for `question` needs no model call: its vector is at hand (or no
        model is used)."""
        return self._questions is None or self._questions.has(question, tenant_id)

    def retrieve(
        self,
        question: str,
        *,
        tenant_id: str | None,
        k: int = 5,
        mode: Mode = "hybrid",
        use_filters: bool = True,
        today: date | None = None,
        given: QueryFilters | None = None,
    ) -> Retrieval:
        """The `k` best chunks for `question` among `tenant_id`'s (None: every tenant, for admins);
        relative dates count from `today` (default: the retriever's); `given` filters (an API
        caller's) replace what the question says about the same thing."""
        if k < 1:
            raise InputError(f"k must be at least 1, got {k}")
        if mode not in _MODES:
            raise InputError(f"unknown retrieval mode {mode!r}: choose one of {', '.join(_MODES)}")
        if mode == "dense" and (self._embedder is None or self._dense_search is None):
            raise ConfigError("retrieval mode 'dense' needs an embedder; configure one or use 'bm25'")
        started = time.perf_counter()
        pool = self.pool(tenant_id)
        filters = self.parse(question, tenant_id, today=today) if use_filters else QueryFilters()
        filters = narrowed(filters, given)
        parsed = time.perf_counter()
        candidates, relaxed, note = _filter(pool, filters)
        filtered = time.perf_counter()
        timings = {"parse_ms": _ms(started, parsed), "filter_ms": _ms(parsed, filtered)}
        if relaxed:  # none matches: at most a few of the nearest, labelled as not matching (`_filter`)
            k = min(k, NEAREST)
        ranked = self._rank(question, candidates, k, mode, tenant_id, timings) if candidates else []
        timings["total_ms"] = _ms(started, time.perf_counter())
        return Retrieval(ranked, filters, relaxed, note, timings)

    def pool(self, tenant_id: str | None) -> list[Chunk]:
        """The tenant's chunks (None: every tenant's), by chunk id."""
        return self._by_tenant.get(tenant_id, [])

    def parse(
        self,
        question: str,
        tenant_id: str | None,
        *,
        today: date | None = None,
        services: Collection[str] = (),
    ) -> QueryFilters:
        """The filters of `question`, its names read against the tenant's own accounts and services
        only (plus `services`, e.g. the tenant's published ones) and the services the parser knows."""
        names = self._names.get(tenant_id, {})
        known = self._services | self._own_services.get(tenant_id, set()) | set(services)
        return parse_query(
            question, accounts=names, services=known, today=today or self._today or date.today()
        )

    def _rank(
        self,
        question: str,
        candidates: list[Chunk],
        k: int,
        mode: Mode,
        tenant_id: str | None,
        timings: dict[str, float],
    ) -> list[Chunk]:
        ids = {c.chunk_id for c in candidates}
        depth = min(len(candidates), max(50, 10 * k))
        rankings: list[list[str]] = []
        start = time.perf_counter()
        if mode in ("hybrid", "bm25"):
            rankings.append([doc_id for doc_id, _ in self._ranker(tenant_id).rank(question, ids, depth)])
        bm25_done = time.perf_counter()
        use_dense = mode == "dense" or (mode == "hybrid" and len(candidates) > 1)
        if use_dense and self._questions is not None and self._dense_search is not None:
            query_vec = self._questions.get(question, tenant_id)
            hits = self._dense_search(query_vec, depth, ids)
            # the tenant boundary does not depend on the index honouring `candidates`
            rankings.append(list(dict.fromkeys(doc_id for doc_id, _ in hits if doc_id in ids)))
        dense_done = time.perf_counter()
        order = [doc_id for doc_id, _ in rrf_fuse(rankings, self._rrf_k)]
        best = [self._chunks[doc_id] for doc_id in order[:k]]
        if len(best) < k:  # candidates no ranking reached (no shared word): largest impact first
            seen = set(order)
            rest = sorted(
                (c for c in candidates if c.chunk_id not in seen),
                key=lambda c: (-abs(c.impact_usd), c.chunk_id),
            )
            best += rest[: k - len(best)]
        timings.update(
            bm25_ms=_ms(start, bm25_done),
            dense_ms=_ms(bm25_done, dense_done),
            fuse_ms=_ms(dense_done, time.perf_counter()),
        )
        return best

    def _ranker(self, tenant_id: str | None) -> BM25Ranker:
        """BM25 over the tenant's own chunks only: term statistics never mix tenants."""
        ranker = self._rankers.get(tenant_id)
        if ranker is None:
            ranker = BM25Ranker((c.chunk_id, c.text) for c in self._by_tenant.get(tenant_id, []))
            self._rankers[tenant_id] = ranker
        return ranker


def question_name(account_id: str, name: str | None) -> str:
    """What a question may call the account: its name, or the hash of its label when the name was
    withheld (the question "... account 3f2a9c ..." finds it); never shown, only matched."""
    name = name or ""
    label = LABEL.fullmatch(name)
    if label is not None:
        name = name.rsplit(" ", 3)[1]
    elif name and not is_shown(name):
        name = name_hash(name)
    return name or account_id


def _filter(pool: list[Chunk], filters: QueryFilters) -> tuple[list[Chunk], list[str], str | None]:
    """Candidates, the relaxations applied, and a note when the question could not be matched as asked."""
    if filters.account_ids:
        pool = [c for c in pool if c.account_id in filters.account_ids]
        if not pool:
            return [], [], f"No anomaly found for {describe(QueryFilters(account_ids=filters.account_ids))}."
    if not pool:
        return [], [], "No anomaly matched the question."
    active, relaxed = filters, []
    candidates = list(filter(matcher(active), pool))
    for name, looser in relax_steps(filters):
        if candidates:
            break
        active = looser
        relaxed.append(name)
        candidates = list(filter(matcher(active), pool))
    note = None
    if relaxed:
        remaining = describe(active)
        nearest = "" if remaining == "any anomaly" else f" ({remaining})"
        note = (
            f"No anomaly matched {describe(filters)}. The nearest anomalies{nearest} are listed below; "
            "they do not match the question."
        )
    return candidates, relaxed, note


def _month_end(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1) - timedelta(days=1)


def _ms(start: float, end: float) -> float:
    return round((end - start) * 1000.0, 3)


def narrowed(parsed: QueryFilters, given: QueryFilters | None) -> QueryFilters:
    """`parsed` (a question's own filters) with every constraint that `given` sets (an API caller's
    explicit filters) in place of the question's.

    >>> narrowed(QueryFilters(account_ids=frozenset({"1"})), QueryFilters(date_to=date(2025, 1, 2))).date_to
    datetime.date(2025, 1, 2)
    """
    if given is None:
        return parsed
    fields = ("account_ids", "service_names", "date_from", "date_to", "direction")
    chosen = {f: getattr(given, f) for f in fields if getattr(given, f)}
    matched = {**parsed.matched, **{f"given {f}": str(v) for f, v in chosen.items()}}
    return replace(parsed, **chosen, matched=matched)
