"""Provider "bedrock": Amazon Bedrock's `converse` API through boto3 `bedrock-runtime` (extra `aws`).

Credentials come from the usual AWS chain (environment, profile, instance role); the region from the
`region` option or AWS_REGION / AWS_DEFAULT_REGION. botocore's own retries are off; the base retries.
"""

from __future__ import annotations

import os
from typing import Any

from costlake.rag.llm.base import LLMClient, LLMError, LLMTerminalError, LLMTransientError
from costlake.rag.prompt import Prompt
from costlake.rag.providers import bedrock_runtime, is_transient_aws


def client_error(exc: Any, provider: str) -> LLMError:
    """Typed error for a botocore `ClientError`, transient by error code or HTTP status."""
    error = exc.response.get("Error", {})
    code, message = str(error.get("Code", "")), str(error.get("Message", ""))
    text = f"{provider}: {code or 'error'}: {message or 'no message'}"
    return LLMTransientError(text) if is_transient_aws(exc.response) else LLMTerminalError(text)


class BedrockClient(LLMClient):
    """`converse` at temperature 0: the prompt's system text as `system`, and one user turn of two text
    blocks (the context, then the question)."""

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
        self.require_module("boto3", extra="aws")
        self.model, self.endpoint_url = model, endpoint_url
        self.temperature, self.max_tokens = temperature, max_tokens
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if not self.region:
            raise self.config_error(f"{self.label} needs a region: set AWS_REGION (or pass region)")

    def _make_client(self) -> Any:
        return bedrock_runtime(self.region, self.endpoint_url, self.timeout)

    def _complete(self, prompt: Prompt) -> str:
        from botocore.exceptions import (
            BotoCoreError,
            ClientError,
            ConnectionError,
            NoCredentialsError,
            ReadTimeoutError,
        )

        system, *turns = prompt.messages()
        try:
            response = self.client.converse(
                modelId=self.model,
                system=[{"text": system["content"]}],
                messages=[{"role": "user", "content": [{"text": message["content"]} for message in turns]}],
                inferenceConfig={"temperature": self.temperature, "maxTokens": self.max_tokens},
            )
        except ClientError as exc:
            raise client_error(exc, self.name) from exc
        except NoCredentialsError as exc:
            raise self.config_error(
                f"{self.label} found no AWS credentials: set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
            ) from exc
        except (ReadTimeoutError, ConnectionError) as exc:
            raise LLMTransientError(self.scrub(f"{self.name}: {exc}")) from exc
        except BotoCoreError as exc:
            raise LLMTerminalError(self.scrub(f"{self.name}: {exc}")) from exc
        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block["text"] for block in blocks if isinstance(block, dict) and "text" in block)
        if not text:
            raise LLMTerminalError(f"{self.name}: model {self.model!r} returned no text")
        return text
