"""The LLM client base class: subclasses implement `_complete(prompt)`; the base checks the prompt, retries
transient failures with exponential backoff and seeded jitter, and turns every failure into one typed error.

Errors have one root (`LLMError`, a `CostlakeError`) and two marker mixins, `Transient` and `Terminal`, so
retry logic decides by type and the API/CLI can answer `degraded: true` for any `LLMError`.

>>> class Echo(LLMClient):
...     name = "echo"
...     def _complete(self, prompt: str) -> str:
...         return prompt.upper()
>>> Echo().generate("why did rds cost rise?")
'WHY DID RDS COST RISE?'
>>> RetryPolicy(attempts=4, base_delay=1.0, max_delay=3.0, jitter=0.0).delays()
[1.0, 2.0, 3.0]
"""

from __future__ import annotations

import importlib.util
import os
import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from costlake.errors import ConfigError, CostlakeError, InputError, Terminal, Transient


class LLMError(CostlakeError):
    """The LLM could not write the explanation; callers answer `degraded: true` instead of failing."""


class LLMTransientError(LLMError, Transient):
    """A failure worth retrying; `retry_after` carries the server's hint in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class LLMTerminalError(LLMError, Terminal):
    """A failure that repeating will not fix."""


class LLMConfigError(ConfigError, LLMTerminalError):
    """The provider is misconfigured (missing key, SDK not installed): a `ConfigError` that says what to
    set, and terminal for the retry loop."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently `generate` repeats transient failures.

    The n-th retry waits `min(max_delay, base_delay * 2**(n-1))`, shortened by up to `jitter` of itself
    (drawn from a generator seeded with `seed`, so runs are reproducible), and never less than the
    server's Retry-After hint (itself capped at `max_delay`)."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"LLM max_attempts must be at least 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError("LLM backoff delays must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"LLM jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        base = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        wait = base * (1.0 - self.jitter * rng.random())
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait

    def delays(self) -> list[float]:
        """The waits of a call that fails every attempt, as `generate` would sleep them."""
        rng = random.Random(self.seed)
        return [self.delay(n, rng) for n in range(1, self.attempts)]


class LLMClient(ABC):
    """Writes text for a prompt. One instance per configured provider; `generate` is thread-compatible
    but not meant to be shared across threads (the jitter generator is per instance)."""

    #: registry name, e.g. "offline", "openai", "anthropic", "bedrock"
    name: str = ""
    #: model identifier sent to the provider ("" when there is none)
    model: str = ""

    def __init__(
        self,
        *,
        timeout: float = 30.0,
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        jitter: float = 0.5,
        seed: int | None = 0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if timeout <= 0:
            raise ConfigError(f"LLM timeout must be positive seconds, got {timeout}")
        self.timeout = float(timeout)
        self.retry = RetryPolicy(max_attempts, backoff_base, backoff_max, jitter, seed)
        self._sleep = sleep
        self._rng = random.Random(seed)
        #: attempts the last `generate` call made (for logs and metrics)
        self.last_attempts = 0

    @abstractmethod
    def _complete(self, prompt: str) -> str:
        """One call to the provider, within `self.timeout` seconds. Raise `LLMTransientError` or
        `LLMTerminalError` (never an SDK exception) when it fails."""

    def generate(self, prompt: str) -> str:
        """The model's answer to `prompt`, retrying transient failures; raises an `LLMError` otherwise."""
        if not isinstance(prompt, str) or not prompt.strip():
            raise InputError("the prompt is empty: build it with costlake.rag.prompt.build_prompt")
        attempt = 0
        while True:
            attempt += 1
            self.last_attempts = attempt
            try:
                text = self._complete(prompt)
            except LLMError as exc:
                if not isinstance(exc, Transient):
                    raise
                if attempt >= self.retry.attempts:
                    raise LLMTransientError(
                        f"{exc} (gave up after {attempt} attempt{'s' if attempt > 1 else ''})",
                        retry_after=exc.retry_after if isinstance(exc, LLMTransientError) else None,
                    ) from exc
                hint = exc.retry_after if isinstance(exc, LLMTransientError) else None
                self._sleep(self.retry.delay(attempt, self._rng, hint))
                continue
            if not isinstance(text, str) or not text.strip():
                raise LLMTerminalError(f"{self.name}: the model returned no text")
            return text


# --- helpers the providers share --------------------------------------------------------------------------


def api_key_for(provider: str, explicit: str | None, env_var: str, *, local_dummy: str | None = None) -> str:
    """The explicit key, else `$env_var`, else `local_dummy` (servers on localhost need none), else a
    `LLMConfigError` that says which variable to set."""
    key = explicit or os.environ.get(env_var, "").strip()
    if key:
        return key
    if local_dummy:
        return local_dummy
    raise LLMConfigError(f"LLM provider {provider!r} needs an API key: set {env_var} (or pass api_key)")


def require_module(module: str, provider: str, extra: str = "llm") -> None:
    """Fail at configuration time, not at the first question, when the provider's SDK is missing."""
    if importlib.util.find_spec(module) is None:
        raise LLMConfigError(
            f"LLM provider {provider!r} needs the {module!r} package: pip install 'costlake[{extra}]'"
        )


def is_local_url(url: str | None) -> bool:
    """True for http(s) URLs on this machine (Ollama, vLLM, llama.cpp, test servers)."""
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    return host in {"localhost", "127.0.0.1", "::1", "0.0.0.0"} or host.endswith(".localhost")


def error_for_status(provider: str, status: int, message: str, retry_after: float | None = None) -> LLMError:
    """Typed error for an HTTP status: 408, 409, 425, 429 and 5xx are transient, the rest terminal."""
    text = f"{provider}: HTTP {status}: {message}"
    if status in {408, 409, 425, 429} or status >= 500:
        return LLMTransientError(text, retry_after=retry_after)
    return LLMTerminalError(text)


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds (HTTP dates are ignored)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


# --- registry ----------------------------------------------------------------------------------------------

DEFAULT_PROVIDER = "offline"

_REGISTRY: dict[str, Callable[..., LLMClient]] = {}


def register(name: str, factory: Callable[..., LLMClient]) -> None:
    """Make an LLM provider choosable by name (settings `llm`)."""
    _REGISTRY[name] = factory


def providers() -> list[str]:
    """Registered provider names, sorted."""
    return sorted(_REGISTRY)


def llm_for(name: str = DEFAULT_PROVIDER, **options: object) -> LLMClient:
    """Build the provider registered under `name` with its options (model, base_url, timeout, ...)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown LLM provider {name!r}: choose one of {', '.join(providers())}") from None
    return factory(**options)
