"""The exact walks of the series the float screens could not clear, some of them started early.

A suspect's total is walked in exact decimals (detect.py) from the day the screens say: from its
resume day when it may have a mix shift (its bands are needed there), else from the day its changes
of the total are derived again, stopping in step with the stored analysis (`resumed.sync_for`).
Whether a series may have a mix shift is known only once its parts are loaded and screened
(job.py), which on a large lake is the longest read of detection, spent in DuckDB. `Ahead` walks
the series the totals screen flagged on a thread meanwhile, each as it would be walked without a
possible mix shift; a walk done ahead is kept for a series that indeed has none (the same inputs,
so the same result) and done again for one that has. On two cores the walks and the read overlap.
"""

from __future__ import annotations

import datetime as dt
import decimal
import threading
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from decimal import Decimal

import numpy as np

from costlake.anomalies.analyse import ServiceSeries
from costlake.anomalies.bands import Params
from costlake.anomalies.changes import Key, Resume
from costlake.anomalies.chunks import cores
from costlake.anomalies.detect import SeriesResult, detect
from costlake.anomalies.frame import Frame, frame_totals
from costlake.anomalies.mix import judgeable
from costlake.anomalies.resumed import Screens, Starts, stands, sync_for
from costlake.logs import current


@dataclass
class Todo:
    """A series the screens could not clear, its total analysed; mix shifts and causes to come."""

    series: ServiceSeries
    total: SeriesResult
    begin: int
    mix_days: set[int] | None
    point: Resume | None  # where its analysis resumed (None: from its start)

    @property
    def key(self) -> Key:
        return self.series.account_id, self.series.service_name

    @property
    def redone(self) -> tuple[dt.date, dt.date]:
        """[first, end): the days whose changes of the total were derived again (the stored ones
        stand outside them); end is date.max unless the walk settled (`baseline.Sync`)."""
        end = dt.date.max if self.total.settled is None else self.series.day(self.total.settled)
        return self.series.day(self.begin), end


def walk_all(
    suspects: np.ndarray,
    frame: Frame,
    starts: Starts,
    screens: Screens,
    params: Params,
    ahead: Mapping[int, Todo] | None = None,
) -> list[Todo]:
    """The frame's series `suspects`, each total analysed in exact decimals; `ahead`: walks done
    early (`Ahead`), kept where the series has no possible mix shift."""
    done = {s: t for s, t in (ahead or {}).items() if not _mixed(screens, s)}
    rest = [s for s in suspects.tolist() if s not in done]
    fresh = dict(zip(rest, frame_totals(frame, rest).values(), strict=True))
    todo = []
    for s in suspects.tolist():
        todo.append(done[s] if s in done else walk(s, fresh[s], frame, starts, screens, params))
        current().advance()
    return todo


def walk(
    s: int, total: list[Decimal], frame: Frame, starts: Starts, screens: Screens, params: Params
) -> Todo:
    """Row s of the frame (its exact daily `total`) walked from where the screens say."""
    first = int(frame.first[s])
    key = frame.keys[s]
    series = ServiceSeries(key[0], key[1], frame.origin + dt.timedelta(days=first), total)
    maybe = None if screens.mix is None else _candidates(screens.mix[s], first)
    # Without a possible mix shift, only the changes of the total from `starts.totals` on.
    whole = maybe is None or bool(maybe)
    begin = int((starts.begin if whole else starts.totals)[s]) - first
    regime = int(starts.regime[s]) - first
    # The screen judged days from `begin` on (job._screen); without it, the walk screens itself.
    bands = screens.bands
    screened = None if bands is None else bands[s, first : first + len(total)]
    # A walk that stops computes no band from there on: only a series with no possible mix
    # shift may stop (mix_shifts reads the bands of its candidate days).
    sync = None if whole else sync_for(starts.resume[s], series.start, regime, params)
    result = detect(total, params, begin=begin, regime=regime, screened=screened, sync=sync)
    mix_days = None if maybe is None else judgeable(total, result, maybe, params)
    return Todo(series, result, begin, mix_days, starts.resume[s])


def _mixed(screens: Screens, s: int) -> bool:
    """Whether row s may have a mix shift (or was not screened for one): walked from its resume day."""
    return screens.mix is None or not bool(np.isnan(screens.mix[s]).all())


def _candidates(moved: np.ndarray, first: int) -> dict[int, float]:
    """The mix screen's days of one series (indexes from its first day) with their moved dollars."""
    days = np.flatnonzero(~np.isnan(moved))
    return dict(zip((days - first).tolist(), moved[days].tolist(), strict=True))


class Ahead:
    """Walks of a frame's flagged series on a thread, while the main thread loads and screens
    their parts. Use as a context manager: leaving it stops the thread (after the walk under way)."""

    def __init__(self, frame: Frame, starts: Starts, params: Params, threads: int | None) -> None:
        self.frame, self.starts, self.params = frame, starts, params
        self.enabled = (threads or cores()) > 1  # on one core the walks would only slow the read
        self._stop = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[dict[int, Todo]] | None = None

    def start(self, shifted: np.ndarray, screens: Screens) -> None:
        """Walk the rows `shifted` (the totals screen's) as series without a possible mix shift,
        those `resumed.stands` spares left out; `screens`: the totals screen's bands and opens."""
        if not self.enabled or screens.bands is None or screens.opens is None:
            return
        none = np.full(screens.bands.shape, np.nan)  # no mix shift anywhere
        spared = stands(shifted, self.frame, self.starts, replace(screens, mix=none), self.params)
        rows = [s for s in np.flatnonzero(shifted).tolist() if s not in spared]
        if not rows:
            return
        # The rows' bands as they are now: the main thread computes them again for the series
        # that may have a mix shift, whose walks ahead are not kept.
        own = Screens(screens.bands.copy(), none, screens.opens)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="costlake-walks")
        self._future = self._pool.submit(self._walk, rows, own, decimal.getcontext().copy())

    def _walk(self, rows: list[int], screens: Screens, context: decimal.Context) -> dict[int, Todo]:
        decimal.setcontext(context)  # the arithmetic of the thread that would have walked them
        totals = frame_totals(self.frame, rows)
        out = {}
        for s, total in zip(rows, totals.values(), strict=True):
            if self._stop.is_set():
                break
            out[s] = walk(s, total, self.frame, self.starts, screens, self.params)
        return out

    def done(self) -> dict[int, Todo]:
        """The walks done ahead, by row (waits for the thread)."""
        return {} if self._future is None else self._future.result()

    def __enter__(self) -> Ahead:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
