"""Provider "bedrock": Amazon Bedrock's `converse` API through boto3 `bedrock-runtime` (extra `aws`).

Credentials come from the usual AWS chain (environment, profile, instance role); the region from the
`region` option or AWS_REGION / AWS_DEFAULT_REGION. botocore's own retries are off; the base retries.
"""

from __future__ import annotations

import os
from typing import Any

from costlake.rag.llm.base import (
    LLMClient,
    LLMConfigError,
    LLMError,
    LLMTerminalError,
    LLMTransientError,
    require_module,
)

#: error codes worth retrying; AccessDenied, Validation, ResourceNotFound and the rest are terminal
TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "TooManyRequestsException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "ModelTimeout",
        "ModelTimeoutException",
        "ModelNotReadyException",
        "InternalServerException",
        "InternalFailure",
        "RequestTimeout",
    }
)


def client_error(exc: Any, provider: str) -> LLMError:
    """Typed error for a botocore `ClientError`, by error code (then HTTP status)."""
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    text = f"{provider}: {code or 'error'}: {message or 'no message'}"
    if code in TRANSIENT_CODES or status == 429 or status >= 500:
        return LLMTransientError(text)
    return LLMTerminalError(text)


class BedrockClient(LLMClient):
    """`converse` with one user message (the prompt) at temperature 0."""

    name = "bedrock"

    def __init__(
        self,
        *,
        model: str = "amazon.nova-lite-v1:0",
        region: str | None = None,
        endpoint_url: str | None = None,
        temperature: float = 0.0,
        max_tokens: int = 1024,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        require_module("boto3", self.name, extra="aws")
        self.model, self.endpoint_url = model, endpoint_url
        self.temperature, self.max_tokens = temperature, max_tokens
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not self.region:
            raise LLMConfigError("LLM provider 'bedrock' needs a region: set AWS_REGION (or pass region)")
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The boto3 `bedrock-runtime` client, built on first use."""
        if self._client is None:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=self.timeout,
                read_timeout=self.timeout,
                retries={"total_max_attempts": 1, "mode": "standard"},
            )
            self._client = boto3.client(
                "bedrock-runtime", region_name=self.region, endpoint_url=self.endpoint_url, config=config
            )
        return self._client

    def _complete(self, prompt: str) -> str:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        try:
            response = self.client.converse(
                modelId=self.model,
                messages=[{"role": "user", "content": [{"text": prompt}]}],
                inferenceConfig={"temperature": self.temperature, "maxTokens": self.max_tokens},
            )
        except ClientError as exc:
            raise client_error(exc, self.name) from exc
        except NoCredentialsError as exc:
            raise LLMConfigError(
                "LLM provider 'bedrock' found no AWS credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
            ) from exc
        except (ReadTimeoutError, ConnectionError) as exc:
            raise LLMTransientError(f"{self.name}: {exc}") from exc
        except BotoCoreError as exc:
            raise LLMTerminalError(f"{self.name}: {exc}") from exc
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block["text"] for block in blocks if isinstance(block, dict) and "text" in block)
        if not text:
            raise LLMTerminalError(f"{self.name}: model {self.model!r} returned no text")
        return text
