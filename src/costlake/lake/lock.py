"""One writer at a time per warehouse: an exclusive advisory lock on a file in the warehouse folder.

Every command that writes takes it the same way, through `writer_lock` (or `Warehouse.writer`). The
lock is re-entrant within a process, so a composed command ("publish, then detect") holds it once
across its parts while each part still takes it when called alone.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from costlake.errors import InputError

log = logging.getLogger(__name__)
LOCK_FILE = ".costlake.lock"
_held: dict[Path, int] = {}  # lock path -> nesting depth in this process


class LockTimeout(InputError):
    """Another command held the warehouse's write lock for longer than the lock timeout. Exit code 1."""


@contextmanager
def writer_lock(
    root: Path, command: str, *, timeout_s: float = 600.0, on_wait: Callable[[str], None] | None = None
) -> Iterator[None]:
    """Hold the warehouse's write lock for `command`; wait up to `timeout_s` for another writer.

    While waiting, `on_wait` is told once who holds the lock ("waiting for run (pid 4711 on host,
    since …)"); without it that line is logged as a warning."""
    path = (root / LOCK_FILE).resolve()
    if _held.get(path):
        _held[path] += 1
        try:
            yield
        finally:
            _held[path] -= 1
        return
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(handle, root, timeout_s, on_wait)
        os.ftruncate(handle, 0)
        holder = {
            "command": command,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        os.write(handle, json.dumps(holder).encode())
        log.debug("writer lock taken for %s", command)
        _held[path] = 1
        try:
            yield
        finally:
            del _held[path]
    finally:
        os.close(handle)  # closing releases the lock


def _acquire(handle: int, root: Path, timeout_s: float, on_wait: Callable[[str], None] | None) -> None:
    deadline = time.monotonic() + timeout_s
    told = False
    while True:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if not told:
                message = f"waiting for {holder(root)} to finish (up to {timeout_s:.0f} s)"
                (on_wait or log.warning)(message)
                told = True
            if time.monotonic() >= deadline:
                raise LockTimeout(
                    f"{root}: gave up after {timeout_s:.0f} s waiting for {holder(root)}; "
                    "raise --lock-timeout (setting lock_timeout_seconds) or try again later"
                ) from None
            time.sleep(0.2)


def holder(root: Path) -> str:
    """Who holds (or last held) the warehouse's lock, as the holder wrote it: "run (pid 4711 on
    host, since 2026-01-01T00:00:00+00:00)"."""
    try:
        info = json.loads((root / LOCK_FILE).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or "command" not in info:
        return "another costlake command"
    return f"{info['command']} (pid {info.get('pid')} on {info.get('host')}, since {info.get('since')})"
