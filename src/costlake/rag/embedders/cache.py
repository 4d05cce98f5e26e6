"""A persistent embedding cache, so rebuilding an index never pays for an unchanged chunk twice.

Vectors are keyed by sha256(embedder_id, text) and kept in one SQLite file per embedder under a folder:
SQLite gives atomic commits and safe reopening (even by two processes) without a server, and the key
includes the embedder id, so a model change can never serve stale vectors.

>>> import tempfile
>>> from costlake.rag.embedders.base import HashingEmbedder
>>> with tempfile.TemporaryDirectory() as folder:
...     cached = CachedEmbedder(HashingEmbedder(dim=8), folder)
...     first = cached.embed_batch(["S3 rose", "EC2 fell"])
...     again = cached.embed_batch(["S3 rose"])
...     (cached.hits, cached.misses, bool((first[0] == again[0]).all()))
(1, 2, True)
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

import numpy as np

from costlake.errors import ConfigError
from costlake.rag.embedders.base import Embedder

_LOOKUP_CHUNK = 500  # well below SQLite's limit on bound parameters
#: vectors of small batches (a question) kept in memory per cache, newest last: a repeated question is
#: answered without opening SQLite (the vector is the one SQLite holds, or the one just stored there)
MEMORY_VECTORS = 1024
_MEMORY_BATCH = 16  # larger batches (indexing) go to SQLite only, not to churn the memory


class CachedEmbedder(Embedder):
    """Wraps another embedder; same id and dimension, so indexes cannot tell the difference."""

    def __init__(self, inner: Embedder, path: str | Path) -> None:
        self.inner = inner
        self.name = inner.name
        self.batch_size = inner.batch_size
        self.folder = Path(path)
        self.hits = 0
        self.misses = 0
        self._checked = False
        self._memory: OrderedDict[str, np.ndarray] = OrderedDict()
        self._memory_lock = threading.Lock()

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def embedder_id(self) -> str:
        return self.inner.embedder_id

    @property
    def db_path(self) -> Path:
        """One file per embedder: a readable name plus a hash, since ids may hold '/' or ':'."""
        eid = self.embedder_id
        readable = re.sub(r"[^A-Za-z0-9._-]+", "-", eid).strip("-")[:60]
        return self.folder / f"{readable}-{hashlib.sha256(eid.encode()).hexdigest()[:12]}.sqlite"

    def key(self, text: str) -> str:
        return hashlib.sha256(f"{self.embedder_id}\0{text}".encode()).hexdigest()

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        items = list(texts)
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is {type(text).__name__}, expected str")
        if (remembered := self._remembered(items)) is not None:
            self.hits += len(items)
            return remembered
        keys = [self.key(text) for text in items]
        out = np.zeros((len(items), self.dim), np.float32)
        with self._db() as db:
            found = self._lookup(db, sorted(set(keys)))
            missing = {key: text for key, text in zip(keys, items, strict=True) if key not in found}
            if missing:
                vectors = self.inner.embed_batch(list(missing.values()))
                fresh = dict(zip(missing, vectors, strict=True))
                db.executemany(
                    "INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
                    [(key, vec.astype("<f4").tobytes()) for key, vec in fresh.items()],
                )
                db.commit()
                found.update(fresh)
        for row, key in enumerate(keys):
            out[row] = found[key]
        self.misses += len(missing)
        self.hits += len(items) - len(missing)
        self._remember(items, out)
        return out

    def _remembered(self, texts: list[str]) -> np.ndarray | None:
        """The vectors of `texts` (a new array) when memory holds every one, else None."""
        if not texts or len(texts) > _MEMORY_BATCH:
            return None
        with self._memory_lock:
            if not all(text in self._memory for text in texts):
                return None
            for text in texts:
                self._memory.move_to_end(text)
            return np.stack([self._memory[text] for text in texts])

    def _remember(self, texts: list[str], vectors: np.ndarray) -> None:
        if len(texts) > _MEMORY_BATCH:
            return
        with self._memory_lock:
            for text, vector in zip(texts, vectors, strict=True):
                self._memory[text] = vector.copy()
                self._memory.move_to_end(text)
            while len(self._memory) > MEMORY_VECTORS:
                self._memory.popitem(last=False)

    def _embed(self, texts: list[str]) -> np.ndarray:
        return self.embed_batch(texts)

    def warm_up(self) -> None:
        self.inner.warm_up()

    def __len__(self) -> int:
        """Vectors stored for this embedder."""
        with self._db() as db:
            (count,) = db.execute("SELECT count(*) FROM vectors").fetchone()
        return int(count)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(self.db_path, timeout=30)) as db:
            if not self._checked:
                self._prepare(db)
                self._checked = True
            yield db

    def _prepare(self, db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
        db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, vector BLOB NOT NULL)")
        db.execute("INSERT OR IGNORE INTO meta VALUES ('embedder_id', ?)", (self.embedder_id,))
        db.commit()
        (stored,) = db.execute("SELECT value FROM meta WHERE name = 'embedder_id'").fetchone()
        if stored != self.embedder_id:
            raise ConfigError(
                f"embedding cache {self.db_path} belongs to {stored}, not {self.embedder_id}: delete it"
            )

    def _lookup(self, db: sqlite3.Connection, keys: list[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), _LOOKUP_CHUNK):
            part = keys[start : start + _LOOKUP_CHUNK]
            marks = ",".join("?" * len(part))
            for key, blob in db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part):
                vector = np.frombuffer(blob, dtype="<f4")
                if vector.shape != (self.dim,):
                    raise ConfigError(
                        f"embedding cache {self.db_path} holds a {vector.size}-wide vector: delete it"
                    )
                found[key] = vector
        return found
