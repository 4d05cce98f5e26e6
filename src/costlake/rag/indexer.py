"""`costlake index`: cost_anomalies -> chunks (JSONL) -> embeddings (cached by content) -> FAISS.

The index folder holds `chunks.jsonl` (every chunk, all tenants), `embeddings/` (one cache per
embedder, keyed by the hash of the embedder id and the text) and `index/<embedder>/` (the FAISS
index and its metadata). Each embedder has its own index, so switching embedders never mixes vectors
of different models or dimensions; an unchanged chunk is never embedded twice. A chunk is embedded as
its compact embedding text (`embed_text.py`), not its sentence: a third of the tokens, so indexing is
several times faster, and the index re-embeds a chunk only when that text (or its recipe) changes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from costlake.lake.warehouse import Warehouse
from costlake.logs import current, phase
from costlake.rag.chunk_store import write_chunks
from costlake.rag.chunks import Chunk, build_chunks
from costlake.rag.embed_text import embed_hash, embed_text
from costlake.rag.embedders import Embedder, shared_embedder
from costlake.rag.embedders.cache import CachedEmbedder
from costlake.rag.index import IndexItem, VectorIndex, write_atomic
from costlake.settings import Settings
from costlake.tables import COST_ANOMALIES, DIM_ACCOUNT, DIM_SERVICE

log = logging.getLogger(__name__)

CHUNKS_FILE = "chunks.jsonl"
SOURCE_FILE = "source.json"  # the snapshots the chunks were built from (`index_source`)


@dataclass(frozen=True)
class IndexReport:
    folder: Path
    embedder_id: str
    chunks: int
    added: int
    changed: int
    removed: int
    unchanged: int
    embedded: int  # texts the embedder actually computed (cache misses)
    seconds: float


def rag_folder(wh: Warehouse, create: bool = True) -> Path:
    """The folder of the explanation index; readers pass `create=False`, so that reading never leaves
    an empty folder where an operator is about to move an index back."""
    folder = Path(wh.settings.rag_dir) if wh.settings.rag_dir else wh.root / "rag"
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def configured_embedder(settings: Settings, folder: Path) -> CachedEmbedder:
    """The embedder the settings name, behind the content-hash cache in `folder/embeddings`. The embedder
    itself (its model, its SDK client) is built once per process; the cache wrapper counts one run."""
    options: dict[str, object] = {}
    if settings.embedder == "minilm":
        options = {"threads": settings.embedder_threads}
    elif settings.embedder == "titan":
        options = {"model_id": settings.embedder_model, "region": settings.aws_region}
    elif settings.embedder == "openai":
        options = {"model": settings.embedder_model, "base_url": settings.embedder_base_url}
    inner: Embedder = shared_embedder(
        settings.embedder, **{k: v for k, v in options.items() if v is not None}
    )
    return CachedEmbedder(inner, folder / "embeddings")


def index_folder(folder: Path, embedder_id: str) -> Path:
    return folder / "index" / re.sub(r"[^A-Za-z0-9._-]+", "_", embedder_id)


def index_items(chunks: list[Chunk]) -> list[IndexItem]:
    """What the vector index holds of each chunk: its embedding text, hashed with the recipe."""
    items = []
    for chunk in chunks:
        text = embed_text(chunk.metadata)
        items.append(IndexItem(chunk.chunk_id, chunk.tenant_id, text, embed_hash(text)))
    return items


def anomalies_snapshot(wh: Warehouse) -> int | None:
    """The newest cost_anomalies commit that changed rows (commits that only record which run the
    anomalies follow do not make an index stale)."""
    for snap in reversed(wh.snapshots(COST_ANOMALIES)):
        if snap.properties.get("changed_days", "1") != "0":
            return snap.snapshot_id
    return None


def index_source(wh: Warehouse) -> dict[str, int | str | None]:
    """What the chunks are built from (SOURCE_FILE): the anomalies' snapshot, and a digest of the
    accounts' names and tenants, which the chunks carry (a run rewrites dim_account whether or not
    they changed). An index built from other anomalies or other names is stale."""
    accounts = wh.read_rows(DIM_ACCOUNT).select(["account_id", "account_name", "tenant_id"]).to_pylist()
    rows = sorted(json.dumps(row, sort_keys=True) for row in accounts)
    return {
        "cost_anomalies_snapshot": anomalies_snapshot(wh),
        "accounts_sha256": hashlib.sha256("\n".join(rows).encode()).hexdigest(),
    }


def lake_chunks(wh: Warehouse) -> list[Chunk]:
    """Chunks of every anomaly in the lake, with account names and tenants from dim_account and
    services' display names from dim_service."""
    from costlake.catalog.readers import accounts, accounts_table, all_anomalies

    services = wh.read_rows(DIM_SERVICE)
    return build_chunks(all_anomalies(wh, None), accounts_table(accounts(wh, None)), services)


def build_index(wh: Warehouse) -> IndexReport:
    """Bring chunks and the configured embedder's index in line with cost_anomalies, under the
    warehouse's write lock (the index files live in the warehouse)."""
    wh.ensure_tables()
    with wh.writer("index"):
        return _build(wh)


def _embed(embedder: CachedEmbedder, texts: list[str]) -> np.ndarray:
    """The vectors of `texts`, embedded in slices of whole model batches to show progress."""
    progress, size = current(), embedder.batch_size * 8
    progress.start(f"embedding {len(texts):,} chunk(s)", total=len(texts), unit="chunks")
    vectors = []
    for start in range(0, len(texts), size):
        vectors.append(embedder.embed_batch(texts[start : start + size]))
        progress.advance(len(vectors[-1]))
    return np.concatenate(vectors) if vectors else np.zeros((0, embedder.dim), np.float32)


def _build(wh: Warehouse) -> IndexReport:
    started = time.monotonic()
    folder = rag_folder(wh)
    with phase(log, "chunks") as done:
        source = index_source(wh)
        chunks = lake_chunks(wh)
        write_chunks(chunks, folder / CHUNKS_FILE)
        done["chunks"] = len(chunks)
    embedder = configured_embedder(wh.settings, folder)
    where = index_folder(folder, embedder.embedder_id)
    if (where / "index.json").exists():
        index = VectorIndex.open(where, expect_embedder_id=embedder.embedder_id)
    else:
        index = VectorIndex.create(where, embedder.embedder_id, embedder.dim)
    items = index_items(chunks)
    with phase(log, "embed", embedder=embedder.embedder_id) as done:
        report = index.sync(items, lambda texts: _embed(embedder, texts))
        done |= {"embedded": embedder.misses, "cached": embedder.hits}
    with phase(log, "index write", vectors=len(index)):
        index.save()
        write_atomic(folder / SOURCE_FILE, (json.dumps(source) + "\n").encode())
    return IndexReport(
        where,
        embedder.embedder_id,
        len(chunks),
        report.added,
        report.changed,
        report.removed,
        report.unchanged,
        embedder.misses,
        time.monotonic() - started,
    )
