"""The embedder base class: subclasses implement `_embed(texts)`; the base batches, checks input,
L2-normalises and names the embedder (`embedder_id`), so every index can record what built it.
Embedders behind a network API subclass `RemoteEmbedder`, which adds what LLM clients share with them
(`rag/providers.py`): the lazy SDK client, key lookup, missing-extra errors and the one retry loop.

>>> e = HashingEmbedder(dim=16)
>>> v = e.embed_batch(["EC2 cost rose", "EC2 cost rose", "S3 fell"])
>>> v.shape, v.dtype.name, bool(abs(float((v[0] ** 2).sum()) - 1.0) < 1e-5), bool((v[0] == v[1]).all())
((3, 16), 'float32', True, True)
"""

from __future__ import annotations

import hashlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import numpy as np

from costlake.errors import ConfigError, CostlakeError, Terminal
from costlake.rag.providers import Provider, RetryableError, SharedProviders


class EmbedderError(CostlakeError):
    """A remote embedding provider failed or answered something unusable (network, auth, bad shape)."""


class EmbedderTransientError(EmbedderError, RetryableError):
    """A failure worth retrying (timeout, refused connection, 429, 5xx, throttling)."""


class EmbedderTerminalError(EmbedderError, Terminal):
    """A failure that repeating will not fix (a bad request, an unusable answer)."""


class Embedder(ABC):
    """Turns texts into unit-length float32 vectors of a fixed dimension."""

    #: registry name, e.g. "minilm", "titan", "openai", "hashing"
    name: str = ""
    #: texts per call to `_embed`
    batch_size: int = 32

    @property
    @abstractmethod
    def dim(self) -> int:
        """Vector dimension."""

    @property
    def embedder_id(self) -> str:
        """Identifies model and dimension; an index built by one embedder is never searched with another."""
        return f"{self.name}:{self.dim}"

    @abstractmethod
    def _embed(self, texts: list[str]) -> np.ndarray:
        """Vectors for at most `batch_size` texts, shape (len(texts), dim); need not be normalised."""

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """float32 [n, dim], each row L2-normalised (cosine = inner product)."""
        items = list(texts)
        for i, text in enumerate(items):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is {type(text).__name__}, expected str")
        if not items:
            return np.zeros((0, self.dim), np.float32)
        out = np.asarray(self._embed_all(items), dtype=np.float32)
        if out.shape != (len(items), self.dim):
            wanted = (len(items), self.dim)
            raise ValueError(f"{self.embedder_id} returned shape {out.shape}, expected {wanted}")
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)

    def embed(self, text: str) -> np.ndarray:
        return self.embed_batch([text])[0]

    def warm_up(self) -> None:
        """Start whatever the first embed would wait for (loading a local model) without waiting for it;
        a no-op for embedders with nothing to load. Errors surface at the first embed, as without it."""
        return None

    def _embed_all(self, texts: list[str]) -> np.ndarray:
        """Vectors for any number of texts, in order: `_embed` on consecutive batches. An embedder that
        can batch better (a local model, by length) overrides this."""
        parts = [self._embed(texts[i : i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]
        return np.concatenate(parts)


class HashingEmbedder(Embedder):
    """A deterministic bag-of-words embedder (feature hashing of lower-cased word unigrams).
    No model, no network: the fake for tests and a last-resort fallback; no paraphrase knowledge."""

    name = "hashing"

    def __init__(self, dim: int = 256) -> None:
        self._dim = dim

    @property
    def dim(self) -> int:
        return self._dim

    def _embed(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dim), np.float32)
        for row, text in enumerate(texts):
            for token in re.findall(r"[a-z0-9]+", text.lower()):
                h = int.from_bytes(hashlib.blake2b(token.encode(), digest_size=8).digest(), "little")
                out[row, h % self._dim] += 1.0 if (h >> 63) == 0 else -1.0
        return out


class RemoteEmbedder(Provider, Embedder):
    """An embedder behind a network API: call `configure_calls` in the constructor, implement
    `_make_client`, and wrap each request in `with_retries`."""

    kind = "embedder"
    config_error = ConfigError
    transient_error = EmbedderTransientError


_REGISTRY: dict[str, Callable[..., Embedder]] = {"hashing": HashingEmbedder}
_SHARED: SharedProviders[Embedder] = SharedProviders()


def register(name: str, factory: Callable[..., Embedder]) -> None:
    """Make an embedder choosable by name (settings `embedder`)."""
    _REGISTRY[name] = factory


def _factory(name: str) -> Callable[..., Embedder]:
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"unknown embedder {name!r}: choose one of {known}") from None


def embedder_for(name: str, **options: object) -> Embedder:
    """A new embedder registered under `name`, with provider options (model, base_url, ...)."""
    return _factory(name)(**options)


def shared_embedder(name: str, **options: object) -> Embedder:
    """The process's one embedder for `name` with these options: built on first use, then reused."""
    return _SHARED.get(_factory(name), name, options)
