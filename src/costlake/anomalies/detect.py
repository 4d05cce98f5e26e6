"""Anomaly detection over one daily cost series: pure functions on exact decimals.

A series is the cost of one (account, service) -- or of one region or pricing model inside it --
for consecutive days, zero where nothing was billed. Two methods:

* ``baseline``: the expected cost of day t is the median of the same weekday in the trailing window
  (``weekday``; the plain trailing median until two such days exist) or the trailing median
  (``trailing``). The spread is the MAD of the history around that baseline, scaled by 1.4826 so it
  estimates a standard deviation. Day t is anomalous when it leaves the band
  ``expected +- max(z x spread, min impact $, min % x |expected|)``: the $ floor keeps cent-level
  noise on tiny services quiet and the % floor keeps large stable services from alerting on a
  routine wobble. A change that lasts is one event: its first day is reported with how long it has
  lasted (each later day judged against the level before the change); after ``shift_days`` days it
  is a level shift and the baseline restarts from the new level, so the same shift never alerts
  twice. A day without charges in a series that had such days before is its usual intermittency.
* ``day_over_day``: the original system's rule, kept for comparison: |% change from the previous
  day| >= a threshold, with no $ floor (so $0.01 -> $0.02 is +100%).

>>> from decimal import Decimal as D
>>> p = Params(window=14, min_history=7)
>>> flat = [D("100")] * 20 + [D("400")] + [D("100")] * 5
>>> [(f.index, f.kind, str(f.impact), f.duration) for f in detect(flat, p).findings]
[(20, 'spike', '300.000000000000', 1)]
>>> step = [D("100")] * 20 + [D("250")] * 10
>>> [(f.index, f.kind, f.duration, f.ongoing) for f in detect(step, p).findings]
[(20, 'step_up', 10, True)]
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

import numpy as np

from costlake.anomalies.bands import KINDS, Band, Finding, Params, SeriesResult, median, quiet
from costlake.anomalies.baseline import Sync, detect_baseline
from costlake.anomalies.day_over_day import detect_day_over_day

# The methods live beside this module (bands.py: parameters and exact band arithmetic, screen.py:
# the float screen, baseline.py, day_over_day.py); callers import what they need from here.
__all__ = [
    "KINDS",
    "Band",
    "Finding",
    "Params",
    "SeriesResult",
    "Sync",
    "detect",
    "detect_baseline",
    "detect_day_over_day",
    "median",
    "quiet",
]


def detect(
    values: Sequence[Decimal],
    params: Params,
    *,
    begin: int = 0,
    regime: int = 0,
    screened: np.ndarray | None = None,
    sync: Sync | None = None,
) -> SeriesResult:
    """Bands and findings of one daily series with the configured method, from day `begin` on (see
    `detect_baseline`, which also takes `screened` and `sync`; the day-over-day rule has no state to
    resume)."""
    if params.method == "day_over_day":
        return detect_day_over_day(values, params, begin=begin)
    if params.method != "baseline":
        raise ValueError(f"unknown anomaly method {params.method!r}")
    return detect_baseline(values, params, begin=begin, regime=regime, screened=screened, sync=sync)
