"""The `day_over_day` method: the original system's rule, kept for comparison.

A day is a finding when its cost moved at least `dod_pct` % from the previous day's, with no $
floor (so $0.01 -> $0.02 is +100%); its band is the previous day +- that percentage.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from costlake.anomalies.bands import (
    CENT,
    CTX,
    PLACES,
    SCORE_PLACES,
    Band,
    Finding,
    Params,
    SeriesResult,
    opening_kind,
)


def detect_day_over_day(values: Sequence[Decimal], params: Params, *, begin: int = 0) -> SeriesResult:
    findings = []
    for t in range(max(begin, 1), len(values)):
        prev, value = values[t - 1], values[t]
        band = _previous_day_band(values, t, params)
        assert band is not None
        if value == prev or (prev != 0 and abs(value - prev) < band.high - prev):
            continue
        direction = "up" if value > prev else "down"
        kind = opening_kind(values, t, band, direction)
        score = None if prev == 0 else CTX.divide(abs(value - prev) * 100, abs(prev)).quantize(SCORE_PLACES)
        findings.append(Finding(t, kind, direction, value, band, score))
    return SeriesResult(findings, lambda t: _previous_day_band(values, t, params), len(values))


def _previous_day_band(values: Sequence[Decimal], t: int, params: Params) -> Band | None:
    if t == 0:
        return None
    prev = values[t - 1]
    margin = (abs(prev) * params.dod_pct / 100).quantize(PLACES, context=CTX)
    return Band(prev, prev - margin, prev + margin, CENT, (t - 1,), 1)
