"""Provider "anthropic": the Messages API through the `anthropic` SDK (SDK retries off; the base retries)."""

from __future__ import annotations

from typing import Any

from costlake.rag.llm.base import LLMClient, LLMTerminalError
from costlake.rag.llm.openai_compat import sdk_error
from costlake.rag.prompt import Prompt

KEY_ENV = "ANTHROPIC_API_KEY"


class AnthropicClient(LLMClient):
    """The prompt's system text as `system`, and one user turn of two text blocks (the context, then the
    question); the answer is the text blocks joined. `temperature` is sent only when set (the 2.x SDK
    dropped sampling parameters, and newer models reject them)."""

    name = "anthropic"

    def __init__(
        self,
        *,
        model: str = "claude-haiku-4-5",
        base_url: str | None = None,
        api_key: str | None = None,
        temperature: float | None = None,
        max_tokens: int = 1024,
        **options: Any,
    ) -> None:
        super().__init__(**options)
        self.require_module("anthropic", extra="llm")
        self.model, self.base_url = model, base_url
        self.temperature, self.max_tokens = temperature, max_tokens
        self._api_key = self.api_key(api_key, KEY_ENV)

    def _make_client(self) -> Any:
        import anthropic

        return anthropic.Anthropic(
            api_key=self._api_key, base_url=self.base_url, timeout=self.timeout, max_retries=0
        )

    def _complete(self, prompt: Prompt) -> str:
        import anthropic

        system, *turns = prompt.messages()
        blocks = [{"type": "text", "text": message["content"]} for message in turns]
        # The 2.x SDK has no sampling parameters; an explicit temperature travels as an extra body field.
        extra = None if self.temperature is None else {"temperature": self.temperature}
        try:
            message = self.client.messages.create(
                model=self.model,
                max_tokens=self.max_tokens,
                system=system["content"],
                messages=[{"role": "user", "content": blocks}],
                timeout=self.timeout,
                extra_body=extra,
            )
        except anthropic.AnthropicError as exc:
            raise sdk_error(anthropic, exc, self, self.base_url) from exc
        text = "".join(block.text for block in message.content if getattr(block, "type", None) == "text")
        if not text:
            raise LLMTerminalError(f"{self.name}: model {self.model!r} returned no text")
        return text
