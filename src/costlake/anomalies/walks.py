"""The exact walks of the series the float screens could not clear.

A suspect's total is walked in exact decimals (detect.py) from the day the screens say: from its
resume day when it may have a mix shift (its bands are needed there), else from the day its changes
of the total are derived again, stopping in step with the stored analysis (`resumed.sync_for`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from costlake.anomalies.analyse import ServiceSeries
from costlake.anomalies.bands import Params
from costlake.anomalies.changes import Key, Resume
from costlake.anomalies.detect import SeriesResult, detect
from costlake.anomalies.frame import Frame, frame_totals
from costlake.anomalies.mix import judgeable
from costlake.anomalies.resumed import Screens, Starts, sync_for
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
    suspects: np.ndarray, frame: Frame, starts: Starts, screens: Screens, params: Params
) -> list[Todo]:
    """The frame's series `suspects`, each total analysed in exact decimals."""
    rows = suspects.tolist()
    todo = []
    for s, total in zip(rows, frame_totals(frame, rows).values(), strict=True):
        todo.append(walk(s, total, frame, starts, screens, params))
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


def _candidates(moved: np.ndarray, first: int) -> dict[int, float]:
    """The mix screen's days of one series (indexes from its first day) with their moved dollars."""
    days = np.flatnonzero(~np.isnan(moved))
    return dict(zip((days - first).tolist(), moved[days].tolist(), strict=True))
