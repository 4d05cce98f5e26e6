"""The parameters of the detection methods and their exact arithmetic: medians, bands, scores.

Everything here is a pure function on exact decimals at the lake's money scale, so a band or a
score is the same on every run and every machine; detect.py describes the methods that use them.

>>> from decimal import Decimal as D
>>> band = baseline_band([D("100")] * 14 + [D("400")], 14, 0, Params(window=14, min_history=7))
>>> (str(band.expected), str(band.high), direction_of(D("400"), band))
('100.000000000000', '160.000000000000', 'up')
"""

from __future__ import annotations

import decimal
import functools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)
CENT = Decimal("0.01")
PLACES = Decimal("1E-12")  # money scale of the lake: DECIMAL(38,12)
MAD_TO_SIGMA = Decimal("1.4826")
MAD_SIGMA = float(MAD_TO_SIGMA)
SCORE_PLACES = Decimal("0.0001")
CTX = decimal.Context(prec=60, rounding=decimal.ROUND_HALF_EVEN)

KINDS = ("spike", "dip", "step_up", "step_down", "new_service", "dropped_to_zero", "mix_shift")
WEEKDAY_MIN = 2  # same-weekday days the weekday baseline needs (with two, the trailing median breaks ties)
GUARD_MIN = 5  # billed days (and week-over-week pairs of them) the noise guard needs before it applies
LN_CTX = decimal.Context(prec=30, rounding=decimal.ROUND_HALF_EVEN)
SQRT2 = Decimal(2).sqrt(LN_CTX)
NOISY_SPREAD = Decimal("0.5")  # log spread from which a series' noise guards its days (see `ordinary`)
Z90 = Decimal("1.6449")  # |N(0, 1)| is below it 90% of the time


@dataclass(frozen=True)
class Params:
    """Thresholds of both methods; `from_settings` reads them from the `anomaly_*` settings."""

    method: str = "baseline"
    baseline: str = "weekday"
    window: int = 28
    min_history: int = 14
    z: Decimal = Decimal("4")
    min_impact: Decimal = Decimal("30")
    min_pct: Decimal = Decimal("60")
    shift_days: int = 3
    mix_shift_days: int = 7
    dod_pct: Decimal = Decimal("50")
    # Windows of history whose billed days judge a billed day of an intermittent series
    # (intermittent.py): a sparse service has too few of them in one window.
    billed_windows: int = 3
    # The revision of the rules: stored anomalies analysed under another one (their `params`
    # differ) are derived again in full. 2: a step is dated from its first day past halfway to
    # its new level (baseline._Walk._began), not from the first day it left its band.
    revision: int = 2

    @property
    def dated_back(self) -> int:
        """How many days before the day it first left its band a step may be dated: its first
        days may have stayed inside a wide band (baseline._Walk._began)."""
        return self.shift_days - 1

    @property
    def reach(self) -> int:
        """How many days before a day its judgement may read: the billed history of an
        intermittent series, which is never shorter than the window."""
        return self.window * max(self.billed_windows, 1)

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
        pct = CTX.divide(self.impact * 100, abs(self.band.expected))
        return pct.quantize(Decimal("0.0001"), context=CTX)


class SeriesResult:
    """Findings of one series, and its band on any day (computed exactly, on demand)."""

    def __init__(
        self,
        findings: list[Finding],
        band_at: Callable[[int], Band | None],
        days: int,
        settled: int | None = None,
    ) -> None:
        self.findings = findings
        self._band_at = band_at
        self._cache: dict[int, Band | None] = {}
        self.days = days
        # The day the walk stopped in step with a stored analysis (`baseline.Sync`): the stored
        # findings from that day on stand, and no band from there on was computed.
        self.settled = settled

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
    value = ordered[mid] if len(ordered) % 2 else CTX.divide(ordered[mid - 1] + ordered[mid], 2)
    return value.quantize(PLACES, context=CTX)


def quiet(values: Sequence[Decimal], params: Params) -> bool:
    """True when no day of the series can leave any band: every |cost| is under half the $ floor
    (so |actual - expected| < the floor), which is most sub-series of tiny services."""
    if params.method != "baseline":
        return False
    half = params.min_impact / 2
    return all(abs(v) < half for v in values)


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
    spread = _spread(values, history, t, weekly)
    margin = max(params.z * spread, params.min_impact, params.min_pct * abs(expected) / 100)
    margin = margin.quantize(PLACES, context=CTX)
    return Band(expected, expected - margin, expected + margin, spread, tuple(basis), len(history))


def _spread(values: Sequence[Decimal], history: range, t: int, weekly: bool) -> Decimal:
    """Spread from how well each history day is predicted by the others of its group (its weekday,
    or the whole window): the error the band has to allow for. Against a group median that
    includes the day itself, small groups would understate it."""
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
    return max(MAD_TO_SIGMA * median(abs(r) for r in residuals), CENT).quantize(PLACES, context=CTX)


def direction_of(value: Decimal, band: Band) -> str | None:
    """'up' or 'down' when `value` is outside the band, else None."""
    if value > band.high:
        return "up"
    if value < band.low:
        return "down"
    return None


def opening_kind(values: Sequence[Decimal], t: int, band: Band, direction: str) -> str:
    """The kind of a change that starts on day t."""
    history = range(t - band.history, t)
    if direction == "up" and band.expected == 0 and all(values[i] == 0 for i in history):
        return "new_service"
    if direction == "down" and values[t] == 0:
        return "dropped_to_zero"
    return "spike" if direction == "up" else "dip"


def sunk(values: Sequence[Decimal], t: int, band: Band, params: Params) -> bool:
    """Whether billed day t, although inside its band, fell further below the expected cost than
    the series' multiplicative noise allows: by more than the floors of the band, and by more than
    `z` log spreads (`noise_spread`) on the log scale. A band in dollars is symmetric, but costs
    cannot fall below zero: on a series whose day-to-day noise is proportional to its level, the
    dollar band reaches down to near zero, and a drop to a quarter of the usual cost would go
    unseen until it fell further."""
    value, expected = values[t], band.expected
    if value <= 0 or expected <= 0:
        return False
    floors = max(params.min_impact, CTX.divide(params.min_pct * expected, 100))
    if expected - value <= floors:
        return False
    rough = _rough_spread(values, t, band)[1]  # decided in floats where clear, as in `ordinary`
    side = 0 if rough is None else _side(math.log(expected) - math.log(value), float(params.z) * rough)
    if rough is None or side != 0:
        return side > 0
    spread = noise_spread(values, t, band)
    return spread is not None and ln(expected) - ln(value) > params.z * spread


def ordinary(values: Sequence[Decimal], t: int, band: Band, z: Decimal) -> bool:
    """The noise guard: whether day t, although outside its band, is an ordinary day of a series
    whose noise is multiplicative and large (a service billed in a few heavy-tailed line items a
    day). On the log scale of its billed days, the changes over the history from one day to the next,
    and from a week before (which a weekly pattern does not move), give the size of a routine move:
    the smaller `log_spread` of the two. When that exceeds `NOISY_SPREAD` (days routinely x1.65 apart,
    far beyond what the band's floors absorb), a day within `z` of it from the expected cost, or
    from the median billed day (a median of four same weekdays says little on such a series), is
    ordinary. A steady service is never guarded: its band and floors decide alone.

    Decided in floats where they are clearly on one side (logarithms at 30 digits are costly), in
    exact decimals otherwise (`exact_ordinary`); both always agree."""
    if values[t] <= 0:
        return False
    logs, spread = _rough_spread(values, t, band)
    if spread is None:
        return False
    guarded = _side(spread, float(NOISY_SPREAD))
    if guarded < 0:
        return False
    if guarded > 0:
        here = math.log(values[t])
        distances = [abs(here - _rough_median(logs))]
        if band.expected > 0:
            distances.append(abs(here - math.log(band.expected)))
        near = _side(min(distances), float(z) * spread)
        if near != 0:
            return near < 0
    return exact_ordinary(values, t, band, z)


def exact_ordinary(values: Sequence[Decimal], t: int, band: Band, z: Decimal) -> bool:
    """`ordinary` in exact decimals only."""
    value = values[t]
    if value <= 0:
        return False
    logs = _billed_logs(values, t, band)
    spread = noise_spread(values, t, band, logs)
    if spread is None or spread < NOISY_SPREAD:
        return False
    here = ln(value)
    distances = [abs(here - median(logs.values()))]
    if band.expected > 0:
        distances.append(abs(here - ln(band.expected)))
    return min(distances) <= z * spread


def noisy(values: Sequence[Decimal], t: int, band: Band) -> bool:
    """Whether the series is too noisy around day t for its mix to be judged (see `ordinary`);
    in floats where they are clearly on one side, like `ordinary`."""
    spread = _rough_spread(values, t, band)[1]
    side = 0 if spread is None else _side(spread, float(NOISY_SPREAD))
    if spread is None or side != 0:
        return side > 0
    exact = noise_spread(values, t, band)
    return exact is not None and exact >= NOISY_SPREAD


def noise_spread(
    values: Sequence[Decimal], t: int, band: Band, logs: dict[int, Decimal] | None = None
) -> Decimal | None:
    """The series' log spread over the band's history: the smaller `log_spread` of the changes from
    one billed day to the next and from a week before; None with fewer than `GUARD_MIN` billed days."""
    logs = _billed_logs(values, t, band) if logs is None else logs
    if len(logs) < GUARD_MIN:
        return None
    spreads = [log_spread([abs(logs[i] - logs[i - lag]) for i in logs if i - lag in logs]) for lag in (1, 7)]
    return min((x for x in spreads if x is not None), default=None)


def _rough_spread(values: Sequence[Decimal], t: int, band: Band) -> tuple[list[float], float | None]:
    """`noise_spread` in floats (None exactly when it is None: the counts are the same), with the
    billed days' logs. Off by far less than `_side`'s margin: logs to 1e-14, medians at 12 places."""
    logs = {i: math.log(values[i]) for i in range(t - band.history, t) if values[i] > 0}
    if len(logs) < GUARD_MIN:
        return list(logs.values()), None
    spreads = []
    for lag in (1, 7):
        changes = sorted(abs(logs[i] - logs[i - lag]) for i in logs if i - lag in logs)
        if len(changes) >= GUARD_MIN:
            high = changes[-(-len(changes) * 9 // 10) - 1]
            spreads.append(max(MAD_SIGMA * _rough_median(changes), high / float(Z90)) / math.sqrt(2))
    return list(logs.values()), min(spreads, default=None)


def _rough_median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _side(value: float, bar: float) -> int:
    """1 when a float result is clearly above `bar`, -1 clearly below, 0 too close to tell."""
    gap = 1e-9 * (abs(bar) + 1)
    return 1 if value >= bar + gap else -1 if value <= bar - gap else 0


def _billed_logs(values: Sequence[Decimal], t: int, band: Band) -> dict[int, Decimal]:
    return {i: ln(values[i]) for i in range(t - band.history, t) if values[i] > 0}


@functools.lru_cache(maxsize=1 << 16)
def ln(value: Decimal) -> Decimal:
    """Natural logarithm at 30 digits, correctly rounded (so the same everywhere); cached, as the
    guard takes the logs of the same history days for every day it judges."""
    return value.ln(LN_CTX)


def log_spread(changes: Sequence[Decimal]) -> Decimal | None:
    """A robust standard deviation of one day's log cost from |changes| between pairs of billed
    days: the larger of 1.4826 x their median and their 90th percentile (nearest rank) / 1.6449 --
    the same for Gaussian noise, the latter larger for the heavy tails of a few lognormal
    line items a day -- over sqrt 2 (a change is the difference of two days). None below
    `GUARD_MIN` changes."""
    if len(changes) < GUARD_MIN:
        return None
    return LN_CTX.divide(tail_scale(changes, LN_CTX), SQRT2)


def tail_scale(deviations: Sequence[Decimal], context: decimal.Context) -> Decimal:
    """The larger of 1.4826 x the median of |deviations| and their 90th percentile (nearest rank) /
    1.6449: a robust standard deviation that agrees with the MAD for Gaussian noise and sees a
    heavy tail (or a series that moves nothing on most days and a lot on some) where the MAD alone
    would not. At least one deviation."""
    ordered = sorted(deviations)
    high = ordered[-(-len(ordered) * 9 // 10) - 1]  # nearest rank: the ceil(0.9 k)-th
    return max(MAD_TO_SIGMA * median(ordered), context.divide(high, Z90))


def robust_z(value: Decimal, band: Band) -> Decimal:
    return CTX.divide(value - band.expected, band.spread).quantize(SCORE_PLACES, context=CTX)
