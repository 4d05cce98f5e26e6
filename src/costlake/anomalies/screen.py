"""The float screen of the baseline method: every day's band at once, approximately, in numpy.

Exact decimal bands cost a sort per day; most days are plainly inside their band, so the baseline
method first computes all bands in floats and only judges exactly the days that may be outside.
The screen must mirror `bands.baseline_band` rule for rule (tests/anomalies/test_detect.py checks
that it never changes a finding).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import numpy as np

from costlake.anomalies.bands import GUARD_MIN, MAD_SIGMA, NOISY_SPREAD, WEEKDAY_MIN, Z90, Params, min_history
from costlake.anomalies.chunks import screened
from costlake.anomalies.intermittent import BILLED_MIN, IDLE_WEEKDAYS, INTERMITTENT_EVERY, INTERMITTENT_MIN
from costlake.anomalies.rows import row_median, row_tail_scale, slack, small_median


def screen_bands(values: np.ndarray, start: int, params: Params) -> np.ndarray:
    """Whether each day of one series may leave its band (`baseline_band`, then not `ordinary`), in
    floats, for a regime starting at `start`; False where there is too little history. Only a
    screen: the other days skip the exact computation, these are judged exactly."""
    need = np.array([min_history(start, params)])
    rows, starts = values[None, :], np.array([start])
    expected, margin = _bands(rows, starts, need, params)
    with np.errstate(all="ignore"):
        outside = _may_leave(rows, expected, margin, starts, params) & ~np.isnan(margin)
    r, c = np.nonzero(outside)
    history = _history(rows, starts, r, c, params.window)
    outside[r, c] = ~_ordinary(rows[r, c], expected[r, c], history, params)
    return outside[0]


def candidates(
    values: np.ndarray,
    starts: np.ndarray,
    fresh: np.ndarray,
    params: Params,
    begin: np.ndarray | None = None,
    judge: np.ndarray | None = None,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`_candidates`, computed for groups of rows on only the columns their days can read, in
    chunks on `threads` threads (chunks.py).

    A day's band, its noise and its intermittency read at most the `window` days before it (the
    billed days of an intermittent series, `params.reach` days, are gathered from the whole rows), so the
    rows that resume late (a daily delivery re-judges the last weeks of most series) are computed
    on those weeks, not on the frame's whole calendar: the same result, on a fraction of the
    arrays. Rows are grouped by the week their first read column falls in. With `judge` (each row's
    first column whose findings are wanted, not before `begin`), the expected costs still start at
    `begin` but the days before `judge` are neither judged nor given a spread."""
    s, n = values.shape
    begin = np.zeros(s, dtype=np.int64) if begin is None else begin
    judge = begin if judge is None else judge
    opens, outside = np.zeros((s, n), dtype=bool), np.zeros((s, n), dtype=bool)
    expected = np.full((s, n), np.nan)

    def screen(lo: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cut, whole = values[rows, lo:], values[rows]
        return _candidates(
            cut, starts[rows] - lo, fresh[rows], params, begin[rows] - lo, judge[rows] - lo, whole
        )

    for lo, rows, got in screened(screen, resume_groups(begin, params.window, n), threads):
        opens[rows, lo:], expected[rows, lo:], outside[rows, lo:] = got
    return opens, expected, outside


def resume_groups(begin: np.ndarray, window: int, n: int) -> Iterator[tuple[int, np.ndarray]]:
    """(lo, rows): the rows that judge days from their column `begin` on, grouped by the first
    column those days read (`window` days before, down to a whole week); rows with no day to judge
    (`begin` past the last column) are left out."""
    reads = np.clip(begin - window, 0, n) // 7 * 7
    for lo in np.unique(reads[begin < n]).tolist():
        yield lo, np.flatnonzero((reads == lo) & (begin < n))


def _candidates(
    values: np.ndarray,
    starts: np.ndarray,
    fresh: np.ndarray,
    params: Params,
    begin: np.ndarray | None = None,
    judge: np.ndarray | None = None,
    whole: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For many series at once (rows of `values`, NaN outside each series' days), each analysed with
    the level that starts at `starts` (its first day where `fresh`, else a level shift): the days
    that may open a finding, i.e. may leave their band and are neither an ordinary day for the
    series' noise (`bands.ordinary`) nor its usual intermittency (a day without charges after such
    days); the expected cost of every day; and the days that may leave their band and are not
    ordinary, what `screen_bands` gives each series (the exact walk starts from it); days before
    the column `begin` of their row (where the analysis resumes) are left out, and with `judge`
    the days before it are only given their expected cost. `whole`: the same rows from the frame's
    first column when `values` are their last columns, for the billed history of intermittent
    series (`params.reach` days). A series
    without any day that may open a finding has none, exactly; the others are analysed one by one
    in exact arithmetic."""
    need = np.where(fresh, params.min_history, params.shift_days)
    expected, margin = _bands(values, starts, need, params, begin, judge)
    judged = ~np.isnan(margin)
    with np.errstate(all="ignore"):
        outside = _may_leave(values, np.where(judged, expected, np.nan), margin, starts, params)
        idle = _present(values, starts) & (values <= 0)
    outside &= ~np.isnan(margin)
    r, c = np.nonzero(outside)
    history = _history(values, starts, r, c, params.window)
    outside[r, c] = ~_ordinary(values[r, c], expected[r, c], history, params)
    opens = outside & ~(idle & (_rolling(idle, params.window) > 0))  # usual intermittency
    r, c = np.nonzero(opens & (values > 0))
    lo = 0 if whole is None else whole.shape[1] - values.shape[1]  # the columns `values` leaves out
    rows = values if whole is None else whole
    opens[r, c] = ~_usual_billing(values[r, c], _history(rows, starts + lo, r, c + lo, params.reach), params)
    return opens, expected, outside


def _may_leave(
    values: np.ndarray, expected: np.ndarray, margin: np.ndarray, starts: np.ndarray, params: Params
) -> np.ndarray:
    """The days that may be outside their band, or may have sunk below it (`bands.sunk`), with a
    margin towards 'may'."""
    out: np.ndarray = np.abs(values - expected) > margin * (1 - 1e-9) - slack(values, expected, margin)
    floors = np.maximum(float(params.min_impact), float(params.min_pct) * np.abs(expected) / 100)
    under = floors * (1 - 1e-9) - slack(values, expected, floors)
    below = (values > 0) & (expected > 0) & (expected - values > under) & ~out
    r, c = np.nonzero(below)
    history = _history(values, starts, r, c, params.window)
    spread = _noise_spread(np.log(np.where(history > 0, history, np.nan)))
    # The exact expected cost is a median rounded to 12 places: up to half a unit above the float.
    fall = np.log(expected[r, c] + 1e-12) - np.log(values[r, c])
    out[r, c] = np.isfinite(spread) & (fall > float(params.z) * spread * (1 - 1e-9) - 1e-9)
    return out


def _present(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(S, n) the days that can be history: inside the series, from the row's start on."""
    return ~np.isnan(values) & (np.arange(values.shape[1])[None, :] >= np.maximum(starts, 0)[:, None])


def _history(
    values: np.ndarray, starts: np.ndarray, rows: np.ndarray, cols: np.ndarray, window: int
) -> np.ndarray:
    """(cells, window) the history of the days (rows, cols): column c holds day col - c - 1 of the
    row, NaN before the row's start (or outside its series)."""
    index = cols[:, None] - np.arange(1, window + 1)[None, :]
    got = values[rows[:, None], np.clip(index, 0, None)]
    out: np.ndarray = np.where(index >= np.maximum(starts[rows], 0)[:, None], got, np.nan)
    return out


def _ordinary(value: np.ndarray, expected: np.ndarray, history: np.ndarray, params: Params) -> np.ndarray:
    """`bands.ordinary` for many days at once (rows of `history`), with a margin towards 'not'."""
    with np.errstate(all="ignore"):
        logs = np.log(np.where(history > 0, history, np.nan))
        spread = _noise_spread(logs)
        log_value = np.log(np.where(value > 0, value, np.nan))
        distance = np.fmin(
            np.abs(log_value - row_median(logs)),
            np.abs(log_value - np.log(np.where(expected > 0, expected, np.nan))),
        )
        guarded = (value > 0) & (spread >= float(NOISY_SPREAD) * (1 + 1e-9))
        return guarded & (distance <= float(params.z) * spread * (1 - 1e-9) - 1e-9)


def _usual_billing(value: np.ndarray, reach: np.ndarray, params: Params) -> np.ndarray:
    """`intermittent.usual_billing` of many billed days at once (rows of `reach`, the `params.reach`
    days before each, column j the day j + 1 back: the first `window` of them its band's history),
    with a margin towards 'not usual': True only where the exact rule surely says so."""
    history = reach[:, : params.window]
    present = ~np.isnan(history)
    idle, billed = present & (history <= 0), present & (history > 0)
    count, days = idle.sum(axis=1), present.sum(axis=1)
    lag = np.arange(1, history.shape[1] + 1) % 7  # the weekday of column j against day t
    weekdays = sum(idle[:, lag == k].any(axis=1).astype(np.int64) for k in range(7))
    intermittent = (
        (count >= INTERMITTENT_MIN) & (count * INTERMITTENT_EVERY >= days) & (weekdays >= IDLE_WEEKDAYS)
    )
    # Billed days in a row: each history day's run within the history, and day t's own (an
    # intermittent history has idle days, so t's run ends inside it).
    since = np.cumsum(billed, axis=1)
    runs = since - np.maximum.accumulate(np.where(billed, 0, since), axis=1)
    ahead = np.where(billed.all(axis=1), history.shape[1], np.argmin(billed, axis=1))
    in_run = 1 + ahead <= np.maximum(2 * runs.max(axis=1, initial=0), 2)
    n = (reach > 0).sum(axis=1)
    with np.errstate(all="ignore"):
        costs = np.where(reach > 0, reach, np.nan)
        centre = row_median(costs)
        spread = np.maximum(MAD_SIGMA * row_median(np.abs(costs - centre[:, None])), 0.01)
        margin = np.maximum(
            float(params.z) * spread,
            np.maximum(float(params.min_impact), float(params.min_pct) * centre / 100),
        )
        level = np.abs(value - centre) <= margin * (1 - 1e-9) - slack(value, centre, margin)
        logs = np.log(costs)
        middle = row_median(logs)
        scale = MAD_SIGMA * row_median(np.abs(logs - middle[:, None]))
        heavy = (
            (n >= GUARD_MIN)
            & (scale >= float(NOISY_SPREAD) * (1 + 1e-9))
            & (np.abs(np.log(value) - middle) <= float(params.z) * scale * (1 - 1e-9) - 1e-9)
        )
    out: np.ndarray = (value > 0) & intermittent & (n >= BILLED_MIN) & in_run & (level | heavy)
    return out


def noisy_days(values: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """(S, n) the days whose band history (the `window` days before, none before the row's column
    `starts`) is surely noisy (`bands.noisy`), from counts over rolling windows instead of sorted
    histories: a lag's spread reaches the bar when the lower middle of its |changes| does (then the
    median does) or when its nearest-rank 90th percentile does. Never True where the exact rule says
    not noisy (thresholds raised a little against float error); False on a few days it would call
    noisy, which are then only screened further."""
    s, n = values.shape
    with np.errstate(all="ignore"):
        logs = np.log(np.where(values > 0, values, np.nan))
    logs[np.arange(n)[None, :] < starts[:, None]] = np.nan
    bar = float(NOISY_SPREAD) * np.sqrt(2) * (1 + 1e-6)
    enough = np.zeros((s, n), dtype=bool)
    wide = np.ones((s, n), dtype=bool)
    for lag in (1, 7):  # a change of day u against day u - lag; both inside [t - window, t - 1]
        change = np.full((s, n), np.nan)
        change[:, lag:] = np.abs(logs[:, lag:] - logs[:, :-lag])
        span = window - lag
        counted = _rolling(~np.isnan(change), span)
        rank = np.clip(-(-counted * 9 // 10) - 1, 0, None)  # of the 90th percentile, as in log_spread
        middle = _rolling(change >= bar / MAD_SIGMA, span) >= counted - (counted - 1) // 2
        high = _rolling(change >= bar * float(Z90), span) >= counted - rank
        counts = counted >= GUARD_MIN
        enough |= counts
        wide &= ~counts | middle | high
    return (_rolling(~np.isnan(logs), window) >= GUARD_MIN) & enough & wide


def _rolling(flags: np.ndarray, span: int) -> np.ndarray:
    """(S, n) how many of days t - span .. t - 1 are flagged, for every day t."""
    sums = np.zeros((flags.shape[0], flags.shape[1] + 1), dtype=np.int64)
    np.cumsum(flags, axis=1, out=sums[:, 1:])
    t = np.arange(flags.shape[1])
    out: np.ndarray = sums[:, t] - sums[:, np.maximum(t - span, 0)]
    return out


def _noise_spread(logs: np.ndarray) -> np.ndarray:
    """`bands.noise_spread` of each row of billed-day logs (NaN elsewhere); inf where undefined."""
    billed = (~np.isnan(logs)).sum(axis=-1)
    spread = np.full(logs.shape[:-1], np.inf)
    for lag in (1, 7):  # column c: day t - c - 1 against `lag` days before
        if lag >= logs.shape[-1]:
            continue  # a window of one week has no pair a week apart
        changes = np.abs(logs[..., :-lag] - logs[..., lag:])
        counted = (~np.isnan(changes)).sum(axis=-1)
        spread = np.fmin(spread, np.where(counted >= GUARD_MIN, _log_spread(changes, counted), np.inf))
    return np.where((billed >= GUARD_MIN) & np.isfinite(spread), spread, -np.inf)


def _log_spread(changes: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """`bands.log_spread` of each row (NaN-padded)."""
    spread: np.ndarray = row_tail_scale(changes, counted) / np.sqrt(2)
    return spread


def _bands(
    values: np.ndarray,
    starts: np.ndarray,
    need: np.ndarray,
    params: Params,
    begin: np.ndarray | None = None,
    judge: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(expected, margin) of every day of every row, NaN without enough history (`need` days from
    the row's start) and before the row's column `begin` (the margin also before `judge`, when
    given: no spread is computed there). Histories are gathered only for the days
    that need one: the trailing median (before two same weekdays exist) and the spread, the costly
    part, computed only for the days outside the band's floors: the others are inside whatever it
    is, and their margin is left at the floors."""
    s, n = values.shape
    window = params.window
    present = _present(values, starts)
    enough = _rolling(present, window) >= need[:, None]
    if begin is not None:
        enough &= np.arange(n)[None, :] >= begin[:, None]
    lags = np.arange(7, window + 1, 7)  # the same weekday, one week back and more
    same_day = np.full((s, n, lags.size), np.nan)
    for j, lag in enumerate(lags):
        same_day[:, lag:, j] = np.where(present[:, :-lag], values[:, :-lag], np.nan)
    weeks = (~np.isnan(same_day)).sum(axis=2)
    weekly = (weeks >= WEEKDAY_MIN) & (params.baseline == "weekday")
    with np.errstate(all="ignore"):  # all-NaN rows: no history yet
        # Two same weekdays: the trailing median breaks the tie (as in baseline_band).
        two = weekly & (weeks == 2)
        r, c = np.nonzero((~weekly | two) & enough)  # the only days whose trailing median is needed
        trail_expected = np.full((s, n), np.nan)
        trail_expected[r, c] = row_median(_history(values, starts, r, c, window))
        expected = np.where(weekly, row_median(same_day), trail_expected)
        expected[two] = row_median(np.concatenate([same_day[two], trail_expected[two][:, None]], axis=-1))
        margin = np.maximum(float(params.min_impact), float(params.min_pct) * np.abs(expected) / 100)
        judged = enough if judge is None else enough & (np.arange(n)[None, :] >= judge[:, None])
        maybe = judged & ~(np.abs(values - expected) <= margin * (1 - 1e-9) - 1e-6)
        r, c = np.nonzero(maybe)
        by_week = weekly[r, c]
        spread = np.empty(r.size)
        spread[by_week] = weekly_spread(values, starts, r[by_week], c[by_week], window)
        # Trailing: one group, the window; large enough that leaving a day out hardly matters.
        trail = ~by_week
        centre = trail_expected[r[trail], c[trail]]
        rows = _history(values, starts, r[trail], c[trail], window)
        spread[trail] = row_median(np.abs(rows - centre[:, None]))
    margin[r, c] = np.maximum(margin[r, c], float(params.z) * np.maximum(MAD_SIGMA * spread, 0.01))
    return np.where(enough, expected, np.nan), np.where(judged, margin, np.nan)


def weekly_spread(
    values: np.ndarray, starts: np.ndarray, rows: np.ndarray, cols: np.ndarray, window: int
) -> np.ndarray:
    """The spread of the weekday baseline of the days (rows, cols): each history day against the
    median of the other days of its weekday in the window.

    When the window is whole weeks, a history day's weekday has the same number of days in every
    window that holds it, and which of them it is (oldest, second, ...) follows from its distance to
    the judged day; so each day's residual is computed once per position (`_weekday_residuals`) and
    gathered, instead of once per window that holds it (four weeks: 28 windows)."""
    table = _weekday_residuals(values, starts, window)
    if table is None:
        return _weekly_spread(
            _history(values, starts, rows, cols, window), np.arange(1, window + 1) % 7, window
        )
    lag = np.arange(1, window + 1)
    day = cols[:, None] - lag[None, :]
    got = table[rows[:, None], np.clip(day, 0, None), ((window - lag) // 7)[None, :]]
    return row_median(np.abs(np.where(day >= 0, got, np.nan)))


def _weekday_residuals(values: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray | None:
    """(S, n, weeks) for a window of whole weeks (None otherwise, or when its weekday groups are
    too large for leave-one-out medians): entry [s, i, p] is day i less the median of the other
    days of its weekday in a window where day i is the p-th of them, oldest first; NaN before the
    row's start or outside its series, as in `_history`."""
    weeks = window // 7
    if window % 7 or _others_for_window(window) is None:
        return None
    s, n = values.shape
    masked = np.where(np.arange(n)[None, :] >= np.maximum(starts, 0)[:, None], values, np.nan)
    padded = np.concatenate(
        [np.full((s, 7 * weeks), np.nan), masked, np.full((s, 7 * weeks), np.nan)], axis=1
    )
    out = np.empty((s, n, weeks))
    for p in range(weeks):
        others = [padded[:, 7 * (weeks + q - p) : 7 * (weeks + q - p) + n] for q in range(weeks) if q != p]
        centre = small_median(np.stack(others, axis=-1)) if others else np.full((s, n), np.nan)
        out[..., p] = masked - centre
    return out


def _weekly_spread(history: np.ndarray, keys: np.ndarray, window: int) -> np.ndarray:
    """`weekly_spread` of gathered histories (rows of `history`, column c the day c + 1 back)."""
    others = _others_for_window(window)
    if others is None:
        residuals = np.full_like(history, np.nan)
        for key in range(7):
            cols = np.flatnonzero(keys == key)
            residuals[..., cols] = history[..., cols] - row_median(history[..., cols])[..., None]
    else:
        padded = np.concatenate([history, np.full((*history.shape[:-1], 1), np.nan)], axis=-1)
        residuals = history - small_median(padded[..., others])
    return row_median(np.abs(residuals))


@functools.lru_cache(maxsize=8)
def _others_for_window(window: int) -> np.ndarray | None:
    return _others(np.arange(1, window + 1) % 7)


def _others(keys: np.ndarray) -> np.ndarray | None:
    """For each history column, the columns of the other days of its weekday (padded with an index
    one past the end, which reads NaN); None when groups are large (then the plain median is used)."""
    groups = [np.flatnonzero(keys == k) for k in range(7)]
    size = max(len(g) for g in groups)
    if size > 7:
        return None
    out = np.full((keys.size, max(size - 1, 1)), keys.size)
    for group in groups:
        for p, col in enumerate(group):
            rest = np.delete(group, p)
            out[col, : rest.size] = rest
    return out
