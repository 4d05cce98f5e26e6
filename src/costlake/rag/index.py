"""A persistent cosine vector index over FAISS, with tenant filters and incremental sync.

Why these choices:
- `IndexIDMap(IndexFlatIP)` on unit vectors gives exact cosine top-k, and flat search is fast enough here
  (10k vectors: under a millisecond); ids let chunks be replaced or removed without a rebuild.
- ids are the first 8 bytes of sha256(chunk_id) masked to 63 bits: stable across runs and machines, so an
  incrementally synced index and a fresh rebuild hold the same ids.
- Tenant and allowed-id filters go into FAISS as an `IDSelectorBatch`, so they act before ranking: top-k is
  the best k a tenant may see, never a filtered remainder of a global top-k.
- One index per embedder: the folder records the embedder id and dimension and `open` refuses a mismatch.
- `save` writes the vectors to a content-named file, then atomically replaces `index.json`, which names it;
  a crash at any point leaves the previous pair readable.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from costlake.errors import ConfigError, CostlakeError

META_FILE = "index.json"
FORMAT = 1
_ID_MASK = (1 << 63) - 1


class VectorIndexError(CostlakeError):
    """The index on disk is damaged or inconsistent, or two chunk ids collided; rebuild it."""


@dataclass(frozen=True)
class IndexItem:
    """One chunk to index; `content_hash` decides whether its vector must be recomputed."""

    chunk_id: str
    tenant_id: str
    text: str
    content_hash: str


@dataclass(frozen=True)
class SyncReport:
    """How many chunks `sync` added, re-embedded or re-tenanted, removed, and left alone."""

    added: int
    changed: int
    removed: int
    unchanged: int


@dataclass(frozen=True)
class _Entry:
    chunk_id: str
    tenant_id: str
    content_hash: str


def vector_id(chunk_id: str) -> int:
    """The FAISS id of a chunk: 63 bits of sha256, so it is never negative (-1 means "no result").

    >>> vector_id("acct-1/2026-01-05/ec2")
    7465750497500739647
    """
    return int.from_bytes(hashlib.sha256(chunk_id.encode()).digest()[:8], "big") & _ID_MASK


def _faiss() -> Any:
    import faiss

    # one thread: on 2 shared cores, FAISS's OpenMP threads made single-query search slower
    faiss.omp_set_num_threads(1)
    return faiss


class VectorIndex:
    """Chunk vectors of one embedder, searchable by cosine, persisted in one folder."""

    def __init__(
        self, folder: Path, embedder_id: str, dim: int, index: Any, entries: dict[int, _Entry]
    ) -> None:
        """Use `create` or `open`."""
        self.folder = Path(folder)
        self.embedder_id = embedder_id
        self.dim = dim
        self._index = index
        self._entries = entries
        self._by_chunk = {entry.chunk_id: vid for vid, entry in entries.items()}

    @classmethod
    def create(cls, folder: Path, embedder_id: str, dim: int) -> VectorIndex:
        """A new, empty index, saved at once; refuses a folder that already holds one."""
        if dim < 1:
            raise ConfigError(f"vector index dimension must be positive, got {dim}")
        if (Path(folder) / META_FILE).exists():
            raise ConfigError(
                f"{folder} already holds a vector index: open it, or delete the folder to rebuild"
            )
        faiss = _faiss()
        index = cls(Path(folder), embedder_id, dim, faiss.IndexIDMap(faiss.IndexFlatIP(dim)), {})
        index.save()
        return index

    @classmethod
    def open(cls, folder: Path, expect_embedder_id: str | None = None) -> VectorIndex:
        """The index saved in `folder`; `expect_embedder_id` guards against querying with another model."""
        meta_path = Path(folder) / META_FILE
        if not meta_path.is_file():
            raise ConfigError(f"no vector index in {folder}: build the index first")
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
            embedder_id, dim, vectors_file = meta["embedder_id"], int(meta["dim"]), meta["vectors_file"]
            entries = {
                int(c["id"]): _Entry(c["chunk_id"], c["tenant_id"], c["content_hash"]) for c in meta["chunks"]
            }
        except (ValueError, KeyError, TypeError) as exc:
            raise VectorIndexError(
                f"{meta_path} is not a costlake vector index ({exc!r}): rebuild it"
            ) from None
        if meta.get("format") != FORMAT:
            raise VectorIndexError(
                f"{meta_path} has format {meta.get('format')}, expected {FORMAT}: rebuild it"
            )
        if expect_embedder_id is not None and embedder_id != expect_embedder_id:
            raise ConfigError(
                f"vector index in {folder} was built by {embedder_id}, not {expect_embedder_id}: "
                f"rebuild it or switch the embedder back"
            )
        try:
            blob = (Path(folder) / vectors_file).read_bytes()
        except OSError as exc:
            raise VectorIndexError(
                f"cannot read the vectors of the index in {folder} ({exc}): rebuild it"
            ) from None
        if hashlib.sha256(blob).hexdigest() != meta["vectors_sha256"]:
            raise VectorIndexError(f"{folder / vectors_file} does not match {meta_path}: rebuild the index")
        faiss = _faiss()
        index = faiss.deserialize_index(np.frombuffer(blob, dtype=np.uint8))
        stored = set(faiss.vector_to_array(index.id_map).tolist()) if index.ntotal else set()
        if index.d != dim or stored != set(entries):
            raise VectorIndexError(f"vectors and metadata in {folder} disagree: rebuild the index")
        return cls(Path(folder), embedder_id, dim, index, entries)

    def __len__(self) -> int:
        return len(self._entries)

    def chunk_ids(self, tenant_id: str | None = None) -> list[str]:
        """Indexed chunk ids, sorted; only one tenant's when `tenant_id` is given."""
        return sorted(
            e.chunk_id for e in self._entries.values() if tenant_id is None or e.tenant_id == tenant_id
        )

    def content_hash(self, chunk_id: str) -> str | None:
        vid = self._by_chunk.get(chunk_id)
        return None if vid is None else self._entries[vid].content_hash

    def vectors(self) -> dict[str, np.ndarray]:
        """Every stored vector by chunk id (for checks and exports; search does not need it)."""
        if not self._index.ntotal:
            return {}
        ids = _faiss().vector_to_array(self._index.id_map)
        matrix = self._index.index.reconstruct_n(0, self._index.ntotal)
        return {self._entries[int(vid)].chunk_id: matrix[row] for row, vid in enumerate(ids)}

    def sync(self, chunks: Sequence[IndexItem], embed: Callable[[list[str]], np.ndarray]) -> SyncReport:
        """Make the index hold exactly `chunks`: embed new and changed texts only, drop the rest.
        Changes stay in memory until `save`."""
        wanted: dict[str, IndexItem] = {}
        for item in chunks:
            if item.chunk_id in wanted:
                raise ConfigError(f"chunk id {item.chunk_id!r} appears twice in the chunks to index")
            wanted[item.chunk_id] = item
        ids = {chunk_id: self._id_for(chunk_id) for chunk_id in wanted}
        to_embed: list[IndexItem] = []
        retenanted: list[IndexItem] = []
        added = 0
        for chunk_id in sorted(wanted):
            item, old = wanted[chunk_id], self._entries.get(ids[chunk_id])
            if old is None:
                added += 1
                to_embed.append(item)
            elif old.content_hash != item.content_hash:
                to_embed.append(item)
            elif old.tenant_id != item.tenant_id:
                retenanted.append(item)
        gone = sorted(vid for vid, entry in self._entries.items() if entry.chunk_id not in wanted)
        vectors = self._checked_vectors(
            embed([item.text for item in to_embed]) if to_embed else None, to_embed
        )
        # all checks passed: mutate
        replaced = [ids[item.chunk_id] for item in to_embed if ids[item.chunk_id] in self._entries]
        if gone or replaced:
            self._index.remove_ids(np.array(gone + replaced, dtype=np.int64))
        for vid in gone:
            del self._by_chunk[self._entries.pop(vid).chunk_id]
        if to_embed:
            self._index.add_with_ids(
                vectors, np.array([ids[item.chunk_id] for item in to_embed], dtype=np.int64)
            )
        for item in to_embed + retenanted:
            self._entries[ids[item.chunk_id]] = _Entry(item.chunk_id, item.tenant_id, item.content_hash)
            self._by_chunk[item.chunk_id] = ids[item.chunk_id]
        changed = len(to_embed) - added + len(retenanted)
        return SyncReport(
            added=added, changed=changed, removed=len(gone), unchanged=len(wanted) - added - changed
        )

    def search(
        self,
        query_vec: np.ndarray,
        k: int,
        *,
        tenant_id: str | None = None,
        allowed_chunk_ids: Collection[str] | None = None,
    ) -> list[tuple[str, float]]:
        """Up to `k` (chunk_id, cosine) pairs, best first, ties by chunk_id; filters act before ranking."""
        query = np.asarray(query_vec, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self.dim:
            raise ConfigError(
                f"query vector has {query.shape[1]} dimensions, index {self.embedder_id} has {self.dim}"
            )
        norm = float(np.linalg.norm(query))
        if k < 1 or norm == 0 or not self._entries:
            return []
        query = query / norm
        faiss = _faiss()
        params = None
        candidates = len(self._entries)
        if tenant_id is not None or allowed_chunk_ids is not None:
            allowed = self._filter_ids(tenant_id, allowed_chunk_ids)
            if not allowed:
                return []
            selector = faiss.IDSelectorBatch(np.array(allowed, dtype=np.int64))
            params = faiss.SearchParameters(sel=selector)
            candidates = len(allowed)
        want = min(k, candidates)
        fetch = min(candidates, want + 1)  # one extra shows whether the k-th score is tied
        while True:
            scores, labels = self._index.search(query, fetch, params=params)
            hits = [
                (self._entries[int(v)].chunk_id, float(s))
                for s, v in zip(scores[0], labels[0], strict=True)
                if v >= 0
            ]
            # fetch more while the k-th score ties with the last fetched one: chunk_id settles ties
            if fetch >= candidates or len(hits) <= want or hits[want - 1][1] > hits[-1][1]:
                break
            fetch = min(candidates, fetch * 2)
        hits.sort(key=lambda hit: (-hit[1], hit[0]))
        return hits[:want]

    def save(self) -> None:
        """Persist atomically: a new vectors file, then `index.json` replaced by rename, then old files go."""
        self.folder.mkdir(parents=True, exist_ok=True)
        blob = _faiss().serialize_index(self._index).tobytes()
        digest = hashlib.sha256(blob).hexdigest()
        vectors_file = f"vectors-{digest[:16]}.faiss"
        write_atomic(self.folder / vectors_file, blob)
        chunks = [
            {"id": vid, "chunk_id": e.chunk_id, "tenant_id": e.tenant_id, "content_hash": e.content_hash}
            for vid, e in sorted(self._entries.items(), key=lambda pair: pair[1].chunk_id)
        ]
        meta = {
            "format": FORMAT,
            "embedder_id": self.embedder_id,
            "dim": self.dim,
            "metric": "cosine",
            "vectors_file": vectors_file,
            "vectors_sha256": digest,
            "chunks": chunks,
        }
        write_atomic(self.folder / META_FILE, (json.dumps(meta, indent=1, sort_keys=True) + "\n").encode())
        for old in self.folder.glob("vectors-*.faiss"):
            if old.name != vectors_file:
                old.unlink(missing_ok=True)

    def _id_for(self, chunk_id: str) -> int:
        vid = vector_id(chunk_id)
        holder = self._entries.get(vid)
        if holder is not None and holder.chunk_id != chunk_id:
            raise VectorIndexError(f"chunk ids {holder.chunk_id!r} and {chunk_id!r} share vector id {vid}")
        return vid

    def _filter_ids(self, tenant_id: str | None, allowed_chunk_ids: Collection[str] | None) -> list[int]:
        if allowed_chunk_ids is None:
            pool: Collection[int] = self._entries.keys()
        else:
            pool = {self._by_chunk[c] for c in allowed_chunk_ids if c in self._by_chunk}
        return sorted(v for v in pool if tenant_id is None or self._entries[v].tenant_id == tenant_id)

    def _checked_vectors(self, vectors: np.ndarray | None, items: list[IndexItem]) -> np.ndarray:
        if vectors is None:
            return np.zeros((0, self.dim), np.float32)
        out = np.array(vectors, dtype=np.float32)  # a copy: normalising must not touch the caller's array
        if out.shape != (len(items), self.dim):
            raise ConfigError(
                f"embed returned shape {out.shape}, index {self.embedder_id} needs ({len(items)}, {self.dim})"
            )
        if not np.isfinite(out).all():
            raise ConfigError(f"embed returned a non-finite vector for index {self.embedder_id}")
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)  # an empty text's zero vector stays zero: cosine 0


def write_atomic(path: Path, data: bytes) -> None:
    """`data` in `path`, whole or not at all (a reader never sees it half written)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
