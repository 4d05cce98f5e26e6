"""Walks done ahead (src/costlake/anomalies/walks.py): kept only where the series turned out to have
no possible mix shift, so detection finds the same on any number of threads."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import numpy as np
import pyarrow as pa

from costlake.anomalies.bands import Params
from costlake.anomalies.changes import Changed, Resume
from costlake.anomalies.frame import Frame
from costlake.anomalies.resumed import Screens, Starts
from costlake.anomalies.screen import candidates
from costlake.anomalies.walks import Ahead, Todo, walk_all

ORIGIN, DAYS = dt.date(2025, 1, 1), 80
BEGIN, TOTALS = 6, 20  # a correction on day 20: resumed from day 6, changes of the total from day 20


def _frame(series: list[list[Decimal]]) -> Frame:
    floats = np.array([[float(v) for v in values] for values in series])
    cells = [(r, c, v) for r, values in enumerate(series) for c, v in enumerate(values)]
    exact = pa.table(
        {
            "row": pa.array([r for r, _, _ in cells], pa.int64()),
            "col": pa.array([c for _, c, _ in cells], pa.int64()),
            "cost": pa.array([v for _, _, v in cells], pa.decimal128(38, 12)),
        }
    )
    rows = len(series)
    keys = [("111111111111", f"service-{r}") for r in range(rows)]
    first, end = np.zeros(rows, dtype=np.int64), np.full(rows, DAYS, dtype=np.int64)
    return Frame(keys, ORIGIN, first, end, first.copy(), floats, {}, exact)


def _shape(todo: list[Todo]) -> list[tuple[int, object, object, object]]:
    return [(t.begin, t.total.findings, t.total.settled, t.mix_days) for t in todo]


def test_a_walk_done_ahead_is_kept_only_for_a_series_without_a_possible_mix_shift() -> None:
    params = Params()
    day = [ORIGIN + dt.timedelta(days=i) for i in range(DAYS)]
    series = []
    for spike in (40, 44, 70):  # each a spike the totals screen flags after the changed day
        values = [Decimal(100 + (i * 7) % 5) for i in range(DAYS)]
        values[spike] = Decimal(900)
        series.append(values)
    frame = _frame(series)
    point = Resume(
        day[BEGIN], None, day[TOTALS], day[TOTALS + params.window + 1], (), Changed(day[20], day[20])
    )
    begin, totals, zero = np.full(3, BEGIN), np.full(3, TOTALS), np.zeros(3, dtype=np.int64)
    starts = Starts(begin, zero, totals, [point] * 3)
    opens, _, bands = candidates(frame.totals, zero, np.ones(3, dtype=bool), params, begin, totals)
    shifted = opens.any(axis=1)
    assert shifted.all()

    with Ahead(frame, starts, params, threads=2) as ahead:
        ahead.start(shifted, Screens(bands, None, opens))
        done = ahead.done()
    # The spike past the settle day leaves series 2 as stored (`resumed.stands`): not walked.
    assert sorted(done) == [0, 1] and all(t.begin == TOTALS for t in done.values())

    # The mix screen then finds a possible mix shift on series 1 only: its walk goes from the
    # resume day, where its bands are needed, and the one done ahead is not kept.
    mix = np.full(frame.totals.shape, np.nan)
    mix[1, 30] = 50.0
    screens = Screens(bands, mix, opens)
    kept = walk_all(np.array([0, 1]), frame, starts, screens, params, done)
    alone = walk_all(np.array([0, 1]), frame, starts, screens, params)
    assert _shape(kept) == _shape(alone)
    assert kept[0] is done[0] and kept[1] is not done[1]
    assert kept[1].begin == BEGIN and kept[1].mix_days is not None

    with Ahead(frame, starts, params, threads=1) as ahead:  # one core: nothing is walked ahead
        ahead.start(shifted, Screens(bands, None, opens))
        assert ahead.done() == {}
