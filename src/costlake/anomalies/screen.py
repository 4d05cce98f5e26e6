"""The float screen of the baseline method: every day's band at once, approximately, in numpy.

Exact decimal bands cost a sort per day; most days are plainly inside their band, so the baseline
method first computes all bands in floats and only judges exactly the days that may be outside.
The screen must mirror `bands.baseline_band` rule for rule (tests/anomalies/test_detect.py checks
that it never changes a finding).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from costlake.anomalies.bands import MAD_SIGMA, WEEKDAY_MIN, Params, min_history


def screen_bands(values: np.ndarray, start: int, params: Params) -> tuple[np.ndarray, np.ndarray]:
    """`baseline_band` for every day at once, in floats, for a regime starting at `start`:
    (expected, margin), NaN where there is too little history. Only a screen: days plainly inside
    their band skip the exact computation; a day that may be outside is judged exactly."""
    n, window = values.size, params.window
    t = np.arange(n)[:, None]
    lag = np.arange(1, window + 1)[None, :]  # column c holds day t - (c + 1)
    index = t - lag
    valid = index >= max(start, 0)
    history = np.where(valid, values[np.clip(index, 0, None)], np.nan)
    enough = valid.sum(axis=1) >= min_history(start, params)
    keys = lag[0] % 7
    weekly = (valid[:, keys == 0].sum(axis=1) >= WEEKDAY_MIN) & (params.baseline == "weekday")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no history yet
        # Trailing: one group, the window; large enough that leaving a day out hardly matters.
        trail_expected = _row_median(history)
        trail_spread = _row_median(np.abs(history - trail_expected[:, None]))
        week_expected, week_spread = _weekly(history, keys, trail_expected, window)
    expected = np.where(weekly, week_expected, trail_expected)
    spread = np.maximum(MAD_SIGMA * np.where(weekly, week_spread, trail_spread), 0.01)
    margin = np.maximum.reduce(
        [
            float(params.z) * spread,
            np.full(n, float(params.min_impact)),
            float(params.min_pct) * np.abs(expected) / 100,
        ]
    )
    return np.where(enough, expected, np.nan), np.where(enough, margin, np.nan)


def _weekly(
    history: np.ndarray, keys: np.ndarray, trail_expected: np.ndarray, window: int
) -> tuple[np.ndarray, np.ndarray]:
    """(expected, spread) of the weekday baseline: each history day against the median of the
    other days of its weekday."""
    others = _others_for_window(window)
    if others is None:
        residuals = np.full_like(history, np.nan)
        for key in range(7):
            cols = np.flatnonzero(keys == key)
            residuals[:, cols] = history[:, cols] - _row_median(history[:, cols])[:, None]
    else:
        padded = np.concatenate([history, np.full((history.shape[0], 1), np.nan)], axis=1)
        residuals = history - _row_median(padded[:, others])
    same_day = history[:, keys == 0]
    week_expected = _row_median(same_day)
    # Two same weekdays: the trailing median breaks the tie (as in baseline_band).
    two = (~np.isnan(same_day)).sum(axis=1) == 2
    with_window = np.concatenate([same_day, trail_expected[:, None]], axis=1)
    week_expected = np.where(two, _row_median(with_window), week_expected)
    return week_expected, _row_median(np.abs(residuals))


def _row_median(a: np.ndarray) -> np.ndarray:
    """Median along the last axis, ignoring NaN (NaN where nothing is left); numpy's nanmedian is
    slow on many small rows."""
    ordered = np.sort(a, axis=-1)  # NaN sorts last
    count = (~np.isnan(a)).sum(axis=-1)
    lo = np.take_along_axis(ordered, np.clip((count - 1) // 2, 0, None)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(ordered, np.clip(count // 2, 0, None)[..., None], axis=-1)[..., 0]
    return np.where(count > 0, (lo + hi) / 2, np.nan)


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
