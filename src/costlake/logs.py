"""Logging for every command: stdlib `logging` to stderr, as text for people or JSON lines for machines.

Modules log with `logging.getLogger(__name__)`; long work is wrapped in `phase(log, "name")`, which
logs the phase's duration (`duration_ms` in JSON). Secrets never reach a log line: values of the
environment variables that hold keys, and anything shaped like a bearer token or API key, are
replaced by `[redacted]` before a record is formatted.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOG_FORMATS = ("text", "json")
# Environment variables whose values are secrets (provider keys, cloud credentials, service tokens).
SECRET_ENV = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|CREDENTIAL)", re.IGNORECASE)
# Shapes of secrets that may arrive some other way: bearer headers, provider and costlake keys.
SECRET_SHAPES = re.compile(
    r"(Bearer\s+[A-Za-z0-9._~+/=-]{8,}|Basic\s+[A-Za-z0-9+/=]{6,}|\bsk-[A-Za-z0-9_-]{8,}"
    r"|\bclk?_[A-Za-z0-9_-]{16,}|\bwhsec_[A-Za-z0-9_-]{8,}"
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"  # user:password in a URL
    r"|(?<=[?&;\s])(?:password|passwd|pwd|secret|token|api_key|apikey)=[^&\s]+)",
    re.IGNORECASE,
)
REDACTED = "[redacted]"
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


def _secrets() -> list[str]:
    return sorted(
        (v for k, v in os.environ.items() if SECRET_ENV.search(k) and len(v) >= 6), key=len, reverse=True
    )


def redact(text: str, secrets: list[str] | None = None) -> str:
    """`text` with every known secret and secret-shaped token replaced.

    >>> redact("calling with Authorization: Bearer abcdefgh12345678", [])
    'calling with Authorization: [redacted]'
    >>> redact("cannot connect to http://user:hunter2@127.0.0.1/v1 (Basic dXNlcjpodW50ZXIy) ?password=x", [])
    'cannot connect to http://[redacted]@127.0.0.1/v1 ([redacted]) ?[redacted]'
    """
    for secret in _secrets() if secrets is None else secrets:
        text = text.replace(secret, REDACTED)
    return SECRET_SHAPES.sub(REDACTED, text)


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and extra fields) with secrets removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        secrets = _secrets()
        record.msg = redact(record.getMessage(), secrets)
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact(value, secrets))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        body |= {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}
        if record.exc_info:
            body["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(body, default=str)


def configure_logging(level: str = "warning", fmt: str = "text") -> None:
    """Send costlake's log records to stderr at `level`, formatted as `text` or `json`."""
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactingFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger("costlake")
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False


@contextmanager
def phase(log: logging.Logger, name: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Log a phase's start and end with its duration; the yielded dict adds fields to the end line."""
    started = time.perf_counter()
    log.debug("%s started", name, extra={"phase": name, **fields})
    extra: dict[str, Any] = dict(fields)
    try:
        yield extra
    finally:
        ms = round((time.perf_counter() - started) * 1000, 1)
        log.info("%s done in %.0f ms", name, ms, extra={"phase": name, "duration_ms": ms, **extra})
