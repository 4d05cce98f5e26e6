"""The float screens' chunks on threads (src/costlake/anomalies/chunks.py; named apart from
rag/test_chunks.py, since test modules import by basename); that the screens give the
same numbers in chunks is checked in test_screen.py."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from costlake.anomalies import chunks


class Boom(Exception):
    pass


def test_chunks_come_back_in_order_whatever_finishes_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 3)
    names: set[str] = set()

    def slow_first(lo: int, rows: np.ndarray) -> int:
        names.add(threading.current_thread().name)
        time.sleep(0.05 if rows[0] == 0 else 0)
        return int(rows.sum()) + lo

    got = chunks.screened(slow_first, [(0, np.arange(10)), (7, np.arange(10, 12))], threads=2)
    assert [(lo, rows.tolist()) for lo, rows, _ in got] == [
        (0, [0, 1, 2]), (0, [3, 4, 5]), (0, [6, 7]), (0, [8, 9]), (7, [10, 11])
    ]  # fmt: skip
    assert [result for *_, result in got] == [3, 12, 13, 17, 28]
    assert len(names) == 2 and all(name.startswith("costlake-screen") for name in names)
    one = chunks.screened(slow_first, [(0, np.arange(10))], threads=1)
    assert [result for *_, result in one] == [3, 12, 13, 17]


def test_an_error_in_one_chunk_stops_the_others_from_starting(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error (or an interrupt) surfaces at once: the chunks not started yet are dropped, not
    computed before it is raised."""
    monkeypatch.setattr(chunks, "CHUNK_ROWS", 1)
    done: list[int] = []

    def fail_first(lo: int, rows: np.ndarray) -> None:
        if rows[0] == 0:
            raise Boom("chunk 0")
        time.sleep(0.02)
        done.append(int(rows[0]))

    with pytest.raises(Boom, match="chunk 0"):
        chunks.screened(fail_first, [(0, np.arange(100))], threads=2)
    assert len(done) < 10
