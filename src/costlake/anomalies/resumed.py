"""Where a changed series' analysis resumes, and where its exact walk may stop.

Detection re-analyses a changed series from a resume point (changes.Resume): the frame columns its
analysis starts at, the level in force there and the day its changes of the total are derived again
from (`Starts`). Its walk in exact decimals stops once it is back in step with the stored analysis
(`sync_for`, baseline.Sync), and a series the screens flag only where the walk would stop at once is
not walked at all (`stands`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

from costlake.anomalies.bands import Params
from costlake.anomalies.changes import Key, Resume
from costlake.anomalies.detect import Sync
from costlake.anomalies.frame import Frame


@dataclass
class Starts:
    begin: np.ndarray  # (S,) column the analysis resumes at
    regime: np.ndarray  # (S,) column of the level in force then
    totals: np.ndarray  # (S,) column from which changes of the total are derived again (Resume.totals)
    resume: list[Resume | None]  # (S,) the series' resume point (None: analysed from its start)


def starts_of(frame: Frame, resume: dict[Key, Resume] | None) -> Starts:
    begin, regime, totals = frame.first.copy(), frame.first.copy(), frame.first.copy()
    points: list[Resume | None] = [None] * len(frame.keys)
    if resume is not None:
        points = [resume[key] for key in frame.keys]
        for s, key in enumerate(frame.keys):
            point = resume[key]
            begin[s], totals[s] = (
                max(frame.first[s], (day - frame.origin).days) if day > dt.date.min else frame.first[s]
                for day in (point.begin, point.totals)
            )
            if point.regime is not None:
                regime[s] = (point.regime - frame.origin).days
    return Starts(begin, regime, totals, points)


@dataclass
class Screens:
    """What the float screens found for a frame's series."""

    # (S, n) days that may leave their band, from `Resume.totals` on, and from the resume day for a
    # series that may have a mix shift (None: not screened)
    bands: np.ndarray | None
    # (S, n) the moved dollars of the days that may start a mix shift, NaN elsewhere (None: a method
    # without them)
    mix: np.ndarray | None
    # (S, n) the days that may open a change of the total, from `Resume.totals` on (None: not screened)
    opens: np.ndarray | None = None


def sync_for(point: Resume | None, start: dt.date, regime: int, params: Params) -> Sync | None:
    """What the walk of a resumed series (its first day `start`) needs to stop in step with its
    stored analysis."""
    if point is None or point.settle == dt.date.max:
        return None
    changes = tuple(((day - start).days, duration) for day, duration in point.stored)
    day = (point.settle - start).days
    return Sync(day, regime, changes, params.shift_days, until=day - params.window - 1 + params.reach)


def stands(
    suspects: np.ndarray, frame: Frame, starts: Starts, screens: Screens, params: Params
) -> dict[int, tuple[dt.date, dt.date]]:
    """The suspects whose exact walk would open nothing and stop at once in step with the stored
    analysis (`baseline.Sync`), each with the days it would have derived again (`_Todo.redone`):
    no possible mix shift, no day that may open a change of the total before its `Resume.settle`
    (the screens' candidates lie after it), and there the stored walk has no change open and is
    on the level the screen assumed. On a daily delivery the screen flags the days a window after
    the changed ones of many series whose stored findings stand there."""
    if screens.mix is None or screens.opens is None:
        return {}
    out = {}
    for s in np.flatnonzero(suspects & np.isnan(screens.mix).all(axis=1)).tolist():
        point, first = starts.resume[s], int(frame.first[s])
        if point is None or point.settle >= frame.origin + dt.timedelta(days=int(frame.end[s])):
            continue  # analysed from its start, or no day of it settles
        if screens.opens[s, : (point.settle - frame.origin).days].any():
            continue
        start = frame.origin + dt.timedelta(days=first)
        sync = sync_for(point, start, int(starts.regime[s]) - first, params)
        if (
            sync is not None
            and sync.level(sync.day) == sync.regime
            and _billed_ahead(frame, s, sync, first, params)
        ):
            out[s] = (frame.origin + dt.timedelta(days=int(starts.totals[s])), point.settle)
    return out


def _billed_ahead(frame: Frame, s: int, sync: Sync, first: int, params: Params) -> bool:
    """Whether every day of row s from a window before the settle day to `Sync.until` is billed:
    then no day the walk would stop at reads its billed history (`Sync.clear`)."""
    lo, hi = first + sync.day - params.window, first + sync.until + 1
    return bool((frame.totals[s, max(lo, 0) : hi] > 0).all())
