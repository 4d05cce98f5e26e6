"""Intermittent series: a service billed on some days and not on others (a weekly backup, a batch
job, a queue with a few line items now and then). On such a series the band of a day is built
mostly from days without charges, so it sits near zero and every billed day would leave it.

A series is intermittent around day t when at least one day in `INTERMITTENT_EVERY` of the band's
history (and no fewer than two) had no net charges, on at least `IDLE_WEEKDAYS` weekdays: two idle
days in four weeks can already halve a median of four same weekdays. A billed day of such a series
is then judged against its billed days only: it is usual billing when it lies within the band
those days give (their median, +- the larger of `z` robust standard deviations of them, a cent,
and the band's $ and % floors), or, when the billed days' costs are themselves spread over orders
of magnitude (a few heavy-tailed line items now and then), within `z` robust standard deviations
(from their MAD) of their median on the log scale (`_heavy_tailed_usual`, the noise guard of
`bands.ordinary` for billed days that are rarely next to each other); and when its run of
billed days is not far longer than the history's, both to open a change and to continue one.
Days without charges are its usual intermittency already (`baseline._usual_zero`).

>>> from decimal import Decimal as D
>>> from costlake.anomalies.bands import Params, baseline_band
>>> p = Params(window=14, min_history=7)
>>> values = [D(v) for v in "0 60 0 0 55 0 70 0 0 65 0 58 0 0 62".split()]
>>> band = baseline_band(values, 14, 0, p)
>>> (band.expected == 0, usual_billing(values, 14, range(0, 14), p, 0))
(True, True)
>>> usual_billing(values[:14] + [D(400)], 14, range(0, 14), p, 0)
False
>>> heavy = [D(v) for v in "0 0.4 0 0 3.1 0 0.2 0 0 9.5 0 1.2 0 0 0.05".split()]
>>> [usual_billing(heavy[:14] + [D(v)], 14, range(0, 14), p, 0) for v in (58, 9000)]
[True, False]
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from costlake.anomalies.bands import CENT, CTX, GUARD_MIN, MAD_TO_SIGMA, NOISY_SPREAD, Params, ln, median

INTERMITTENT_EVERY = 14  # one day in fourteen without charges makes a series intermittent
INTERMITTENT_MIN = 2  # and never fewer than two such days
IDLE_WEEKDAYS = 3  # on this many weekdays at least: idle weekends alone are a weekly pattern
BILLED_MIN = 1  # billed days that give an intermittent series its level (the floors bound its band)


def intermittent(values: Sequence[Decimal], t: int, history: range) -> bool:
    """Whether enough days of `history` had no net charges, spread over enough weekdays (of day
    t), for the series to be intermittent rather than weekly (a service idle every weekend keeps
    its weekday baseline, which knows a billed Sunday is not usual)."""
    idle = [i for i in history if values[i] <= 0]
    weekdays = {(t - i) % 7 for i in idle}
    return (
        len(idle) >= INTERMITTENT_MIN
        and len(idle) * INTERMITTENT_EVERY >= len(history)
        and len(weekdays) >= IDLE_WEEKDAYS
    )


def usual_billing(values: Sequence[Decimal], t: int, history: range, params: Params, since: int) -> bool:
    """Whether billed day t of a series intermittent over `history` (a band's, which ends the day
    before t or before the change it continues) is usual billing: within the band of the billed days
    of the `params.reach` days that end with that history, none before day `since` (the level's first
    day), `BILLED_MIN` of them at least; and not in a longer run of billed days than any of `history`
    (a service billed every third day that comes to be billed every day has changed, though each
    day costs what it did). False for any other day."""
    value = values[t]
    if value <= 0 or not intermittent(values, t, history):
        return False
    billed = [
        values[i] for i in range(max(since, history.stop - params.reach), history.stop) if values[i] > 0
    ]
    if len(billed) < BILLED_MIN or _run(values, t, range(t + 1)) > max(2 * _longest_run(values, history), 2):
        return False
    centre = median(billed)
    spread = max(MAD_TO_SIGMA * median(abs(v - centre) for v in billed), CENT)
    margin = max(params.z * spread, params.min_impact, CTX.divide(params.min_pct * centre, 100))
    return abs(value - centre) <= margin or _heavy_tailed_usual(value, billed, params)


def _heavy_tailed_usual(value: Decimal, billed: Sequence[Decimal], params: Params) -> bool:
    """Whether billed `value` is within `z` robust standard deviations of the median of `billed` on
    the log scale, when that spread reaches `NOISY_SPREAD` (billed days routinely x1.65 apart) over
    `GUARD_MIN` billed days at least: on a series billed in a few heavy-tailed line items now and
    then, a day of many times the usual billing is ordinary. The spread is 1.4826 x the median
    log distance (the MAD), which half the billed days must share: one odd bill among steady ones
    (a $10 day of a $100 job) leaves it at zero, where a tail percentile over a few days would
    widen the band by that one bill and hide a spike of any size."""
    if len(billed) < GUARD_MIN:
        return False
    logs = [ln(v) for v in billed]
    centre = median(logs)
    scale = MAD_TO_SIGMA * median(abs(x - centre) for x in logs)
    return scale >= NOISY_SPREAD and abs(ln(value) - centre) <= params.z * scale


def _run(values: Sequence[Decimal], t: int, days: range) -> int:
    """Billed days in a row ending at day t (none before `days`)."""
    run = 0
    while t - run in days and values[t - run] > 0:
        run += 1
    return run


def _longest_run(values: Sequence[Decimal], history: range) -> int:
    return max((_run(values, i, history) for i in history), default=0)
