"""What `costlake index` hands the vector index: each chunk's embedding text, re-embedded in full when an
older index holds vectors of other texts, and the embedder the settings configure."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa

from costlake.rag.chunks import Chunk, build_chunks
from costlake.rag.embed_text import embed_hash, embed_text
from costlake.rag.embedders import HashingEmbedder
from costlake.rag.embedders.minilm import MiniLMEmbedder, usable_cores
from costlake.rag.index import IndexItem, SyncReport, VectorIndex
from costlake.rag.indexer import configured_embedder, index_items
from costlake.settings import Settings
from costlake.tables import COST_ANOMALIES

EMBEDDER = HashingEmbedder(dim=64)
SERVICES = ("AmazonEC2", "AmazonS3", "AmazonRDS")


def chunks() -> list[Chunk]:
    rows = [
        {
            "account_id": f"11112222333{i % 2}",
            "service_name": SERVICES[i % 3],
            "usage_date": date(2025, 3, 1 + i),
            "method": "baseline",
            "kind": "spike" if i % 2 else "dip",
            "direction": "up" if i % 2 else "down",
            "actual_usd": Decimal(100 + i),
            "expected_usd": Decimal(40),
            "impact_usd": Decimal(60 + i),
            "contributors": json.dumps([{"dimension": "region", "value": "us-east-1"}]),
        }
        for i in range(6)
    ]
    accounts = pa.table(
        {
            "account_id": ["111122223330", "111122223331"],
            "account_name": ["payments-prod", "search-dev"],
            "tenant_id": ["acme", "globex"],
        }
    )
    return build_chunks(pa.Table.from_pylist(rows, schema=COST_ANOMALIES.arrow_schema()), accounts)


def test_items_carry_the_embedding_text_and_its_hash() -> None:
    made = chunks()
    items = index_items(made)
    assert [(i.chunk_id, i.tenant_id) for i in items] == [(c.chunk_id, c.tenant_id) for c in made]
    assert [i.text for i in items] == [embed_text(c.metadata) for c in made]
    assert [i.content_hash for i in items] == [embed_hash(i.text) for i in items]


def test_an_index_of_sentences_is_re_embedded_in_full_not_mixed(tmp_path: Path) -> None:
    """An index an earlier version built from the chunk sentences: every vector is replaced."""
    made = chunks()
    old = VectorIndex.create(tmp_path / "old", EMBEDDER.embedder_id, EMBEDDER.dim)
    old.sync([IndexItem(c.chunk_id, c.tenant_id, c.text, c.content_hash) for c in made], EMBEDDER.embed_batch)
    assert old.sync(index_items(made), EMBEDDER.embed_batch) == SyncReport(0, len(made), 0, 0)
    fresh = VectorIndex.create(tmp_path / "fresh", EMBEDDER.embedder_id, EMBEDDER.dim)
    fresh.sync(index_items(made), EMBEDDER.embed_batch)
    old_vectors, fresh_vectors = old.vectors(), fresh.vectors()
    assert old_vectors.keys() == fresh_vectors.keys()
    assert all(np.array_equal(old_vectors[c], fresh_vectors[c]) for c in fresh_vectors)


def test_the_minilm_threads_setting_reaches_the_embedder(tmp_path: Path) -> None:
    def threads_of(**settings: object) -> int:
        cached = configured_embedder(Settings(warehouse=str(tmp_path), **settings), tmp_path)  # type: ignore[arg-type]
        assert isinstance(cached.inner, MiniLMEmbedder)
        return cached.inner.threads

    assert threads_of() == usable_cores()
    assert threads_of(embedder_threads=1) == 1
