"""A per-key token bucket: `rate` requests per second, bursts up to twice that.

The bucket lives in the worker process; with N workers each one enforces rate / N (`costlake serve`
divides the setting), so the whole server allows about `rate` per key whatever worker a connection
lands on.

>>> bucket = TokenBuckets(rate=1.0, now=lambda: 0.0)
>>> [bucket.take("k") for _ in range(3)]
[0.0, 0.0, 1.0]
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from costlake.sources.base import RowLimits
from costlake.sources.identifiers import MAX_ID_CHARS

# The longest account id and service name a filter may name: what ingestion accepts, so every
# published series can be asked for.
ACCOUNT_ID_CHARS = MAX_ID_CHARS
SERVICE_CHARS = RowLimits().max_field_bytes
# The longest cursor a client may send back: more than the server makes for a page whose last row
# carries a name as long as ingestion allows by default (tests/api/test_cursors.py measures it), and
# short enough for a URL.
CURSOR_CHARS = 8192
MAX_KEYS = 100_000  # buckets kept; the oldest are dropped beyond this (a full bucket is the default)


class TokenBuckets:
    def __init__(self, rate: float, now: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = max(1.0, 2 * rate)
        self._now = now
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, when)
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """Take one token for `key`: 0.0 when granted, else the seconds until one is available."""
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = self._now()
            tokens, when = self._buckets.pop(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - when) * self.rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                wait = 0.0
            else:
                self._buckets[key] = (tokens, now)
                wait = (1 - tokens) / self.rate
            if len(self._buckets) > MAX_KEYS:
                self._buckets.pop(next(iter(self._buckets)))
            return wait
