"""Root causes of an anomaly: which region, pricing model, charge category or usage type moved the cost.

Each value of each dimension is its own daily series inside the (account, service). Its expected
cost on the anomaly's day is the median over the same baseline days as the total's, so a value's
contribution c is how far it moved from its own normal. Contributors are ranked by
``|c| x |c| / (|expected| + |actual|)``: the dollar contribution, weighted by how completely the
value changed (1 for a region that appeared from nothing or stopped, a credit that is new). That
puts the region that moved above the charge category `usage`, which carries almost every dollar of
every service and so always moves with it, explaining nothing.

>>> from decimal import Decimal as D
>>> from costlake.anomalies.detect import Band, Finding
>>> band = Band(D("100"), D("50"), D("150"), D("5"), (0, 1, 2), 3)
>>> f = Finding(3, "spike", "up", D("300"), band, 40.0)
>>> parts = {
...     ("region", "us-east-1"): [D("100")] * 4,
...     ("region", "eu-west-1"): [D(0)] * 3 + [D("200")],
...     ("charge_category", "usage"): [D("100")] * 3 + [D("300")],
... }
>>> [(c.dimension, c.value, str(c.contribution)) for c in contributors(f, parts)]
[('region', 'eu-west-1', '200.000000000000'), ('charge_category', 'usage', '200.000000000000')]
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from costlake.anomalies.bands import CTX, PLACES
from costlake.anomalies.detect import Finding, median
from costlake.anomalies.frame import DIMENSIONS
from costlake.catalog.rows import contributor_values

TOP = 5


@dataclass(frozen=True)
class Contributor:
    dimension: str
    value: str
    actual: Decimal
    expected: Decimal
    contribution: Decimal

    def as_json(self) -> dict[str, str]:
        return {
            "dimension": self.dimension,
            "value": self.value,
            "actual_usd": _plain(self.actual),
            "expected_usd": _plain(self.expected),
            "contribution_usd": _plain(self.contribution),
        }


def _plain(amount: Decimal) -> str:
    """An amount as positional text, as every other amount is shown (a zero at 12 places is
    `0.000000000000`, not `0E-12`; never `-0`).

    >>> _plain(Decimal("0E-12")), _plain(Decimal("-0E-12")), _plain(Decimal("1.50"))
    ('0.000000000000', '0.000000000000', '1.50')
    """
    return format(amount.copy_abs() if amount.is_zero() else amount, "f")


def parse_contributors(text: str) -> list[Contributor]:
    """The contributors of a stored row, from its `contributors` JSON (`contributors_json`)."""
    return [Contributor(*values) for values in contributor_values(text)]


def _weight(c: Contributor) -> Decimal:
    size = abs(c.contribution)
    return size * size / (abs(c.expected) + abs(c.actual))


def contributors(
    finding: Finding,
    parts: Mapping[tuple[str, str], Sequence[Decimal]],
    totals: Sequence[Decimal] | None = None,
    top: int = TOP,
) -> list[Contributor]:
    """The `top` dimension values that moved most in the finding's direction (both ways for a shift),
    over the finding's whole episode: a value's actual cost is its mean over the episode's days (the
    first day alone for a one-day change), so the cause of a lasting step is what carried it, not
    what happened to move on its first day. Each contribution is that of one value of one dimension;
    contributions of different dimensions overlap (the same dollars) and are never added."""
    t, basis = finding.index, finding.band.basis
    days = range(t, t + max(finding.duration, 1))
    found = []
    for (dimension, value), series in parts.items():
        expected = median(series[i] for i in basis)
        actual = _episode_mean(series, days)
        c = Contributor(dimension, value, actual, expected, actual - expected)
        if c.contribution == 0:
            continue
        if finding.direction == "up" and c.contribution < 0:
            continue
        if finding.direction == "down" and c.contribution > 0:
            continue
        found.append(c)
    level = finding.actual if totals is None else _episode_mean(totals, days)

    def whole(c: Contributor) -> bool:
        """The value is (nearly) the whole service, before and over the episode -- `usage` for most
        services, `on_demand` for one without commitments -- so naming it explains nothing. (A new
        service had nothing before: where it appeared is news.)"""
        before = finding.band.expected
        return before != 0 and _covers(c.expected, before) and _covers(c.actual, level)

    def carries(c: Contributor) -> bool:
        """The value gained and carries (nearly) all of the episode's spend: a new service's region,
        or the region a whole service moved to. Among such values the dimension order decides
        (region, then pricing model, then charge category), not a few dollars of tax or credit."""
        return c.contribution > 0 and _covers(c.actual, level)

    # For a shift the destination comes first.
    shift = finding.direction == "shift"
    found.sort(
        key=lambda c: (
            whole(c),
            not carries(c),
            DIMENSIONS.index(c.dimension) if carries(c) else 0,
            shift and c.contribution < 0,
            -_weight(c),
            -c.contribution,
            DIMENSIONS.index(c.dimension),
            c.value,
        )
    )
    if shift:  # both sides of a move: the destinations, then where the spend came from
        gains = [c for c in found if c.contribution > 0]
        losses = [c for c in found if c.contribution < 0]
        return gains[: top - min(2, len(losses))] + losses[:2]
    return found[:top]


def _episode_mean(series: Sequence[Decimal], days: range) -> Decimal:
    """Mean of the episode's days that the series has (all of them but past its last day)."""
    values = [series[i] for i in days if i < len(series)]
    total = sum(values, Decimal(0))
    return total if len(values) == 1 else CTX.divide(total, len(values)).quantize(PLACES, context=CTX)


def _covers(part: Decimal, total: Decimal) -> bool:
    return total == 0 and part == 0 or total != 0 and abs(part) >= abs(total) * Decimal("0.95")


def contributors_json(found: Sequence[Contributor]) -> str:
    return json.dumps([c.as_json() for c in found], separators=(",", ":"))
