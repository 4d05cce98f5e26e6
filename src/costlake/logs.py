"""Logging for every command: stdlib `logging` to stderr, as text for people or JSON lines for machines.

Modules log with `logging.getLogger(__name__)`; long work is wrapped in `phase(log, "name")`, which
logs the phase's duration (`duration_ms` in JSON). Secrets never reach a log line: values of the
environment variables that hold keys, and anything shaped like a bearer token or API key, are
replaced by `[redacted]` before a record is formatted.

Progress is the other side channel. Long work says how far it has got (ingestion in bytes read, a run
in rebuild steps, detection in series, indexing in chunks) to `current()`, which shows nothing unless
a caller has set a display with `reporting` (the CLI draws rich progress bars on a terminal). A stage
computes the same result whoever listens.

>>> seen = []
>>> class Note(Progress):
...     def update(self, *, completed=None, total=None, description=None):
...         seen.append((description, completed, total))
>>> with reporting(Note()):
...     current().start("reading x.csv", total=100, unit="bytes")
...     current().advance(40)
>>> seen
[('reading x.csv', 0.0, 100.0), (None, 40.0, None)]
>>> current().advance(1)  # nobody listens any more: nothing happens

Only the standard library is imported here: the console script reads `json_logs_asked` before its
heavy imports, so that an interrupt during those seconds writes its line in the format asked for.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from costlake.text.terminal import capped_line, escape_controls

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


# A log message longer than this is cut: a value from a file or a server's error text may be quoted in it.
MAX_LOG_CHARS = 8000


class TextFormatter(logging.Formatter):
    """A line of text per record; the message's control and format characters escaped (a file's name or
    a provider's error text quoted in it must not clear or retitle the terminal), and long ones cut."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        record.message = capped_line(escape_controls(record.message), MAX_LOG_CHARS)
        return super().formatMessage(record)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, plus any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        body: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": capped_line(record.getMessage(), MAX_LOG_CHARS),
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
        handler.setFormatter(TextFormatter("%(asctime)sZ %(levelname)s %(name)s: %(message)s"))
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


UNITS = ("bytes", "steps", "series", "chunks")


class Progress:
    """One task at a time: `start` names it (and its total, if known), `advance` and `update` move it.
    This base class shows nothing; a display overrides `update` (and `start` to set the unit)."""

    def __init__(self) -> None:
        self.completed = 0.0
        self._lock = threading.Lock()  # DuckDB's query watcher reports from its own thread

    def start(self, description: str, total: float | None = None, unit: str = "steps") -> None:
        """A new task: its count starts again from 0."""
        with self._lock:
            self.completed = 0.0
        self.update(description=description, completed=0.0, total=None if total is None else float(total))

    def advance(self, amount: float = 1.0) -> None:
        with self._lock:
            self.completed += amount
        self.update(completed=self.completed)

    def reach(self, completed: float) -> None:
        """Move to `completed` if that is further than the task has got (never backwards)."""
        with self._lock:
            if completed <= self.completed:
                return
            self.completed = completed
        self.update(completed=completed)

    def update(
        self, *, completed: float | None = None, total: float | None = None, description: str | None = None
    ) -> None:
        """What a display shows; `None` leaves a field as it was."""

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Hide the display while the block prints something else (this one shows nothing)."""
        yield


_NOWHERE = Progress()
_current: list[Progress] = [_NOWHERE]


def current() -> Progress:
    """Where long work reports now (a display that shows nothing unless `reporting` set one)."""
    return _current[-1]


@contextlib.contextmanager
def reporting(progress: Progress) -> Iterator[Progress]:
    """Send the progress of the work inside the block to `progress` (one process-wide display)."""
    _current.append(progress)
    try:
        yield progress
    finally:
        _current.remove(progress)


@contextlib.contextmanager
def watching(poll: Callable[[], float], scale: float, every: float = 0.2) -> Iterator[None]:
    """While the block runs, move the current task to `scale` × the fraction `poll()` returns (a
    percentage; negative while nothing is measured): DuckDB's `query_progress` of a long query. No
    thread is started when nobody listens."""
    progress = current()
    if progress is _NOWHERE:
        yield
        return
    stop = threading.Event()

    def follow() -> None:
        while not stop.wait(every):
            try:
                percent = poll()
            except Exception:  # noqa: BLE001 - a closed connection or a query between two: try again
                continue
            if percent >= 0:
                progress.reach(scale * min(percent, 100.0) / 100.0)

    thread = threading.Thread(target=follow, name="costlake-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def json_logs_asked(args: Sequence[str]) -> bool:
    """Whether the command line (`--log-format json` or `--log-format=json`, the last one before a
    `--` winning) or else COSTLAKE_LOG_FORMAT asks for JSON log lines. A costlake.toml is not read."""
    chosen = os.environ.get("COSTLAKE_LOG_FORMAT", "text")
    cut = list(args).index("--") if "--" in args else len(args)
    for i, arg in enumerate(args[:cut]):
        if arg == "--log-format" and i + 1 < cut:
            chosen = args[i + 1]
        elif arg.startswith("--log-format="):
            chosen = arg.partition("=")[2]
    return chosen == "json"


def error_line(message: str, code: int, as_json: bool) -> str:
    """One error line as the CLI writes it: plain text, or a JSON object."""
    if not as_json:
        return message
    return json.dumps({"level": "error", "logger": "costlake.cli", "message": message, "exit_code": code})


def exit_interrupted(code: int, as_json: bool) -> NoReturn:
    """Write the `interrupted` line and end the process at once, without clean-up: for a signal that
    comes before there is anything to clean up, or one that must not wait for the clean-up."""
    sys.stderr.write(error_line("interrupted", code, as_json) + "\n")
    sys.stderr.flush()
    os._exit(code)
