"""uvicorn's server and worker process as `costlake serve` runs them: every stop is graceful and
bounded.

uvicorn force-quits on a second SIGINT ("CTRL+C to force quit"), cancelling the requests in flight,
which then answered 500 with a traceback each; a terminal's double Ctrl-C reaches every worker of
the process group. Here every signal asks for the same stop: the requests in flight finish, within
`api_shutdown_grace_seconds` (30 s); those still running then are cancelled
(`middleware.ServiceMiddleware` answers them 503 in one logged line). A request whose work runs in
a thread (a remote model that does not answer) cannot be cancelled there: the process does not wait
for such a thread once the server has stopped (`stuck_threads`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

import uvicorn
from uvicorn.supervisors import multiprocess

log = logging.getLogger(__name__)


class GracefulServer(uvicorn.Server):
    def handle_exit(self, sig: int, frame: Any) -> None:
        super().handle_exit(sig, frame)
        self.force_exit = False


class GracefulProcess(multiprocess.Process):
    """A worker process of `Multiprocess` serving with `GracefulServer`. Stopped by the supervisor's
    SIGTERM, uvicorn raises it again once the server has stopped, and its default action ends the
    worker there, threads of cancelled requests or not; stopped by a SIGINT of its own (a terminal's
    Ctrl-C reaches every worker), it does not wait for those threads either (`target`)."""

    @property
    def server(self) -> uvicorn.Server:
        if self._server is None:
            self._server = GracefulServer(config=self.config)
        return self._server

    def target(self, sockets: list[Any] | None = None) -> None:  # pragma: no cover - in the worker
        try:
            super().target(sockets)
        finally:
            if stuck_threads():
                sys.stderr.flush()
                os._exit(0)  # the supervisor stopped this worker; its exit code is the supervisor's


def stuck_threads(wait: float = 1.0) -> list[threading.Thread]:
    """Threads that would keep the process from exiting (not daemons), other than the main one, still
    running `wait` seconds from now: after the server stopped, those of requests it cancelled (its idle
    worker threads end as soon as the server's loop does)."""
    main = threading.main_thread()
    deadline = time.monotonic() + wait
    found = []
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon:
            thread.join(max(deadline - time.monotonic(), 0))
            if thread.is_alive():
                found.append(thread)
    if found:
        log.warning("%d request(s) still running in a thread were abandoned", len(found))
    return found


def uvicorn_lines_as_ours() -> None:
    """uvicorn's own warnings (e.g. `Invalid HTTP request received.` for a request line too long to
    parse) in the format `--log-format` chose, through costlake's handler: without one they were bare
    text, between the JSON lines of `--log-format json`. Called in each worker too."""
    ours = logging.getLogger("costlake").handlers
    for name in ("uvicorn", "uvicorn.error"):
        theirs = logging.getLogger(name)
        theirs.handlers = list(ours)
        theirs.propagate = False


def use_graceful_workers() -> None:
    """`Multiprocess` makes its workers with the `Process` of its module: ours from now on (in the
    process of `costlake serve --workers N` only)."""
    multiprocess.Process = GracefulProcess  # type: ignore[misc]
