"""The Spark driver's heap when `spark_driver_memory` is not set: a share of the memory the process
may use, so that one machine's default suits a laptop and a large server alike.

In local mode the driver's heap holds every task's execution memory. A fixed 2g ran out of it in one
full load of five at 10M events in local[2] (docs/performance.md); a quarter of what the process may
use leaves the rest to the Python side (the Arrow buffers of results, detection) and to the file
cache. The process may use the machine's physical memory, or less when a control group limits it
(a container's, a systemd slice's, a batch job's; its own group or any above it): the smallest
limit wins.
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
MEMBERSHIP = Path("/proc/self/cgroup")


def default_driver_memory(limits: Iterable[int | None] | None = None) -> str:
    """`SHARE` of the smallest of `limits` (bytes; default: `memory_limits()`), to the nearest whole
    GiB between `MIN_GIB` and `MAX_GIB`, as Spark spells a size (23.5 GiB gives 6g).

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


def memory_limits(root: Path | None = None, membership: Path | None = None) -> list[int | None]:
    """The machine's physical memory and every memory limit over the process: those of its control
    groups (v1 and v2) and of each group above them up to the root, in bytes; None for what cannot
    be read or is unlimited. A limit on any ancestor (a Slurm job over its steps, a systemd slice
    over its units) bounds the process as much as its own group's. `root` and `membership` default
    to `CGROUP_ROOT` and `MEMBERSHIP`."""
    files = _limit_files(root or CGROUP_ROOT, membership or MEMBERSHIP)
    return [_physical(), *(_read_limit(path) for path in files)]


def _physical() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # a platform without these names
        return None


def _limit_files(root: Path, membership: Path) -> list[Path]:
    """memory.max (v2) and memory.limit_in_bytes (v1) of the root and of every group on the way
    to the process's own, as /proc/self/cgroup names them (`0::/path` for v2, `N:memory:/path` or a
    co-mounted `N:cpu,memory:/path` for v1). Group names may hold any byte but a slash."""
    files = [root / "memory.max", root / "memory" / "memory.limit_in_bytes"]
    try:
        lines = os.fsdecode(membership.read_bytes()).splitlines()
    except OSError:
        return files
    for line in lines:
        _, controllers, path = (line.split(":", 2) + ["", ""])[:3]
        if controllers == "":
            base, name = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, name = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        parts = [part for part in path.strip().split("/") if part not in ("", ".", "..")]
        files += [base.joinpath(*parts[:depth], name) for depth in range(1, len(parts) + 1)]
    return files


def _read_limit(path: Path) -> int | None:
    """The limit in `path`, None when absent, unreadable, unlimited (`max` in v2; v1 spells no
    limit as a number near 2**63, which is larger than any machine and so loses to the physical)
    or not a number of ASCII digits."""
    try:
        text = path.read_bytes().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
