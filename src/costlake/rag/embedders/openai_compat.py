"""Embeddings from any server that speaks OpenAI's `/v1/embeddings` (OpenAI, Ollama, vLLM, llama.cpp).

One class covers them all because only `base_url`, the model name and the key differ. The `openai` SDK is
imported on first use, so costlake installs without it (extra `llm`); its own retries are off, and the
shared retry loop (`rag/providers.py`) repeats timeouts, refused connections, 429 and 5xx.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from costlake.errors import ConfigError
from costlake.rag.embedders.base import (
    EmbedderError,
    EmbedderTerminalError,
    EmbedderTransientError,
    RemoteEmbedder,
)
from costlake.rag.providers import is_transient_status, retry_after_seconds

__all__ = ["KEY_ENV", "EmbedderError", "OpenAICompatEmbedder"]

KEY_ENV = "OPENAI_API_KEY"


class OpenAICompatEmbedder(RemoteEmbedder):
    """Vectors from an OpenAI-compatible embeddings endpoint; `dim` is given or learned from the server."""

    name = "openai"

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        base_url: str | None = None,
        api_key: str | None = None,
        dim: int | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        batch_size: int = 64,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`api_key` falls back to OPENAI_API_KEY; local servers (Ollama) accept any non-empty key.
        `max_retries` repeats a transient failure that many times after the first attempt."""
        self.configure_calls(timeout=timeout, max_attempts=max_retries + 1, sleep=sleep)
        self._api_key = self.api_key(
            api_key, KEY_ENV, hint="; a local server such as Ollama accepts any non-empty value"
        )
        self.require_module("openai", extra="llm")
        if dim is not None and dim < 1:
            raise ConfigError(f"openai embedder dim must be positive, got {dim}")
        self.model = model
        self.base_url = base_url
        self.batch_size = batch_size
        self._dim = dim

    @property
    def dim(self) -> int:
        """The configured dimension, else the length of the server's vectors (one short probe request
        if nothing has been embedded yet: an index must know its dimension before the first sync)."""
        if self._dim is None:
            self._embed(["dimension probe"])
        assert self._dim is not None
        return self._dim

    @property
    def embedder_id(self) -> str:
        # the model is part of the id: two models of the same width are different vector spaces
        return f"{self.name}/{self.model}:{self.dim}"

    def _make_client(self) -> Any:
        import openai

        return openai.OpenAI(
            api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
        )

    def _embed(self, texts: list[str]) -> np.ndarray:
        rows = self.with_retries(lambda: self._request(texts))
        if len(rows) != len(texts):
            raise EmbedderTerminalError(
                f"{self._where()} returned {len(rows)} vectors for {len(texts)} texts"
            )
        widths = {len(row.embedding) for row in rows}
        if len(widths) != 1:
            raise EmbedderTerminalError(f"{self._where()} returned vectors of mixed lengths {sorted(widths)}")
        (width,) = widths
        if self._dim is None:
            self._dim = width
        elif width != self._dim:
            raise EmbedderTerminalError(
                f"{self._where()} returned {width}-dimensional vectors, not {self._dim}: fix dim or omit it"
            )
        return np.array([row.embedding for row in rows], dtype=np.float32)

    def _request(self, texts: list[str]) -> list[Any]:
        """One embeddings call, its rows in input order; SDK failures become typed errors."""
        client = self.client
        import openai

        try:
            response = client.embeddings.create(model=self.model, input=texts, encoding_format="float")
        except openai.AuthenticationError as exc:
            raise ConfigError(
                f"{self._where()} refused the API key ({exc.status_code}): check {KEY_ENV}"
            ) from None
        except openai.APIStatusError as exc:
            text = self.scrub(f"{self._where()} answered {exc.status_code}: {exc.message}")
            if is_transient_status(exc.status_code):
                hint = retry_after_seconds(exc.response.headers.get("retry-after"))
                raise EmbedderTransientError(text, retry_after=hint) from exc
            raise EmbedderTerminalError(text) from exc
        except openai.APIConnectionError as exc:
            raise EmbedderTransientError(self.scrub(f"cannot reach {self._where()}: {exc}")) from exc
        return sorted(response.data, key=lambda item: item.index)

    def _where(self) -> str:
        return f"embeddings server {self.base_url or 'api.openai.com'} (model {self.model})"
