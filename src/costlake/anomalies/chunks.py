"""The float screens' rows in chunks, computed on a few threads.

Every statistic of the screens (screen.py, mix.py) is taken along a row: one series, or one value
of a series with the other values of the same series. So a frame's rows can be screened in chunks,
each chunk's result written to its own rows: the same numbers whatever the chunking, the threads or
the order they finish in. NumPy releases the GIL inside its loops, so chunks run at once on as many
cores as DuckDB is given (`duckdb_threads`, default all), and a chunk's temporaries stay small
enough to be reused from the caches instead of mapped afresh.

Floating-point warnings are silenced with `numpy.errstate`, which holds per thread; `warnings`
filters are process-wide and must not be switched from several threads at once.

>>> import numpy as np
>>> [(lo, rows.tolist()) for lo, rows in chunked([(0, np.arange(5)), (7, np.arange(5, 7))], 2)]
[(0, [0, 1]), (0, [2, 3]), (0, [4]), (7, [5, 6])]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

CHUNK_ROWS = 512  # rows per chunk: measured on a 4,000 x 90 frame, 256 to 1,024 do about as well

T = TypeVar("T")
Groups = Iterable[tuple[int, np.ndarray]]


def chunked(groups: Groups, size: int) -> list[tuple[int, np.ndarray]]:
    """Each (lo, rows) group split into chunks of at most `size` rows, as even as can be."""
    out = []
    for lo, rows in groups:
        count = max(1, -(-rows.size // size))
        out += [(lo, part) for part in np.array_split(rows, count)]
    return out


def screened(
    fn: Callable[[int, np.ndarray], T], groups: Groups, threads: int | None = None
) -> list[tuple[int, np.ndarray, T]]:
    """(lo, rows, fn(lo, rows)) for every chunk of the groups, in order; on `threads` threads
    (None: one per core)."""
    tasks = chunked(groups, CHUNK_ROWS)
    workers = min(len(tasks), threads or cores())
    if workers <= 1:
        return [(lo, rows, fn(lo, rows)) for lo, rows in tasks]
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="costlake-screen")
    try:
        futures = [pool.submit(fn, lo, rows) for lo, rows in tasks]
        return [(lo, rows, future.result()) for (lo, rows), future in zip(tasks, futures, strict=True)]
    finally:
        # On an error or an interrupt the chunks not started are dropped, not computed first.
        pool.shutdown(wait=True, cancel_futures=True)


def cores() -> int:
    """The cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)  # not on macOS
    return len(affinity(0)) if affinity is not None else os.cpu_count() or 1
