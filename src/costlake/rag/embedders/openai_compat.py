"""Embeddings from any server that speaks OpenAI's `/v1/embeddings` (OpenAI, Ollama, vLLM, llama.cpp).

One class covers them all because only `base_url`, the model name and the key differ. The `openai` SDK is
imported on first use, so costlake installs without it (extra `llm`).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from costlake.errors import ConfigError, CostlakeError
from costlake.rag.embedders.base import Embedder

INSTALL_HINT = "pip install 'costlake[llm]'"


class EmbedderError(CostlakeError):
    """A remote embedding provider failed or answered something unusable (network, auth, bad shape)."""


class OpenAICompatEmbedder(Embedder):
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
    ) -> None:
        """`api_key` falls back to OPENAI_API_KEY; local servers (Ollama) accept any non-empty key."""
        key = api_key or os.environ.get("OPENAI_API_KEY")
        if not key:
            raise ConfigError(
                "the openai embedder needs an API key: export OPENAI_API_KEY=... or pass api_key "
                "(any non-empty value for a local server such as Ollama)"
            )
        if dim is not None and dim < 1:
            raise ConfigError(f"openai embedder dim must be positive, got {dim}")
        self.model = model
        self.base_url = base_url
        self.timeout = timeout
        self.max_retries = max_retries
        self.batch_size = batch_size
        self._api_key = key
        self._dim = dim
        self._client: Any = None

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

    def _embed(self, texts: list[str]) -> np.ndarray:
        client = self.client  # first: a missing SDK is reported as ConfigError there
        import openai

        try:
            response = client.embeddings.create(model=self.model, input=texts, encoding_format="float")
        except openai.AuthenticationError as exc:
            raise ConfigError(
                f"{self._where()} refused the API key ({exc.status_code}): check OPENAI_API_KEY"
            ) from None
        except openai.APIStatusError as exc:
            raise EmbedderError(f"{self._where()} answered {exc.status_code}: {exc.message}") from exc
        except openai.APIConnectionError as exc:
            raise EmbedderError(f"cannot reach {self._where()}: {exc}") from exc
        rows = sorted(response.data, key=lambda item: item.index)
        if len(rows) != len(texts):
            raise EmbedderError(f"{self._where()} returned {len(rows)} vectors for {len(texts)} texts")
        widths = {len(row.embedding) for row in rows}
        if len(widths) != 1:
            raise EmbedderError(f"{self._where()} returned vectors of mixed lengths {sorted(widths)}")
        (width,) = widths
        if self._dim is None:
            self._dim = width
        elif width != self._dim:
            raise EmbedderError(
                f"{self._where()} returned {width}-dimensional vectors, not {self._dim}: fix dim or omit it"
            )
        return np.array([row.embedding for row in rows], dtype=np.float32)

    @property
    def client(self) -> Any:
        """The `openai.OpenAI` client, built on first use."""
        if self._client is None:
            try:
                import openai
            except ImportError:
                raise ConfigError(f"the openai embedder needs the openai package: {INSTALL_HINT}") from None
            self._client = openai.OpenAI(
                api_key=self._api_key,
                base_url=self.base_url,
                timeout=self.timeout,
                max_retries=self.max_retries,
            )
        return self._client

    def _where(self) -> str:
        return f"embeddings server {self.base_url or 'api.openai.com'} (model {self.model})"
