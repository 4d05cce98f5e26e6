"""Statistics of many rows of floats at once, NaN-padded (each row holds as many values as it has,
NaN after or among them), for the float screens of detection (screen.py, mix.py): medians without
numpy's slow nanmedian, the robust scale of `bands.tail_scale`, and the margin a float comparison
needs against the exact one."""

from __future__ import annotations

import numpy as np

from costlake.anomalies.bands import MAD_SIGMA, Z90


def slack(*sizes: np.ndarray) -> np.ndarray:
    """How far a float comparison of costs of these sizes may be from the exact one: the costs'
    rounding to floats and the arithmetic on them (a few units in the last place of the largest),
    and the exact medians' rounding to 12 places (within the 1e-6 at least). At a cost of $1e15 a
    unit in the last place is $0.125: a fixed margin would let a cent's difference through."""
    out: np.ndarray = 1e-6 + 16 * np.finfo(np.float64).eps * sum(np.abs(x) for x in sizes)
    return out


def row_tail_scale(deviations: np.ndarray, counted: np.ndarray) -> np.ndarray:
    """`bands.tail_scale` of each row (NaN-padded; `counted` values in each)."""
    ordered = np.sort(deviations, axis=-1)  # NaN last
    rank = np.clip(-(-counted * 9 // 10) - 1, 0, None)  # nearest rank, as in bands.tail_scale
    high = np.take_along_axis(ordered, rank[..., None], axis=-1)[..., 0]
    scale: np.ndarray = np.maximum(MAD_SIGMA * row_median(deviations), high / float(Z90))
    return scale


def small_median(a: np.ndarray) -> np.ndarray:
    """`row_median` of rows of at most three values, without sorting (the other days of a weekday
    in a four-week window): the middle one is selected, never computed."""
    if a.shape[-1] != 3:
        return row_median(a)
    x, y, z = a[..., 0], a[..., 1], a[..., 2]
    count = (~np.isnan(a)).sum(axis=-1)
    low, high = np.fmin(np.fmin(x, y), z), np.fmax(np.fmax(x, y), z)  # over the values present
    middle = np.maximum(np.minimum(x, y), np.minimum(np.maximum(x, y), z))  # when all three are
    out: np.ndarray = np.where(count == 3, middle, np.where(count > 0, (low + high) / 2, np.nan))
    return out


def row_median(a: np.ndarray) -> np.ndarray:
    """Median along the last axis, ignoring NaN (NaN where nothing is left); numpy's nanmedian is
    slow on many small rows."""
    ordered = np.sort(a, axis=-1)  # NaN sorts last
    count = (~np.isnan(a)).sum(axis=-1)
    lo = np.take_along_axis(ordered, np.clip((count - 1) // 2, 0, None)[..., None], axis=-1)[..., 0]
    hi = np.take_along_axis(ordered, np.clip(count // 2, 0, None)[..., None], axis=-1)[..., 0]
    return np.where(count > 0, (lo + hi) / 2, np.nan)
