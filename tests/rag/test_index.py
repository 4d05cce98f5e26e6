"""The FAISS vector index: incremental sync equals a rebuild, persistence, exact cosine, tenant isolation."""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from costlake.errors import ConfigError
from costlake.rag.embedders import HashingEmbedder
from costlake.rag.index import IndexItem, SyncReport, VectorIndex, VectorIndexError, vector_id

EMBEDDER = HashingEmbedder(dim=64)
QUERIES = ["EC2 cost jumped in account 1", "S3 storage rose", "data transfer", "lambda", "rds reserved"]
SERVICES = ["EC2", "S3", "RDS", "Lambda", "CloudFront", "NAT gateway"]


def item(chunk_id: str, tenant: str, text: str) -> IndexItem:
    return IndexItem(chunk_id, tenant, text, hashlib.sha256(text.encode()).hexdigest())


def corpus_v1() -> list[IndexItem]:
    return [
        item(f"t{i % 3}/c{i:02d}", f"t{i % 3}", f"{SERVICES[i % 6]} cost rose {i} percent in account {i % 4}")
        for i in range(30)
    ]


def corpus_v2() -> list[IndexItem]:
    """v1 with 3 chunks removed, 4 texts changed, one chunk moved to another tenant and 5 chunks added."""
    items = {it.chunk_id: it for it in corpus_v1()}
    for gone in ("t0/c00", "t1/c13", "t2/c29"):
        del items[gone]
    for changed in ("t0/c03", "t1/c04", "t2/c05", "t0/c27"):
        items[changed] = item(changed, items[changed].tenant_id, f"{changed} S3 storage fell sharply")
    moved = items["t1/c07"]
    items["t1/c07"] = IndexItem(moved.chunk_id, "t2", moved.text, moved.content_hash)
    for i in range(30, 35):
        items[f"t{i % 3}/c{i}"] = item(f"t{i % 3}/c{i}", f"t{i % 3}", f"data transfer out doubled on day {i}")
    return list(items.values())


class RecordingEmbed:
    """The embed callable `sync` receives: the hashing fake, remembering which texts it was given."""

    def __init__(self) -> None:
        self.calls: list[list[str]] = []

    def __call__(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return EMBEDDER.embed_batch(texts)


def results(index: VectorIndex, **filters: str) -> list[list[tuple[str, float]]]:
    return [index.search(EMBEDDER.embed(q), 8, **filters) for q in QUERIES]


def test_incremental_sync_equals_a_rebuild(tmp_path: Path) -> None:
    incremental = VectorIndex.create(tmp_path / "inc", EMBEDDER.embedder_id, EMBEDDER.dim)
    embed = RecordingEmbed()
    assert incremental.sync(corpus_v1(), embed) == SyncReport(added=30, changed=0, removed=0, unchanged=0)
    embed.calls.clear()
    report = incremental.sync(corpus_v2(), embed)
    assert report == SyncReport(added=5, changed=5, removed=3, unchanged=22)
    # only the 4 changed and 5 new texts were embedded; the moved chunk kept its vector
    assert sorted(embed.calls[0]) == sorted(
        [
            it.text
            for it in corpus_v2()
            if it.chunk_id[-2:] in {"03", "04", "05", "27", "30", "31", "32", "33", "34"}
        ]
    )
    assert incremental.sync(corpus_v2(), embed) == SyncReport(added=0, changed=0, removed=0, unchanged=32)
    assert len(embed.calls) == 1

    rebuilt = VectorIndex.create(tmp_path / "full", EMBEDDER.embedder_id, EMBEDDER.dim)
    rebuilt.sync(corpus_v2(), EMBEDDER.embed_batch)

    assert len(incremental) == len(rebuilt) == 32
    assert incremental.chunk_ids() == rebuilt.chunk_ids()
    for tenant in ("t0", "t1", "t2"):
        assert incremental.chunk_ids(tenant) == rebuilt.chunk_ids(tenant)
    assert "t1/c07" in incremental.chunk_ids("t2")
    assert all(incremental.content_hash(c) == rebuilt.content_hash(c) for c in rebuilt.chunk_ids())
    inc_vectors, full_vectors = incremental.vectors(), rebuilt.vectors()
    assert inc_vectors.keys() == full_vectors.keys()
    assert all(np.array_equal(inc_vectors[c], full_vectors[c]) for c in full_vectors)
    assert results(incremental) == results(rebuilt)
    assert results(incremental, tenant_id="t2") == results(rebuilt, tenant_id="t2")


def test_saved_and_reopened_index_answers_identically(tmp_path: Path) -> None:
    index = VectorIndex.create(tmp_path / "idx", EMBEDDER.embedder_id, EMBEDDER.dim)
    index.sync(corpus_v1(), EMBEDDER.embed_batch)
    index.save()
    index.sync(corpus_v2(), EMBEDDER.embed_batch)
    index.save()
    assert len(list((tmp_path / "idx").glob("vectors-*.faiss"))) == 1  # the previous file was dropped
    assert sorted(p.name for p in (tmp_path / "idx").iterdir() if p.name.startswith(".")) == []

    reopened = VectorIndex.open(tmp_path / "idx", expect_embedder_id="hashing:64")
    assert (reopened.embedder_id, reopened.dim, len(reopened)) == ("hashing:64", 64, 32)
    assert reopened.chunk_ids() == index.chunk_ids()
    assert results(reopened) == results(index)
    assert results(reopened, tenant_id="t0") == results(index, tenant_id="t0")
    meta = json.loads((tmp_path / "idx" / "index.json").read_text())
    assert {c["chunk_id"]: c["id"] for c in meta["chunks"]} == {c: vector_id(c) for c in index.chunk_ids()}
    # an unchanged index saves to the same bytes
    before = (tmp_path / "idx" / "index.json").read_bytes()
    reopened.save()
    assert (tmp_path / "idx" / "index.json").read_bytes() == before


def test_open_refuses_missing_foreign_and_damaged_indexes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no vector index in .*: build the index first"):
        VectorIndex.open(tmp_path / "nothing")
    index = VectorIndex.create(tmp_path / "idx", EMBEDDER.embedder_id, EMBEDDER.dim)
    index.sync(corpus_v1(), EMBEDDER.embed_batch)
    index.save()
    with pytest.raises(ConfigError, match="built by hashing:64, not minilm:384: rebuild it"):
        VectorIndex.open(tmp_path / "idx", expect_embedder_id="minilm:384")
    with pytest.raises(ConfigError, match="already holds a vector index"):
        VectorIndex.create(tmp_path / "idx", EMBEDDER.embedder_id, EMBEDDER.dim)
    (vectors_file,) = (tmp_path / "idx").glob("vectors-*.faiss")
    vectors_file.write_bytes(vectors_file.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(VectorIndexError, match="does not match .*index.json: rebuild the index"):
        VectorIndex.open(tmp_path / "idx")


def test_an_id_collision_is_detected(tmp_path: Path) -> None:
    """A real sha256 collision cannot be made, so the index file is edited to hold one."""
    index = VectorIndex.create(tmp_path / "idx", EMBEDDER.embedder_id, EMBEDDER.dim)
    index.sync([item("b", "t0", "EC2")], EMBEDDER.embed_batch)
    index.save()
    meta_path = tmp_path / "idx" / "index.json"
    meta_path.write_text(meta_path.read_text().replace('"chunk_id": "b"', '"chunk_id": "a"'))
    with pytest.raises(VectorIndexError, match="chunk ids 'a' and 'b' share vector id"):
        VectorIndex.open(tmp_path / "idx").sync([item("b", "t0", "EC2")], EMBEDDER.embed_batch)


def test_sync_rejects_duplicates_and_wrong_shapes(tmp_path: Path) -> None:
    index = VectorIndex.create(tmp_path / "idx", EMBEDDER.embedder_id, EMBEDDER.dim)
    with pytest.raises(ConfigError, match="chunk id 'x' appears twice"):
        index.sync([item("x", "t", "a"), item("x", "t", "b")], EMBEDDER.embed_batch)
    with pytest.raises(ConfigError, match=r"embed returned shape \(1, 8\), index hashing:64 needs \(1, 64\)"):
        index.sync([item("x", "t", "a")], HashingEmbedder(dim=8).embed_batch)
    assert len(index) == 0  # a failed sync changes nothing
    with pytest.raises(ConfigError, match="query vector has 8 dimensions"):
        index.search(np.ones(8), 3)


def vectors_embed(table: dict[str, np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    return lambda texts: np.stack([table[t] for t in texts])


def test_faiss_scores_equal_numpy_cosine_top_k(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    matrix = rng.normal(size=(400, 48)).astype(np.float32)
    table = {f"text {i}": matrix[i] for i in range(400)}
    index = VectorIndex.create(tmp_path / "idx", "random:48", 48)
    index.sync([item(f"c{i:03d}", f"t{i % 5}", f"text {i}") for i in range(400)], vectors_embed(table))
    unit = matrix / np.linalg.norm(matrix, axis=1, keepdims=True)
    for query in rng.normal(size=(20, 48)).astype(np.float32):
        cosine = unit @ (query / np.linalg.norm(query))
        top = np.argsort(-cosine, kind="stable")[:10]
        got = index.search(query, 10)
        assert [c for c, _ in got] == [f"c{i:03d}" for i in top]
        assert np.allclose([s for _, s in got], cosine[top], atol=1e-5)
        # filtered: numpy restricted to tenant t3 and an allow-list, ranked after filtering
        allowed = {f"c{i:03d}" for i in range(0, 400, 2)}
        keep = [i for i in range(400) if i % 5 == 3 and f"c{i:03d}" in allowed]
        best = sorted(keep, key=lambda i: -cosine[i])[:10]
        got = index.search(query, 10, tenant_id="t3", allowed_chunk_ids=allowed)
        assert [c for c, _ in got] == [f"c{i:03d}" for i in best]


def test_ties_are_broken_by_chunk_id(tmp_path: Path) -> None:
    index = VectorIndex.create(tmp_path / "idx", EMBEDDER.embedder_id, EMBEDDER.dim)
    same = [item(f"dup-{c}", "t", "EC2 cost rose") for c in "qwertyuiop"]
    index.sync([*same, item("other", "t", "S3 storage")], EMBEDDER.embed_batch)
    got = index.search(EMBEDDER.embed("EC2 cost rose"), 4)
    assert [c for c, _ in got] == ["dup-e", "dup-i", "dup-o", "dup-p"]
    assert (
        index.search(EMBEDDER.embed("EC2"), 3, allowed_chunk_ids=["dup-w", "other", "unknown"])[0][0]
        == "dup-w"
    )
    assert index.search(EMBEDDER.embed("EC2"), 3, tenant_id="nobody") == []
    assert index.search(np.zeros(64), 3) == []


tenant_names = st.sampled_from(["acme", "globex", "initech", "umbrella"])
small_vectors = st.lists(st.integers(-2, 2), min_size=6, max_size=6)  # small integers: many exact ties


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chunks=st.lists(st.tuples(tenant_names, small_vectors), min_size=1, max_size=25),
    queries=st.lists(small_vectors.filter(any), min_size=1, max_size=3),
    k=st.integers(1, 30),
)
def test_a_tenant_sees_only_and_all_of_its_own_chunks(
    chunks: list[tuple[str, list[int]]], queries: list[list[int]], k: int
) -> None:
    table = {f"text {i}": np.array(vec, dtype=np.float32) for i, (_, vec) in enumerate(chunks)}
    items = [item(f"chunk-{i:02d}", tenant, f"text {i}") for i, (tenant, _) in enumerate(chunks)]
    with tempfile.TemporaryDirectory() as folder:
        index = VectorIndex.create(Path(folder) / "idx", "ints:6", 6)
        index.sync(items, vectors_embed(table))
        for query in queries:
            for tenant in ("acme", "globex", "initech", "umbrella"):
                own = {it.chunk_id for it in items if it.tenant_id == tenant}
                got = index.search(np.array(query, dtype=np.float32), k, tenant_id=tenant)
                ids = [c for c, _ in got]
                assert set(ids) <= own
                assert len(ids) == min(k, len(own))
                if k >= len(own):
                    assert set(ids) == own
                ranked = sorted(got, key=lambda hit: (-hit[1], hit[0]))
                assert got == ranked
