"""Amazon Titan text embeddings through Bedrock (`bedrock-runtime` `invoke_model`).

Titan takes one text per request, so `_embed` loops; the base class still batches for shape checks.
Model widths are data: v1 is always 1536 wide, v2 answers 256, 512 or 1024 as asked, never 384, so a Titan
index is never interchangeable with a MiniLM one (the embedder id names model and width).
boto3 is imported on first use (extra `aws`); botocore's retries are off, and the shared retry loop
(`rag/providers.py`) repeats throttling, timeouts and 5xx.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from costlake.errors import ConfigError
from costlake.rag.embedders.base import EmbedderTerminalError, EmbedderTransientError, RemoteEmbedder
from costlake.rag.providers import bedrock_runtime, is_transient_aws

#: model id -> widths it can produce (the first is its default)
TITAN_DIMS: dict[str, tuple[int, ...]] = {
    "amazon.titan-embed-text-v1": (1536,),
    "amazon.titan-embed-text-v2:0": (1024, 512, 256),
}


class TitanEmbedder(RemoteEmbedder):
    """Vectors from Amazon Titan Embeddings; region and credentials come from the usual AWS sources."""

    name = "titan"

    def __init__(
        self,
        model_id: str = "amazon.titan-embed-text-v1",
        region: str | None = None,
        endpoint_url: str | None = None,
        dim: int | None = None,
        client: Any = None,
        timeout: float = 30.0,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`client` is an existing `bedrock-runtime` client (shared connection pool, botocore Stubber)."""
        if model_id not in TITAN_DIMS:
            raise ConfigError(
                f"unknown Titan model {model_id!r}: choose one of {', '.join(sorted(TITAN_DIMS))}"
            )
        widths = TITAN_DIMS[model_id]
        if dim is not None and dim not in widths:
            raise ConfigError(
                f"{model_id} produces {'/'.join(map(str, widths))}-dimensional vectors, not {dim}"
            )
        self.configure_calls(timeout=timeout, max_attempts=max_attempts, sleep=sleep)
        if client is None:
            self.require_module("boto3", extra="aws")
        self.model_id = model_id
        self.region = region
        self.endpoint_url = endpoint_url
        self._dim = dim or widths[0]
        self._client = client

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def embedder_id(self) -> str:
        return f"{self.name}/{self.model_id}:{self.dim}"

    def _make_client(self) -> Any:
        from botocore.exceptions import BotoCoreError

        try:
            return bedrock_runtime(self.region, self.endpoint_url, self.timeout)
        except BotoCoreError as exc:  # no region, bad endpoint: a setting to fix, not a crash
            raise ConfigError(f"{self.label}: {exc} (set aws_region or AWS_REGION)") from None

    def request_body(self, text: str) -> str:
        """The JSON `invoke_model` body for one text (v1 knows only `inputText`)."""
        body: dict[str, object] = {"inputText": text}
        if len(TITAN_DIMS[self.model_id]) > 1:
            body["dimensions"] = self._dim
        return json.dumps(body)

    def _embed(self, texts: list[str]) -> np.ndarray:
        client = self.client
        rows = []
        for text in texts:
            vector = self.with_retries(partial(self._invoke, client, text))
            if not isinstance(vector, list) or len(vector) != self._dim:
                size = len(vector) if isinstance(vector, list) else "no"
                raise EmbedderTerminalError(
                    f"Bedrock {self.model_id} returned {size} embedding values, expected {self._dim}"
                )
            rows.append(vector)
        return np.array(rows, dtype=np.float32)

    def _invoke(self, client: Any, text: str) -> Any:
        """One `invoke_model` call, its `embedding` field; botocore failures become typed errors."""
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            NoCredentialsError,
            NoRegionError,
            ReadTimeoutError,
        )

        try:
            response = client.invoke_model(
                modelId=self.model_id,
                body=self.request_body(text),
                contentType="application/json",
                accept="application/json",
            )
            payload = json.loads(response["body"].read())
        except NoCredentialsError:
            raise ConfigError(
                f"{self.label}: no AWS credentials; set AWS_PROFILE or AWS_ACCESS_KEY_ID"
            ) from None
        except NoRegionError:
            raise ConfigError(f"{self.label}: no AWS region; pass region or set AWS_REGION") from None
        except ClientError as exc:
            error = exc.response.get("Error", {})
            text = f"Bedrock {self.model_id}: {error.get('Code', '?')}: {error.get('Message', exc)}"
            transient = is_transient_aws(exc.response)
            raise (EmbedderTransientError if transient else EmbedderTerminalError)(self.scrub(text)) from exc
        except (ReadTimeoutError, ConnectionError) as exc:
            raise EmbedderTransientError(self.scrub(f"Bedrock {self.model_id}: {exc}")) from exc
        except BotoCoreError as exc:
            raise EmbedderTerminalError(self.scrub(f"Bedrock {self.model_id}: {exc}")) from exc
        except ValueError as exc:
            raise EmbedderTerminalError(f"Bedrock {self.model_id} answered invalid JSON: {exc}") from exc
        return payload.get("embedding") if isinstance(payload, dict) else None
