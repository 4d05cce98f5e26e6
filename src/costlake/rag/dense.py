"""Dense ranking's two helpers: exact cosine search over a few thousand chunk vectors, and the
vectors of the questions asked.

A question's vector is kept in memory, per tenant and bounded, and never written to the embedding
cache on disk: questions come from callers (API clients among them), so persisting them would let any
client grow the disk without end, and a cache shared between tenants would let one tenant learn from
the time of an answer that another one asked the same question.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Collection, Sequence

import numpy as np

from costlake.rag.chunks import Chunk
from costlake.rag.embedders.base import Embedder
from costlake.rag.embedders.cache import CachedEmbedder

QUESTION_VECTORS = 256  # per tenant
ALL_QUESTION_VECTORS = 4096  # over all tenants: 6 MB of 384-float vectors


class InMemoryDenseSearch:
    """Exact cosine top-k with numpy over unit vectors, restricted to candidate ids (a `DenseSearch`).

    >>> search = InMemoryDenseSearch(["b", "a", "c"], np.array([[1, 0], [1, 0], [0, 1]], np.float32))
    >>> search(np.array([1, 0], np.float32), 2, {"a", "b", "c"})
    [('a', 1.0), ('b', 1.0)]
    >>> search(np.array([1, 0], np.float32), 5, {"c"})
    [('c', 0.0)]
    """

    def __init__(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        if len(ids) != len(vectors) or len(set(ids)) != len(ids):
            raise ValueError("InMemoryDenseSearch: ids must be unique, one per vector")
        order = sorted(range(len(ids)), key=lambda i: ids[i])
        self._ids = [ids[i] for i in order]
        self._row = {chunk_id: row for row, chunk_id in enumerate(self._ids)}
        self._vectors = np.asarray(vectors, dtype=np.float32)[order] if len(ids) else np.zeros((0, 0))

    @classmethod
    def from_chunks(cls, chunks: Sequence[Chunk], embedder: Embedder) -> InMemoryDenseSearch:
        return cls([c.chunk_id for c in chunks], embedder.embed_batch([c.text for c in chunks]))

    def __call__(self, query_vec: np.ndarray, k: int, candidates: Collection[str]) -> list[tuple[str, float]]:
        rows = np.array(sorted(self._row[c] for c in set(candidates) if c in self._row), dtype=np.int64)
        if k <= 0 or rows.size == 0:
            return []
        scores = self._vectors[rows] @ np.asarray(query_vec, dtype=np.float32)
        best = np.lexsort((rows, -scores))[:k]  # rows are in id order, so ties go to the smaller id
        return [(self._ids[rows[i]], float(scores[i])) for i in best]


class QuestionVectors:
    """The vectors of each tenant's recent questions, least recently used dropped first: `size` per
    tenant, so one tenant's flood of questions never evicts another's, and `in_all` over every tenant
    (then the tenant holding the most gives up its oldest). Questions are kept as digests: a
    2,000-character question costs 32 bytes beside its vector, whatever its script.

    >>> from costlake.rag.embedders.base import HashingEmbedder
    >>> vectors = QuestionVectors(HashingEmbedder(dim=8), size=1)
    >>> bool((vectors.get("why", "a") == vectors.get("why", "b")).all()), len(vectors)
    (True, 2)
    >>> _ = vectors.get("how", "a"); vectors.has("why", "a"), vectors.has("why", "b")
    (False, True)
    """

    def __init__(
        self, embedder: Embedder, size: int = QUESTION_VECTORS, in_all: int = ALL_QUESTION_VECTORS
    ) -> None:
        # Through a persistent cache's model directly: questions never reach its disk or memory.
        self._embedder = embedder.inner if isinstance(embedder, CachedEmbedder) else embedder
        self._size, self._in_all, self._count = size, in_all, 0
        self._tenants: dict[str | None, OrderedDict[bytes, np.ndarray]] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._count

    def has(self, question: str, tenant: str | None) -> bool:
        """Whether the question's vector is at hand (`get` then costs no model call)."""
        with self._lock:
            own = self._tenants.get(tenant)
            return own is not None and _digest(question) in own

    def get(self, question: str, tenant: str | None) -> np.ndarray:
        key = _digest(question)
        with self._lock:
            own = self._tenants.get(tenant)
            found = None if own is None else own.get(key)
            if own is not None and found is not None:
                own.move_to_end(key)
                return found
        vector = self._embedder.embed(question)
        with self._lock:
            own = self._tenants.setdefault(tenant, OrderedDict())
            self._count += key not in own
            own[key] = vector
            while len(own) > self._size:
                own.popitem(last=False)
                self._count -= 1
            while self._count > self._in_all:
                largest = max(self._tenants, key=lambda t: len(self._tenants[t]))
                self._tenants[largest].popitem(last=False)
                self._count -= 1
                if not self._tenants[largest]:
                    del self._tenants[largest]
        return vector


def _digest(question: str) -> bytes:
    return hashlib.sha256(question.encode("utf-8", "surrogatepass")).digest()
