"""The LLM client base class: subclasses implement `_complete(prompt)`; the base checks that it was given a
`Prompt`, retries transient failures (the one loop of `rag/providers.py`) and turns every failure into one
typed error.

Errors have one root (`LLMError`, a `CostlakeError`) and two marker mixins, `Transient` and `Terminal`, so
retry logic decides by type and the API/CLI can answer `degraded: true` for any `LLMError`.

>>> from costlake.rag.prompt import build_prompt
>>> class Echo(LLMClient):
...     name = "echo"
...     def _complete(self, prompt: Prompt) -> str:
...         return prompt.question.upper()
>>> Echo().generate(build_prompt("why did rds cost rise?", []))
'WHY DID RDS COST RISE?'
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from costlake.errors import ConfigError, CostlakeError, InputError, Terminal
from costlake.rag.prompt import BEGIN, END, Prompt
from costlake.rag.providers import Provider, RetryableError, SharedProviders, is_transient_status


class LLMError(CostlakeError):
    """The LLM could not write the explanation; callers answer `degraded: true` instead of failing."""


class LLMTransientError(LLMError, RetryableError):
    """A failure worth retrying; `retry_after` carries the server's hint in seconds, when it sent one."""


class LLMTerminalError(LLMError, Terminal):
    """A failure that repeating will not fix."""


class LLMConfigError(ConfigError, LLMTerminalError):
    """The provider is misconfigured (missing key, SDK not installed): a `ConfigError` that says what to
    set, and terminal for the retry loop."""


class LLMPromptError(InputError, LLMTerminalError):
    """`generate` was given something other than a `Prompt` (plain text carries no structured context)."""


class LLMClient(Provider, ABC):
    """Writes text for a prompt. One instance per configured provider and process (see `shared_llm`);
    `generate` keeps no state between calls but `last_attempts`."""

    kind = "LLM provider"
    config_error = LLMConfigError
    transient_error = LLMTransientError
    #: registry name, e.g. "offline", "openai", "anthropic", "bedrock"
    name: str = ""
    #: model identifier sent to the provider ("" when there is none)
    model: str = ""

    def __init__(self, **calls: Any) -> None:
        """`calls`: the timeout and retry keywords of `Provider.configure_calls`."""
        self.configure_calls(**calls)

    @abstractmethod
    def _complete(self, prompt: Prompt) -> str:
        """One call to the provider, within `self.timeout` seconds. Raise `LLMTransientError` or
        `LLMTerminalError` (never an SDK exception) when it fails."""

    def _checked(self, prompt: Prompt) -> str:
        """`_complete`, with anything but an `LLMError` (an answer the SDK cannot parse: HTML from a
        proxy, a message that is a string) turned into a terminal `LLMError`: a broken provider makes
        an answer degraded (or a 502), never a crash."""
        try:
            return self._complete(prompt)
        except LLMError:
            raise
        except Exception as exc:  # noqa: BLE001 - the boundary with a provider's SDK
            raise LLMTerminalError(
                f"{self.name}: an answer that could not be read ({type(exc).__name__})"
            ) from exc

    def generate(self, prompt: Prompt) -> str:
        """The model's answer to `prompt`, retrying transient failures; raises an `LLMError` otherwise."""
        if not isinstance(prompt, Prompt):
            raise LLMPromptError(
                f"{self.label} takes a Prompt built by costlake.rag.prompt.build_prompt, not "
                f"{type(prompt).__name__}: plain text has no {BEGIN} ... {END} block of structured context"
            )
        text = self.with_retries(lambda: self._checked(prompt))
        if not isinstance(text, str) or not text.strip():
            raise LLMTerminalError(f"{self.name}: the model returned no text")
        return text


def error_for_status(provider: str, status: int, message: str, retry_after: float | None = None) -> LLMError:
    """Typed error for an HTTP status: 408, 409, 425, 429 and 5xx are transient, the rest terminal."""
    text = f"{provider}: HTTP {status}: {message}"
    if is_transient_status(status):
        return LLMTransientError(text, retry_after=retry_after)
    return LLMTerminalError(text)


# --- registry ----------------------------------------------------------------------------------------------

DEFAULT_PROVIDER = "offline"

_REGISTRY: dict[str, Callable[..., LLMClient]] = {}
_SHARED: SharedProviders[LLMClient] = SharedProviders()


def register(name: str, factory: Callable[..., LLMClient]) -> None:
    """Make an LLM provider choosable by name (settings `llm_provider`)."""
    _REGISTRY[name] = factory


def providers() -> list[str]:
    """Registered provider names, sorted."""
    return sorted(_REGISTRY)


def _factory(name: str) -> Callable[..., LLMClient]:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown LLM provider {name!r}: choose one of {', '.join(providers())}") from None


def llm_for(name: str = DEFAULT_PROVIDER, **options: object) -> LLMClient:
    """A new client of the provider registered under `name`, with its options (model, base_url, ...)."""
    return _factory(name)(**options)


def shared_llm(name: str = DEFAULT_PROVIDER, **options: object) -> LLMClient:
    """The process's one client for `name` with these options: built on first use, then reused (with its
    SDK client and connections) by every later question."""
    return _SHARED.get(_factory(name), name, options)
