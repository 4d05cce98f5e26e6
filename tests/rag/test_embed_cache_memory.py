"""The embedding cache keeps the vectors of small batches (a question) in memory: a repeated question
is answered without SQLite and without the model, with the very vector SQLite holds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from costlake.rag.embedders import cache as cache_module
from costlake.rag.embedders.base import HashingEmbedder
from costlake.rag.embedders.cache import CachedEmbedder


class CountingEmbedder(HashingEmbedder):
    def __init__(self) -> None:
        super().__init__(16)
        self.embedded = 0

    def _embed(self, texts: list[str]) -> np.ndarray:
        self.embedded += len(texts)
        return super()._embed(texts)


def test_a_repeated_question_reads_neither_the_model_nor_sqlite(tmp_path: Path) -> None:
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path)
    first = cached.embed("why did EC2 spend jump?")
    cached._db = None  # type: ignore[assignment,method-assign]  # SQLite would fail now
    again = cached.embed("why did EC2 spend jump?")
    assert inner.embedded == 1 and (cached.hits, cached.misses) == (1, 1)
    assert again.dtype == np.float32 and np.array_equal(first, again)
    again[:] = 0  # a caller's array is its own
    assert np.array_equal(cached.embed("why did EC2 spend jump?"), first)


def test_memory_holds_what_sqlite_holds(tmp_path: Path) -> None:
    CachedEmbedder(CountingEmbedder(), tmp_path).embed_batch(["a question", "another"])
    inner = CountingEmbedder()
    cached = CachedEmbedder(inner, tmp_path)
    from_sqlite = cached.embed_batch(["another", "a question"])
    assert inner.embedded == 0
    assert np.array_equal(cached.embed_batch(["another", "a question"]), from_sqlite)
    assert np.array_equal(from_sqlite, HashingEmbedder(16).embed_batch(["another", "a question"]))


def test_memory_is_bounded_and_skips_large_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "MEMORY_VECTORS", 3)
    cached = CachedEmbedder(CountingEmbedder(), tmp_path)
    for n in range(5):
        cached.embed(f"question {n}")
    assert list(cached._memory) == ["question 2", "question 3", "question 4"]
    cached.embed("question 2")  # used: now the newest
    cached.embed("question 5")
    assert list(cached._memory) == ["question 4", "question 2", "question 5"]
    cached.embed_batch([f"chunk {n}" for n in range(cache_module._MEMORY_BATCH + 1)])
    assert not any(key.startswith("chunk") for key in cached._memory)
