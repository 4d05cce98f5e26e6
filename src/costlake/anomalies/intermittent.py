"""Intermittent series: a service billed on some days and not on others (a weekly backup, a batch
job, a queue with a few line items now and then). On such a series the band of a day is built
mostly from days without charges, so it sits near zero and every billed day would leave it.

A series is intermittent around day t when at least one day in `INTERMITTENT_EVERY` of the band's
history (and no fewer than two) had no net charges: two idle days in four weeks can already
halve a median of four same weekdays. A billed day of such a series is then judged
against its billed days only: it is usual billing when it lies within the band those days give
(their median, +- the larger of `z` robust standard deviations of them and the band's $ and %
floors), both to open a change and to continue one. Days without charges are its usual
intermittency already (`baseline._usual_zero`).

>>> from decimal import Decimal as D
>>> from costlake.anomalies.bands import Params, baseline_band
>>> p = Params(window=14, min_history=7)
>>> values = [D(v) for v in "0 60 0 0 55 0 70 0 0 65 0 58 0 0 62".split()]
>>> band = baseline_band(values, 14, 0, p)
>>> (band.expected == 0, usual_billing(values, D(64), range(0, 14), p))
(True, True)
>>> usual_billing(values, D(400), range(0, 14), p)
False
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from costlake.anomalies.bands import CENT, CTX, MAD_TO_SIGMA, Params, median

INTERMITTENT_EVERY = 14  # one day in fourteen without charges makes a series intermittent
INTERMITTENT_MIN = 2  # and never fewer than two such days
BILLED_MIN = 1  # billed days that give an intermittent series its level (the floors bound its band)


def intermittent(values: Sequence[Decimal], history: range) -> bool:
    """Whether enough days of `history` had no net charges for the series to be intermittent."""
    idle = sum(1 for i in history if values[i] <= 0)
    return idle >= INTERMITTENT_MIN and idle * INTERMITTENT_EVERY >= len(history)


def usual_billing(values: Sequence[Decimal], value: Decimal, history: range, params: Params) -> bool:
    """Whether `value`, a billed day of a series intermittent over `history`, lies within the band
    of the billed days of that history (`BILLED_MIN` of them at least); False for any other day."""
    if value <= 0 or not intermittent(values, history):
        return False
    billed = [values[i] for i in history if values[i] > 0]
    if len(billed) < BILLED_MIN:
        return False
    centre = median(billed)
    spread = max(MAD_TO_SIGMA * median(abs(v - centre) for v in billed), CENT)
    margin = max(params.z * spread, params.min_impact, CTX.divide(params.min_pct * centre, 100))
    return abs(value - centre) <= margin
