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

import decimal
import functools
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

ZERO = Decimal(0)
CENT = Decimal("0.01")
PLACES = Decimal("1E-12")  # money scale of the lake: DECIMAL(38,12)
MAD_TO_SIGMA = Decimal("1.4826")
MAD_SIGMA = float(MAD_TO_SIGMA)
_CTX = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN)

KINDS = ("spike", "dip", "step_up", "step_down", "new_service", "dropped_to_zero", "mix_shift")


@dataclass(frozen=True)
class Params:
    """Thresholds of both methods; `from_settings` reads them from the `anomaly_*` settings."""

    method: str = "baseline"
    baseline: str = "weekday"
    window: int = 28
    min_history: int = 14
    z: Decimal = Decimal("4")
    min_impact: Decimal = Decimal("10")
    min_pct: Decimal = Decimal("60")
    shift_days: int = 3
    mix_shift_days: int = 7
    dod_pct: Decimal = Decimal("50")

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> Params:
        values = {
            "method": settings.anomaly_method,
            "baseline": settings.anomaly_baseline,
            "window": settings.anomaly_window_days,
            "min_history": settings.anomaly_min_history_days,
            "z": Decimal(str(settings.anomaly_z)),
            "min_impact": Decimal(settings.anomaly_min_impact_usd),
            "min_pct": Decimal(settings.anomaly_min_pct),
            "shift_days": settings.anomaly_shift_days,
            "mix_shift_days": settings.anomaly_mix_shift_days,
            "dod_pct": Decimal(settings.anomaly_dod_pct),
        }
        return cls(**(values | overrides))


@dataclass(frozen=True)
class Band:
    """The expected cost of one day and the range inside which it is normal."""

    expected: Decimal
    low: Decimal
    high: Decimal
    spread: Decimal  # robust standard deviation of the history (never below one cent)
    basis: tuple[int, ...]  # the days whose median is `expected`
    history: int  # days of history the band was built from


@dataclass
class Finding:
    """One anomaly: the first day of a change, with how long the change lasted."""

    index: int
    kind: str
    direction: str  # up | down | shift
    actual: Decimal
    band: Band
    score: Decimal | None  # robust z (baseline) or |% change| (day_over_day), 4 places
    duration: int = 1
    ongoing: bool = False
    contributors: list[Any] = field(default_factory=list)

    @property
    def impact(self) -> Decimal:
        return self.actual - self.band.expected

    @property
    def impact_pct(self) -> Decimal | None:
        """% of the expected cost, 4 places; None when nothing was expected."""
        if self.band.expected == 0:
            return None
        pct = _CTX.divide(self.impact * 100, abs(self.band.expected))
        return pct.quantize(Decimal("0.0001"), context=_CTX)


class SeriesResult:
    """Findings of one series, and its band on any day (computed exactly, on demand)."""

    def __init__(self, findings: list[Finding], band_at: Callable[[int], Band | None], days: int) -> None:
        self.findings = findings
        self._band_at = band_at
        self._cache: dict[int, Band | None] = {}
        self.days = days

    def band(self, t: int) -> Band | None:
        """The band of day t; None where the series has too little history."""
        if t not in self._cache:
            self._cache[t] = self._band_at(t)
        return self._cache[t]

    @property
    def bands(self) -> list[Band | None]:
        return [self.band(t) for t in range(self.days)]


def median(values: Iterable[Decimal]) -> Decimal:
    """Exact median (the mean of the middle two for an even count), at the lake's 12 places.

    >>> median([Decimal("3"), Decimal("1"), Decimal("2"), Decimal("10")])
    Decimal('2.500000000000')
    """
    ordered = sorted(values)
    if not ordered:
        return ZERO.quantize(PLACES)
    mid = len(ordered) // 2
    value = ordered[mid] if len(ordered) % 2 else _CTX.divide(ordered[mid - 1] + ordered[mid], 2)
    return value.quantize(PLACES, context=_CTX)


def quiet(values: Sequence[Decimal], params: Params) -> bool:
    """True when no day of the series can leave any band: every |cost| is under half the $ floor
    (so |actual - expected| < the floor), which is most sub-series of tiny services."""
    if params.method != "baseline":
        return False
    half = params.min_impact / 2
    return all(abs(v) < half for v in values)


WEEKDAY_MIN = 2  # same-weekday days the weekday baseline needs (with two, the trailing median breaks ties)


def min_history(start: int, params: Params) -> int:
    """Days of history a day needs: `min_history` at the start of a series, `shift_days` after a level
    shift restarted the baseline (so a second change soon after the first is not missed)."""
    return params.min_history if start == 0 else params.shift_days


def baseline_band(
    values: Sequence[Decimal], t: int, start: int, params: Params, end: int | None = None
) -> Band | None:
    """The band of day t from the history [max(start, end - window), end) (`end` defaults to t: the
    days just before; an earlier `end` judges t against the level before a change), or None."""
    end = t if end is None else end
    history = range(max(start, end - params.window), end)
    if len(history) < min_history(start, params):
        return None
    same = [i for i in history if (t - i) % 7 == 0]
    weekly = params.baseline == "weekday" and len(same) >= WEEKDAY_MIN
    basis = same if weekly else list(history)
    expected = median(values[i] for i in basis)
    if weekly and len(same) == 2:  # one odd day must not be half the baseline: the window votes too
        expected = median([values[same[0]], values[same[1]], median(values[i] for i in history)])
    # Spread from how well each history day is predicted by the others of its group (its weekday,
    # or the whole window): the error the band has to allow for. Against a group median that
    # includes the day itself, small groups would understate it.
    groups: dict[int, list[int]] = {}
    for i in history:
        groups.setdefault((t - i) % 7 if weekly else 0, []).append(i)
    residuals = []
    for members in groups.values():
        centre = median(values[j] for j in members) if len(members) > 7 else None
        for i in members:
            if centre is not None:  # large groups: leaving one day out hardly moves the median
                residuals.append(values[i] - centre)
            elif len(members) > 1:
                residuals.append(values[i] - median(values[j] for j in members if j != i))
    spread = max(MAD_TO_SIGMA * median(abs(r) for r in residuals), CENT).quantize(PLACES, context=_CTX)
    margin = max(params.z * spread, params.min_impact, params.min_pct * abs(expected) / 100)
    margin = margin.quantize(PLACES, context=_CTX)
    return Band(expected, expected - margin, expected + margin, spread, tuple(basis), len(history))


def _direction(value: Decimal, band: Band) -> str | None:
    if value > band.high:
        return "up"
    if value < band.low:
        return "down"
    return None


def _beyond_halfway(value: Decimal, change: Finding, old: Band | None) -> bool:
    """Whether `value` is still past the midpoint between the old level (for its weekday) and the
    changed level, in the change's direction."""
    first = change.band.expected
    level = old.expected if old is not None else first
    step = change.impact if first == 0 else _CTX.divide(change.impact * level, first)
    midpoint = level + step / 2
    return value > midpoint if change.direction == "up" else value < midpoint


def _usual_zero(values: Sequence[Decimal], t: int, band: Band) -> bool:
    """A day without charges in a series that had such days in its history is its usual
    intermittency (a service billed now and then), not a drop."""
    return values[t] == 0 and any(values[i] == 0 for i in range(t - band.history, t))


def _opening_kind(values: Sequence[Decimal], t: int, band: Band, direction: str) -> str:
    history = range(t - band.history, t)
    if direction == "up" and band.expected == 0 and all(values[i] == 0 for i in history):
        return "new_service"
    if direction == "down" and values[t] == 0:
        return "dropped_to_zero"
    return "spike" if direction == "up" else "dip"


SCORE_PLACES = Decimal("0.0001")


def _score(value: Decimal, band: Band) -> Decimal:
    return _CTX.divide(value - band.expected, band.spread).quantize(SCORE_PLACES, context=_CTX)


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


def _screen(values: np.ndarray, start: int, params: Params) -> tuple[np.ndarray, np.ndarray]:
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
        # Weekly: each history day against the median of the other days of its weekday.
        others = _others_for_window(window)
        if others is None:
            residuals = np.full_like(history, np.nan)
            for key in range(7):
                cols = np.flatnonzero(keys == key)
                residuals[:, cols] = history[:, cols] - _row_median(history[:, cols])[:, None]
        else:
            padded = np.concatenate([history, np.full((n, 1), np.nan)], axis=1)
            residuals = history - _row_median(padded[:, others])
        same_day = history[:, keys == 0]
        week_expected = _row_median(same_day)
        # Two same weekdays: the trailing median breaks the tie (as in baseline_band).
        two = (~np.isnan(same_day)).sum(axis=1) == 2
        with_window = np.concatenate([same_day, trail_expected[:, None]], axis=1)
        week_expected = np.where(two, _row_median(with_window), week_expected)
        week_spread = _row_median(np.abs(residuals))
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


def detect_baseline(values: Sequence[Decimal], params: Params, *, screen: bool = True) -> SeriesResult:
    """`screen=False` judges every day exactly (the reference the float screen is tested against)."""
    floats = np.array([float(v) for v in values], dtype=np.float64)
    starts: list[int] = []  # the regime start each day was judged with
    findings: list[Finding] = []
    regime = 0  # first day of the current level; the history never reaches back before it
    screened = _screen(floats, regime, params)
    open_: Finding | None = None  # the change still going on, judged against the level before it
    before: dict[int, Band | None] = {}  # that level's band per weekday phase of the change
    grace = 0  # days the change has been back to normal (it ends at the second)

    def band_at(t: int) -> Band | None:
        return baseline_band(values, t, starts[t], params)

    def leaves_band(t: int) -> tuple[Band | None, str | None]:
        """The exact band and direction of day t, when the float screen says it may be outside."""
        expected, margin = screened[0][t], screened[1][t]
        if not screen:
            pass
        elif np.isnan(expected) or abs(floats[t] - expected) <= margin * (1 - 1e-9) - 1e-6:
            return None, None  # no history, or plainly inside: no need for exact arithmetic
        band = band_at(t)
        return band, None if band is None else _direction(values[t], band)

    for t, value in enumerate(values):
        starts.append(regime)
        if open_ is not None:
            # Still the same change while the cost stays outside the old level's band (that of the
            # first day, or the one the days before the change give this weekday: a drop that
            # starts on a quiet Sunday is still a drop on Monday) or more than halfway from the old
            # level to the new one (so one noisy day does not split a lasting step in two).
            phase = (t - open_.index) % 7
            if phase not in before:
                before[phase] = baseline_band(values, t, starts[open_.index], params, end=open_.index)
            bands = (open_.band, before[phase] or open_.band)
            outside = any(_direction(value, b) == open_.direction for b in bands)
            same_change = outside or _beyond_halfway(value, open_, before[phase])
            # Once the baseline restarted from the new level, a move away from that level is news.
            rebased = open_.duration >= params.shift_days
            if same_change and not (rebased and leaves_band(t)[1] is not None):
                open_.duration += 1 + grace  # a grace day followed by the change belongs to it
                grace = 0
                if open_.duration >= params.shift_days and regime != open_.index:  # a level shift
                    open_.kind = {"spike": "step_up", "dip": "step_down"}.get(open_.kind, open_.kind)
                    regime = open_.index
                    screened = _screen(floats, regime, params)
                continue
            # One day back is not yet the end of a change that has lasted: it ends after two such
            # days in a row, unless that day is an anomaly of its own. (A one-day blip ends at
            # once, so a real change two days later is not dated at the blip.)
            lasting = open_.duration > 1
            if lasting and grace == 0 and not same_change and leaves_band(t)[1] is None:
                grace = 1
                continue
            open_.ongoing, open_, grace = False, None, 0
        band, direction = leaves_band(t)
        if band is not None and direction is not None and not _usual_zero(values, t, band):
            kind = _opening_kind(values, t, band, direction)
            open_ = Finding(t, kind, direction, value, band, _score(value, band), ongoing=True)
            before = {0: band}
            findings.append(open_)
    if open_ is not None and grace:
        open_.ongoing = False  # the last day was already back to normal
    return SeriesResult(findings, band_at, len(values))


def _previous_day_band(values: Sequence[Decimal], t: int, params: Params) -> Band | None:
    if t == 0:
        return None
    prev = values[t - 1]
    margin = (abs(prev) * params.dod_pct / 100).quantize(PLACES, context=_CTX)
    return Band(prev, prev - margin, prev + margin, CENT, (t - 1,), 1)


def detect_day_over_day(values: Sequence[Decimal], params: Params) -> SeriesResult:
    findings = []
    for t in range(1, len(values)):
        prev, value = values[t - 1], values[t]
        band = _previous_day_band(values, t, params)
        assert band is not None
        if value == prev or (prev != 0 and abs(value - prev) < band.high - prev):
            continue
        direction = "up" if value > prev else "down"
        kind = _opening_kind(values, t, band, direction)
        score = None if prev == 0 else _CTX.divide(abs(value - prev) * 100, abs(prev)).quantize(SCORE_PLACES)
        findings.append(Finding(t, kind, direction, value, band, score))
    return SeriesResult(findings, lambda t: _previous_day_band(values, t, params), len(values))


def detect(values: Sequence[Decimal], params: Params) -> SeriesResult:
    """Bands and findings of one daily series with the configured method."""
    if params.method == "day_over_day":
        return detect_day_over_day(values, params)
    if params.method != "baseline":
        raise ValueError(f"unknown anomaly method {params.method!r}")
    return detect_baseline(values, params)
