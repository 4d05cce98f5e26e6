"""What every provider shares, LLM clients (rag/llm/) and embedders (rag/embedders/) alike: an SDK client
built on first use, API key lookup, missing-extra errors, the one retry loop, and the cache that builds
each configured provider once per process.

A provider class mixes in `Provider` and declares its family as data: `kind` names it in messages
("LLM provider 'openai'", "embedder 'titan'"), `config_error` is what a missing key or SDK raises, and
`transient_error` is what the retry loop raises when it gives up. Retries are decided by type: a
`Transient` error is retried with `RetryPolicy`'s backoff, anything else is raised at once. SDKs' own
retries are turned off, so this loop is the only one.

>>> RetryPolicy(attempts=4, base_delay=1.0, max_delay=3.0, jitter=0.0).delays()
[1.0, 2.0, 3.0]
>>> is_transient_status(429), is_transient_status(503), is_transient_status(401)
(True, True, False)
"""

from __future__ import annotations

import importlib.util
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar
from urllib.parse import urlsplit

from costlake.errors import ConfigError, Transient
from costlake.logs import REDACTED, redact

log = logging.getLogger(__name__)

T = TypeVar("T")

#: HTTP statuses worth retrying (with every 5xx); the rest are terminal.
TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
#: AWS error codes worth retrying; AccessDenied, Validation, ResourceNotFound and the rest are terminal.
AWS_TRANSIENT_CODES = frozenset(
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


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a provider repeats transient failures.

    The n-th retry waits `min(max_delay, base_delay * 2**(n-1))`, shortened by up to `jitter` of itself
    (drawn from a generator seeded with `seed` at the start of each call, so runs are reproducible), and
    never less than the server's Retry-After hint (itself capped at `max_delay`)."""

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5
    seed: int | None = 0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ConfigError(f"max_attempts must be at least 1, got {self.attempts}")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ConfigError("backoff delays must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ConfigError(f"jitter must be between 0 and 1, got {self.jitter}")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        base = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        wait = base * (1.0 - self.jitter * rng.random())
        if retry_after is not None and retry_after > 0:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait

    def delays(self) -> list[float]:
        """The waits of a call that fails every attempt, as `Provider.with_retries` would sleep them."""
        rng = random.Random(self.seed)
        return [self.delay(n, rng) for n in range(1, self.attempts)]


def is_transient_status(status: int) -> bool:
    """True for HTTP statuses worth retrying: 408, 409, 425, 429 and 5xx."""
    return status in TRANSIENT_STATUSES or status >= 500


def is_transient_aws(response: Mapping[str, Any]) -> bool:
    """True when a botocore `ClientError.response` is worth retrying (by error code, then HTTP status)."""
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
    return code in AWS_TRANSIENT_CODES or status == 429 or status >= 500


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds (HTTP dates are ignored)."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def is_local_url(url: str | None) -> bool:
    """True for http(s) URLs on this machine (Ollama, vLLM, llama.cpp, test servers)."""
    if not url:
        return False
    host = urlsplit(url).hostname or ""
    return host in {"localhost", "127.0.0.1", "::1", "0.0.0.0"} or host.endswith(".localhost")


class RetryableError(Transient):
    """A transient failure that may carry the server's Retry-After hint, in seconds."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def bedrock_runtime(region: str | None, endpoint_url: str | None, timeout: float) -> Any:
    """A boto3 `bedrock-runtime` client with botocore's own retries off (the provider's loop retries)."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    return boto3.client("bedrock-runtime", region_name=region, endpoint_url=endpoint_url, config=config)


_CLIENT_LOCK = threading.Lock()


class Provider:
    """Mixin for LLM clients and embedders: the family declares `kind`, `config_error` and
    `transient_error` (a `RetryableError`, raised when retries run out); a provider with an SDK
    implements `_make_client` and calls `configure_calls` in its constructor."""

    kind: ClassVar[str] = "provider"
    config_error: ClassVar[type[ConfigError]] = ConfigError
    transient_error: ClassVar[type[RetryableError]] = RetryableError
    name: str = ""

    timeout: float = 30.0
    retry: RetryPolicy = RetryPolicy()
    #: attempts the last call through `with_retries` made (for logs and metrics)
    last_attempts: int = 0
    _client: Any = None
    _key: str | None = None
    _sleep: Callable[[float], None] | None = None

    @property
    def label(self) -> str:
        """How messages name this provider: "LLM provider 'openai'", "embedder 'titan'"."""
        return f"{self.kind} {self.name!r}"

    def configure_calls(
        self,
        *,
        timeout: float = 30.0,
        max_attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        jitter: float = 0.5,
        seed: int | None = 0,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        """Timeout of one call, and the retry policy of `with_retries` (`sleep` is injectable for tests)."""
        if timeout <= 0:
            raise ConfigError(f"{self.label}: timeout must be positive seconds, got {timeout}")
        self.timeout = float(timeout)
        self.retry = RetryPolicy(max_attempts, backoff_base, backoff_max, jitter, seed)
        self._sleep = sleep

    def require_module(self, module: str, extra: str) -> None:
        """Fail when the provider is configured, not at its first call, if its SDK is not installed."""
        if importlib.util.find_spec(module) is None:
            raise self.config_error(
                f"{self.label} needs the {module!r} package: pip install 'costlake[{extra}]'"
            )

    def api_key(
        self, explicit: str | None, env_var: str, *, local_dummy: str | None = None, hint: str = ""
    ) -> str:
        """The explicit key, else `$env_var`, else `local_dummy` (servers on localhost need none), else a
        `config_error` that says which variable to set. The key itself never appears in a message."""
        key = (explicit or os.environ.get(env_var, "")).strip()
        if key:
            self._key = key
            return key
        if local_dummy:
            return local_dummy
        raise self.config_error(
            f"{self.label} needs an API key: export {env_var}=... or pass api_key "
            f"(for a service, set {env_var} in its environment){hint}"
        )

    def scrub(self, text: str) -> str:
        """`text` without this provider's key or any other secret: for messages built from SDK errors."""
        text = redact(text)
        return text.replace(self._key, REDACTED) if self._key else text

    @property
    def client(self) -> Any:
        """The SDK client, built by `_make_client` on first use and kept with its connection pool."""
        if self._client is None:
            with _CLIENT_LOCK:
                if self._client is None:
                    self._client = self._make_client()
        return self._client

    def _make_client(self) -> Any:
        raise NotImplementedError(f"{self.label} has no SDK client")

    def with_retries(self, call: Callable[[], T]) -> T:
        """`call()`, repeated on `Transient` errors as `self.retry` says; other errors pass at once. When
        the attempts run out, raises `transient_error` saying how many were made."""
        rng = random.Random(self.retry.seed)
        attempt = 0
        while True:
            attempt += 1
            self.last_attempts = attempt
            try:
                return call()
            except Transient as exc:
                hint = exc.retry_after if isinstance(exc, RetryableError) else None
                if attempt >= self.retry.attempts:
                    tried = f"{attempt} attempt{'s' if attempt > 1 else ''}"
                    raise self.transient_error(f"{exc} (gave up after {tried})", retry_after=hint) from exc
                wait = self.retry.delay(attempt, rng, hint)
                log.info(
                    "%s: %s; retry %d in %.2f s",
                    self.label,
                    self.scrub(str(exc)),
                    attempt,
                    wait,
                    extra={"provider": self.name, "attempt": attempt, "wait_s": round(wait, 3)},
                )
                (self._sleep or time.sleep)(wait)


class SharedProviders(Generic[T]):
    """Configured providers built once per process: one instance per (factory, name, options), so every
    question (and every Explainer) with the same settings reuses one client and its connections.

    The factory is part of the key, so registering another factory under a name is seen at once.
    Options must be hashable after lists and dicts become tuples (settings values are)."""

    def __init__(self) -> None:
        self._made: dict[Hashable, T] = {}
        self._lock = threading.Lock()

    def get(self, factory: Callable[..., T], name: str, options: Mapping[str, Any]) -> T:
        key = (factory, name, _frozen(options))
        with self._lock:
            if key not in self._made:
                self._made[key] = factory(**options)
            return self._made[key]

    def clear(self) -> None:
        with self._lock:
            self._made.clear()


def _frozen(value: Any) -> Hashable:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _frozen(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value
