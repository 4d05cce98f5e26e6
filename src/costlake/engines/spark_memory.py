"""The Spark driver's heap when `spark_driver_memory` is not set: a share of the memory the process
may use, so that one machine's default suits a laptop and a large server alike.

In local mode the driver's heap holds every task's execution memory. A fixed 2g ran out of it in one
full load of five at 10M events in local[2] (docs/performance.md); a quarter of what the process may
use leaves the rest to the Python side (the Arrow buffers of results, detection) and to the file
cache. The process may use the machine's physical memory, or less when a control group (a
container's, or a systemd unit's) limits it: the smallest limit wins.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

SHARE = 4  # the heap is a quarter of what the process may use
MIN_GIB, MAX_GIB = 1, 16  # whole GiB, from 1g (Spark's own default) to 16g
FALLBACK = "2g"  # when the memory cannot be read
GIB = 1 << 30
CGROUP_ROOT = Path("/sys/fs/cgroup")


def default_driver_memory(limits: Iterable[int | None] | None = None) -> str:
    """`SHARE` of the smallest of `limits` (bytes; default: `memory_limits()`), in whole GiB between
    `MIN_GIB` and `MAX_GIB`, as Spark spells a size.

    >>> [default_driver_memory([int(n * GIB)]) for n in (2, 7.7, 23.5, 200)]
    ['1g', '2g', '6g', '16g']
    >>> default_driver_memory([24 * GIB, 4 * GIB, None]), default_driver_memory([None])
    ('1g', '2g')
    """
    known = [n for n in (memory_limits() if limits is None else limits) if n]
    if not known:
        return FALLBACK
    gib = (min(known) // SHARE + GIB // 2) // GIB
    return f"{min(max(gib, MIN_GIB), MAX_GIB)}g"


def memory_limits(root: Path = CGROUP_ROOT, membership: Path = Path("/proc/self/cgroup")) -> list[int | None]:
    """The machine's physical memory and every memory limit of the process's control groups (v1 and
    v2, its own group and the root), in bytes; None for what cannot be read or is unlimited."""
    return [_physical(), *(_read_limit(path) for path in _limit_files(root, membership))]


def _physical() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # a platform without these names
        return None


def _limit_files(root: Path, membership: Path) -> list[Path]:
    """memory.max (v2) and memory.limit_in_bytes (v1) of the process's groups, as /proc/self/cgroup
    names them (`0::/path` for v2, `N:memory:/path` for v1), and of the root."""
    files = [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    try:
        lines = membership.read_text().splitlines()
    except OSError:
        return files
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        relative = path.strip().lstrip("/")
        if not relative:
            continue
        if controllers == "":
            files.append(root / relative / "memory.max")
        elif "memory" in controllers.split(","):
            files.append(root / "memory" / relative / "memory.limit_in_bytes")
    return files


def _read_limit(path: Path) -> int | None:
    """The limit in `path`, None when absent, unreadable or unlimited (`max` in v2; v1 spells no
    limit as a number near 2**63, which is larger than any machine and so loses to the physical)."""
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
