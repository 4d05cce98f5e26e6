"""The `baseline` method: one pass over a daily series that opens a finding where a day leaves its
band and follows the change until it ends or becomes a level shift (see detect.py for the rules).

A float screen (screen.py) spares the exact band of days that are plainly inside it; `screen=False`
judges every day exactly, the reference the screen is tested against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from costlake.anomalies.bands import (
    CTX,
    Band,
    Finding,
    Params,
    SeriesResult,
    baseline_band,
    direction_of,
    opening_kind,
    ordinary,
    robust_z,
    sunk,
)
from costlake.anomalies.intermittent import usual_billing
from costlake.anomalies.screen import screen_bands


def settles(last: int, params: Params) -> int:
    """The first day whose judgement reads no day up to `last`: a day reads the `window` days
    before it (its band, noise and intermittency), the level in force and the change still open;
    and, when its window has days without charges (it may be intermittent), the billed days of the
    `params.reach` days before it (intermittent.usual_billing, `Sync.until`); and a step that
    starts on it may be dated `Params.dated_back` days earlier (`_Walk._began`), on those days'
    bands."""
    return last + params.window + 1 + params.dated_back


@dataclass(frozen=True)
class Sync:
    """What a walk needs to know of the stored analysis of its series, made before the series'
    days changed, all of them before `day` - `window` (detection's incremental path). A day's
    judgement reads the `window` days before it, the level in force and the change still open, and
    on an intermittent series the billed days of `Params.reach` days (up to `until` those may hold
    a changed day): on a day from `day` on where neither walk has a change open, both are on the
    same level and no day up to `until` can read a changed one (`clear`), the rest of the walk
    would repeat the stored one, so it stops there and the stored findings from that day on stand."""

    day: int
    # The level the walk starts on: that of the stored walk there, so no stored level shift before
    # the walk's first day starts after it (detection resumes where the stored walk was quiet).
    regime: int
    changes: tuple[tuple[int, int], ...]  # the stored changes of the total: (first day, duration)
    shift_days: int
    # The last day whose billed history (`Params.reach`) holds a changed day: up to it, a day whose
    # window has a day without charges may be judged on that history (an intermittent series), so
    # the walk stops only where no such window lies ahead up to it.
    until: int

    def clear(self, t: int, last_idle: int, window: int) -> bool:
        """Whether no day from t to `until` has a day without charges in its window, given the
        last such day up to `until` (-1: none): none of them reads its billed history."""
        return t > self.until or last_idle < t - window

    def level(self, t: int) -> int | None:
        """The first day of the stored walk's level on day t, or None while it had a change open
        (a change is open until two days after its last: a grace day, then the day that closes it;
        and from `shift_days` - 1 days before its first, the days a step may be dated back onto
        when it is derived again (`_Walk._began`), which the change before it may have barred)."""
        back = self.shift_days - 1  # Params.dated_back
        if any(start - back < t < start + duration + 2 for start, duration in self.changes):
            return None
        shifts = [start for start, duration in self.changes if duration >= self.shift_days and start < t]
        return max([self.regime, *shifts])


def detect_baseline(
    values: Sequence[Decimal],
    params: Params,
    *,
    screen: bool = True,
    begin: int = 0,
    regime: int = 0,
    screened: np.ndarray | None = None,
    sync: Sync | None = None,
) -> SeriesResult:
    """`screen=False` judges every day exactly (the reference the float screen is tested against);
    `screened`: the float screen of the level starting on day `regime`, when the caller has it
    (`screen.candidates` computes it for many series at once).
    `begin` resumes an analysis at a day on which no change was open, with the level that started
    on day `regime` (detection's incremental path); days before it need only be loaded as far back
    as a judgement reaches, `Params.reach` (see `frame.exact_series`). With `sync`, the walk stops as soon
    as it is in step with the stored analysis (`SeriesResult.settled`)."""
    walk = _Walk(values, params, screen, begin, regime, screened)
    idle = -1 if sync is None else _last_idle(values, begin - params.window, sync.until)
    for t in range(begin, len(values)):
        if (
            sync is not None
            and t >= sync.day
            and walk.open is None
            and sync.level(t) == walk.regime
            and sync.clear(t, idle, params.window)
        ):
            return SeriesResult(walk.findings, walk.band_at, len(values), settled=t)
        walk.step(t, values[t])
    if walk.open is not None and walk.grace:
        walk.open.ongoing = False  # the last day was already back to normal
    return SeriesResult(walk.findings, walk.band_at, len(values))


class _Walk:
    """The state of one pass between days: the current regime, and the change still going on."""

    def __init__(
        self,
        values: Sequence[Decimal],
        params: Params,
        screen: bool,
        begin: int,
        regime: int,
        screened: np.ndarray | None,
    ) -> None:
        self.values, self.params, self.screen = values, params, screen
        # Days before the loaded window (None, see frame.exact_series) are NaN: outside any history.
        self.floats = np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)
        self.begin = begin
        self.starts: dict[int, int] = {}  # the regime start each day was judged with
        self.findings: list[Finding] = []
        self.regime = regime  # first day of the current level; the history never reaches back before it
        self.screened = screen_bands(self.floats, self.regime, params) if screened is None else screened
        self.open: Finding | None = None  # the change still going on, judged against the level before it
        self.before: dict[int, Band | None] = {}  # that level's band per weekday phase of the change
        self.grace = 0  # days the change has been back to normal (it ends at the second)

    def band_at(self, t: int) -> Band | None:
        if t not in self.starts:
            raise ValueError(f"day {t} was not analysed (the analysis began on day {self.begin})")
        return baseline_band(self.values, t, self.starts[t], self.params)

    def leaves_band(self, t: int) -> tuple[Band | None, str | None]:
        """The exact band and direction of day t, when the float screen says it may be outside."""
        if self.screen and not self.screened[t]:
            return None, None  # no history, plainly inside, or ordinary: no need for exact arithmetic
        band = self.band_at(t)
        if band is None:
            return None, None
        value = self.values[t]
        direction = direction_of(value, band)
        if direction is None and sunk(self.values, t, band, self.params):
            direction = "down"
        if direction is not None and ordinary(self.values, t, band, self.params.z):
            return band, None  # outside the band, but an ordinary day of this series' noise
        if direction is not None and usual_billing(
            self.values, t, _before(t, band), self.params, self.starts[t]
        ):
            return band, None  # a billed day of a series billed now and then, like its others
        return band, direction

    def step(self, t: int, value: Decimal) -> None:
        self.starts[t] = self.regime
        if self.open is not None and self._continues(self.open, t, value):
            return
        band, direction = self.leaves_band(t)
        if band is not None and direction is not None and not _usual_zero(self.values, t, band):
            kind = opening_kind(self.values, t, band, direction)
            self.open = Finding(t, kind, direction, value, band, robust_z(value, band), ongoing=True)
            self.before = {0: band}
            self.findings.append(self.open)

    def _continues(self, change: Finding, t: int, value: Decimal) -> bool:
        """Whether day t belongs to the open change (or is a grace day of it); closes it if not."""
        # Still the same change while the cost stays outside the old level's band (that of the
        # first day, or the one the days before the change give this weekday: a drop that
        # starts on a quiet Sunday is still a drop on Monday) or more than halfway from the old
        # level to the new one (so one noisy day does not split a lasting step in two).
        phase = (t - change.index) % 7
        if phase not in self.before:
            self.before[phase] = baseline_band(
                self.values, t, self.starts[change.index], self.params, end=change.index
            )
        bands = (change.band, self.before[phase] or change.band)
        outside = any(direction_of(value, b) == change.direction for b in bands)
        same_change = outside or _beyond_halfway(value, change, self.before[phase])
        history, since = _before(change.index, change.band), self.starts[change.index]
        if same_change and usual_billing(self.values, t, history, self.params, since):
            same_change = False  # a series billed now and then, billed as it was before the change
        # Once the baseline restarted from the new level, a move away from that level is news.
        rebased = change.duration >= self.params.shift_days
        if same_change and not (rebased and self.leaves_band(t)[1] is not None):
            change.duration += 1 + self.grace  # a grace day followed by the change belongs to it
            self.grace = 0
            if change.duration >= self.params.shift_days and self.regime != change.index:
                self._level_shift(change)
            return True
        # One day back is not yet the end of a change that has lasted: it ends after two such
        # days in a row, unless that day is an anomaly of its own. (A one-day blip ends at
        # once, so a real change two days later is not dated at the blip.)
        lasting = change.duration > 1
        if lasting and self.grace == 0 and not same_change and self.leaves_band(t)[1] is None:
            self.grace = 1
            return True
        change.ongoing, self.open, self.grace = False, None, 0
        return False

    def _level_shift(self, change: Finding) -> None:
        """The change has lasted `shift_days`: it is a step, dated from where it began
        (`_began`), and the baseline restarts from it."""
        change.kind = {"spike": "step_up", "dip": "step_down"}.get(change.kind, change.kind)
        if change.kind in ("step_up", "step_down"):
            self._began(change)
        self.regime = change.index
        self.screened = screen_bands(self.floats, self.regime, self.params)

    def _began(self, change: Finding) -> None:
        """Date a step from its first day past halfway to the new level: on a noisy series the
        first days of a step can stay inside their band, which is wide, and the step would be
        dated where it first left it. The step moves back over at most `Params.dated_back` days just
        before it that were past the midpoint between their own band's level and the step's
        (`_beyond_halfway`) and billed, each judged by this walk on the same level, and none of them
        the change before it or the two days that closed it. Its first day is then reported as it was
        judged: its cost, its band and its score, which may be under `z`."""
        before = self.findings[-2] if len(self.findings) > 1 else None
        floor = self.begin if before is None else max(self.begin, before.index + before.duration + 2)
        first, first_band = change.index, change.band
        for day in range(change.index - 1, max(change.index - 1 - self.params.dated_back, floor - 1), -1):
            band = self.band_at(day) if self.starts.get(day) == self.starts[change.index] else None
            # A day without net charges is no part of a step down: nothing was billed (or credits
            # cancelled the charges), which a series that has such days does now and then.
            if band is None or self.values[day] <= 0 or not _beyond_halfway(self.values[day], change, band):
                break
            first, first_band = day, band
        if first == change.index:
            return
        change.duration += change.index - first
        change.index, change.actual, change.band = first, self.values[first], first_band
        change.score = robust_z(change.actual, first_band)
        self.before = {0: first_band}  # the old level's bands per weekday, from the new first day


def _beyond_halfway(value: Decimal, change: Finding, old: Band | None) -> bool:
    """Whether `value` is still past the midpoint between the old level (for its weekday) and the
    changed level, in the change's direction."""
    first = change.band.expected
    level = old.expected if old is not None else first
    step = change.impact if first == 0 else CTX.divide(change.impact * level, first)
    midpoint = level + step / 2
    return value > midpoint if change.direction == "up" else value < midpoint


def _last_idle(values: Sequence[Decimal], lo: int, until: int) -> int:
    """The last day from `lo` to `until` without net charges, -1 if none (days not loaded count as
    idle: nothing says they were billed)."""
    for i in range(min(until, len(values) - 1), max(lo, 0) - 1, -1):
        if values[i] is None or values[i] <= 0:
            return i
    return -1


def _before(t: int, band: Band) -> range:
    """The history days of a band of day t."""
    return range(t - band.history, t)


def _usual_zero(values: Sequence[Decimal], t: int, band: Band) -> bool:
    """A day without net charges (nothing billed, or credits as large as the charges) in a series
    that had such days in its history is its usual intermittency (a service billed now and then),
    not a drop."""
    return values[t] <= 0 and any(values[i] <= 0 for i in _before(t, band))
