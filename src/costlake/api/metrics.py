"""Prometheus metrics of the service (names after Prometheus' conventions: a `costlake_` prefix, base
units, `_total` on counters). Labels are bounded: the route template, never a path with ids in it, and
never a tenant or a key.

With several workers (`costlake serve --workers N`), each process writes its values to files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode, which `serve` sets up) and
GET /metrics adds them up, whatever worker answers it.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

_BUCKETS = (0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "costlake_http_requests",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
LATENCY = Histogram(
    "costlake_http_request_duration_seconds",
    "Time to answer a request, by route template.",
    ["method", "route"],
    buckets=_BUCKETS,
)
RETRIEVAL = Histogram(
    "costlake_explain_retrieval_seconds", "POST /explain: retrieval (or table reads).", buckets=_BUCKETS
)
GENERATION = Histogram(
    "costlake_explain_generation_seconds", "POST /explain: generation and grounding.", buckets=_BUCKETS
)
LLM_ERRORS = Counter("costlake_llm_errors", "LLM provider failures while answering.")
DEGRADED = Counter("costlake_explain_degraded", "Degraded answers, by reason.", ["reason"])
RATE_LIMITED = Counter("costlake_rate_limited", "Requests refused by the per-key rate limit.")


def exposition() -> tuple[bytes, str]:
    """The metrics as Prometheus' text format, summed over the workers in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
