"""One writer at a time per warehouse: an exclusive advisory lock on a file in the warehouse folder,
and for an S3 warehouse also a lease in the bucket itself (lake/lease.py), so that writers on
different hosts, each with its own local folder, exclude each other too.

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
from typing import TYPE_CHECKING

from costlake.errors import InputError

if TYPE_CHECKING:
    from costlake.lake.lease import S3Lease

log = logging.getLogger(__name__)
POLL_S = 0.2  # a waiting writer tries again this often
LOCK_FILE = ".costlake.lock"
_held: dict[Path, int] = {}  # lock path -> nesting depth in this process
_leases: dict[Path, S3Lease] = {}  # lock path -> the remote lease held with it


class LockTimeout(InputError):
    """Another command held the warehouse's write lock for longer than the lock timeout. Exit code 1."""


@contextmanager
def writer_lock(
    root: Path,
    command: str,
    *,
    timeout_s: float = 600.0,
    on_wait: Callable[[str], None] | None = None,
    lease: S3Lease | None = None,
) -> Iterator[None]:
    """Hold the warehouse's write lock for `command`; wait up to `timeout_s` for another writer.

    While waiting, `on_wait` is told once who holds the lock ("waiting for run (pid 4711 on host,
    since …)"); without it that line is logged as a warning. With a `lease` (an S3 warehouse) the
    lease in the bucket is taken after the local lock, within the same timeout, renewed while held,
    checked on leaving (a lost lease raises `LeaseLost`) and released."""
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
        waiter = _Waiter(timeout_s, on_wait)
        while not _try_flock(handle):
            waiter.wait(str(root), lambda: holder(root))
        os.ftruncate(handle, 0)
        os.write(handle, json.dumps(_holder_info(command)).encode())
        while lease is not None and not lease.try_take():
            waiter.wait(lease.location, lease.holder)
        log.debug("writer lock taken for %s", command)
        _held[path] = 1
        if lease is not None:
            _leases[path] = lease
        try:
            yield
            if lease is not None:
                lease.check()  # the command ends in error if it lost its lease meanwhile
        finally:
            del _held[path]
            _leases.pop(path, None)
            if lease is not None:
                lease.release()
    finally:
        os.close(handle)  # closing releases the lock


def ensure_held(root: Path) -> None:
    """Raise `LeaseLost` if this process holds `root`'s lock with a lease it has lost: called before
    every commit, so a writer whose lease another host took stops before committing again."""
    lease = _leases.get((root / LOCK_FILE).resolve())
    if lease is not None:
        lease.check()


def _holder_info(command: str) -> dict[str, object]:
    return {
        "command": command,
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def _try_flock(handle: int) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


class _Waiter:
    """One wait for the lock (local, then remote): says once whom it waits for, gives up at the deadline."""

    def __init__(self, timeout_s: float, on_wait: Callable[[str], None] | None) -> None:
        self.timeout_s = timeout_s
        self.deadline = time.monotonic() + timeout_s
        self.on_wait = on_wait
        self.told = False

    def wait(self, where: str, who: Callable[[], str]) -> None:
        """Sleep a poll interval, or raise `LockTimeout` (naming the holder) past the deadline."""
        if not self.told:
            message = f"waiting for {who()} to finish (up to {self.timeout_s:g} s)"
            (self.on_wait or log.warning)(message)
            self.told = True
        if time.monotonic() >= self.deadline:
            raise LockTimeout(
                f"{where}: gave up after {self.timeout_s:g} s waiting for {who()}; "
                "raise --lock-timeout (setting lock_timeout_seconds) or try again later"
            )
        time.sleep(POLL_S)


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
