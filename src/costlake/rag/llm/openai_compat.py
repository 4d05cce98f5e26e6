"""Provider "openai": any server speaking OpenAI chat completions (OpenAI, Ollama, vLLM, llama.cpp) through
the `openai` SDK. The SDK's own retries are off; the shared retry loop of the base class retries.

For a `base_url` on this machine (e.g. Ollama at http://localhost:11434/v1) no API key is needed.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from costlake.rag.llm.base import LLMClient, LLMError, LLMTerminalError, LLMTransientError, error_for_status
from costlake.rag.prompt import Prompt
from costlake.rag.providers import is_local_url, retry_after_seconds

KEY_ENV = "OPENAI_API_KEY"
LOCAL_KEY = "unused-by-local-servers"


def sdk_error(sdk: ModuleType, exc: Exception, client: LLMClient, url: str | None) -> LLMError:
    """Typed error for an exception of the `openai` or `anthropic` SDK (they share the error classes);
    the message never carries the client's key."""
    provider = client.name
    if isinstance(exc, sdk.APITimeoutError):
        return LLMTransientError(f"{provider}: no answer within {client.timeout:g}s from {url or 'the API'}")
    if isinstance(exc, sdk.APIConnectionError):
        return LLMTransientError(client.scrub(f"{provider}: cannot connect to {url or 'the API'}: {exc}"))
    if isinstance(exc, sdk.APIStatusError):
        hint = retry_after_seconds(exc.response.headers.get("retry-after"))
        return error_for_status(provider, exc.status_code, client.scrub(str(exc.message)), hint)
    return LLMTerminalError(client.scrub(f"{provider}: {type(exc).__name__}: {exc}"))


class OpenAICompatClient(LLMClient):
    """Chat completions at temperature 0: the prompt's system message, then its context and its question
    as two user messages."""

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
        self.require_module("openai", extra="llm")
        self.model, self.base_url = model, base_url
        self.temperature, self.max_tokens = temperature, max_tokens
        local = LOCAL_KEY if is_local_url(base_url) else None
        self._api_key = self.api_key(api_key, KEY_ENV, local_dummy=local)

    def _make_client(self) -> Any:
        import openai

        return openai.OpenAI(
            api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
        )

    def _complete(self, prompt: Prompt) -> str:
        import openai

        extra: dict[str, Any] = {} if self.max_tokens is None else {"max_tokens": self.max_tokens}
        try:
            response = self.client.chat.completions.create(
                model=self.model,
                messages=prompt.messages(),
                temperature=self.temperature,
                timeout=self.timeout,
                **extra,
            )
        except openai.OpenAIError as exc:
            raise sdk_error(openai, exc, self, self.base_url) from exc
        choices = response.choices or []
        text = choices[0].message.content if choices else None
        if not text:
            raise LLMTerminalError(f"{self.name}: model {self.model!r} returned no text")
        return str(text)
