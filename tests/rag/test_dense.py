"""Question vectors: in memory, per tenant, bounded, never on disk (rag/dense.py)."""

from __future__ import annotations

from pathlib import Path

from costlake.rag.dense import QuestionVectors
from costlake.rag.embedders.base import HashingEmbedder
from costlake.rag.embedders.cache import CachedEmbedder


class Counting(HashingEmbedder):
    """The hashing embedder, counting the texts it embeds."""

    def __init__(self) -> None:
        super().__init__(dim=16)
        self.texts: list[str] = []

    def _embed_all(self, texts: list[str]):  # type: ignore[no-untyped-def]
        self.texts += texts
        return super()._embed_all(texts)


def test_questions_never_reach_the_embedding_cache_on_disk(tmp_path: Path) -> None:
    model = Counting()
    cached = CachedEmbedder(model, tmp_path / "embeddings")
    cached.embed_batch(["a chunk's text"])  # what `costlake index` stores
    vectors = QuestionVectors(cached)
    for n in range(50):
        vectors.get(f"why did cost {n} jump?", "tenant-a")
    assert len(cached) == 1  # still only the chunk
    assert len(model.texts) == 51


def test_each_tenant_has_its_own_entries_and_one_tenants_flood_evicts_only_its_own() -> None:
    model = Counting()
    vectors = QuestionVectors(model, size=2)
    vectors.get("why?", "tenant-a")
    vectors.get("why?", "tenant-b")  # computed again: one tenant's question never speeds up another's
    vectors.get("why?", "tenant-a")  # a hit
    assert model.texts == ["why?", "why?"]
    for question in ("what?", "how?", "when?"):  # over tenant-a's bound: its own oldest go
        vectors.get(question, "tenant-a")
    assert len(vectors) == 3  # two of tenant-a's, tenant-b's one
    assert vectors.has("why?", "tenant-b") and not vectors.has("why?", "tenant-a")
    vectors.get("why?", "tenant-b")  # still a hit
    assert model.texts.count("why?") == 2


def test_every_tenant_together_is_bounded_too_and_the_largest_gives_up_its_oldest() -> None:
    """256 per tenant with no overall bound grew with the tenants (2.5 MB a tenant for 2,000-character
    questions, kept whole): now 4,096 vectors in all by default, the questions kept as digests."""
    vectors = QuestionVectors(HashingEmbedder(dim=4), size=3, in_all=4)
    for question in ("a", "b", "c"):
        vectors.get(question, "flood")
    vectors.get("x", "quiet")
    vectors.get("y", "quiet")  # one over: the largest tenant (flood) gives up its oldest
    assert len(vectors) == 4
    assert not vectors.has("a", "flood") and vectors.has("b", "flood")
    assert vectors.has("x", "quiet") and vectors.has("y", "quiet")
    many = QuestionVectors(HashingEmbedder(dim=4))
    for tenant in range(40):
        for n in range(300):
            many.get(f"{n} " + "ü" * 1990, f"tenant-{tenant}")
    assert len(many) == 4096
