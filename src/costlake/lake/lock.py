"""One writer at a time per warehouse: an exclusive advisory lock on a file in the warehouse folder."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from costlake.errors import LakeError


@contextmanager
def warehouse_lock(root: Path, *, timeout_s: float = 600.0, on_wait: object = None) -> Iterator[None]:
    """Hold the warehouse's write lock; wait up to `timeout_s` for another writer to finish."""
    path = root / ".costlake.lock"
    handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        deadline = time.monotonic() + timeout_s
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if callable(on_wait) and not told:
                    on_wait()
                    told = True
                if time.monotonic() >= deadline:
                    raise LakeError(
                        f"{root}: another costlake process holds the warehouse lock; "
                        f"gave up after {timeout_s:.0f} s"
                    ) from None
                time.sleep(0.2)
        os.ftruncate(handle, 0)
        os.write(handle, str(os.getpid()).encode())
        yield
    finally:
        os.close(handle)  # closing releases the lock
