"""Provider "openai": any server speaking OpenAI chat completions (OpenAI, Ollama, vLLM, llama.cpp) through
the `openai` SDK. The SDK's own retries are off; the base class retries transient failures.

For a `base_url` on this machine (e.g. Ollama at http://localhost:11434/v1) no API key is needed.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from costlake.rag.llm.base import (
    LLMClient,
    LLMError,
    LLMTerminalError,
    LLMTransientError,
    api_key_for,
    error_for_status,
    is_local_url,
    require_module,
    retry_after_seconds,
)

KEY_ENV = "OPENAI_API_KEY"
LOCAL_KEY = "unused-by-local-servers"


def sdk_error(sdk: ModuleType, exc: Exception, provider: str, timeout: float, url: str | None) -> LLMError:
    """Typed error for an exception of the `openai` or `anthropic` SDK (they share the error classes)."""
    if isinstance(exc, sdk.APITimeoutError):
        return LLMTransientError(f"{provider}: no answer within {timeout:g}s from {url or 'the API'}")
    if isinstance(exc, sdk.APIConnectionError):
        return LLMTransientError(f"{provider}: cannot connect to {url or 'the API'}: {exc}")
    if isinstance(exc, sdk.APIStatusError):
        headers = exc.response.headers
        hint = retry_after_seconds(headers.get("retry-after"))
        return error_for_status(provider, exc.status_code, str(exc.message), hint)
    return LLMTerminalError(f"{provider}: {type(exc).__name__}: {exc}")


class OpenAICompatClient(LLMClient):
    """Chat completions with one user message (the prompt) at temperature 0."""

    name = "openai"

    def __init__(
        self,
        *,
        model: str = "gpt-4o-mini",
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float = 0.0,
        max_tokens: int | None = None,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        require_module("openai", self.name)
        self.model, self.base_url = model, base_url
        self.temperature, self.max_tokens = temperature, max_tokens
        local = LOCAL_KEY if is_local_url(base_url) else None
        self._api_key = api_key_for(self.name, api_key, KEY_ENV, local_dummy=local)
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The `openai.OpenAI` client, built on first use."""
        if self._client is None:
            import openai

            self._client = openai.OpenAI(
                api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
            )
        return self._client

    def _complete(self, prompt: str) -> str:
        import openai

        extra: dict[str, Any] = {} if self.max_tokens is None else {"max_tokens": self.max_tokens}
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=[{"role": "user", "content": prompt}],
                temperature=self.temperature,
                timeout=self.timeout,
                **extra,
            )
        except openai.OpenAIError as exc:
            raise sdk_error(openai, exc, self.name, self.timeout, self.base_url) from exc
        choices = response.choices or []
        text = choices[0].message.content if choices else None
        if not text:
            raise LLMTerminalError(f"{self.name}: model {self.model!r} returned no text")
        return str(text)
