"""From a service's daily series (total and per region / pricing model / charge category) to its
anomalies, each with contributors: a pure function, the unit the job runs for every series.

Besides changes of the total, the `baseline` method reports a *mix shift*: on a day the total stays
inside its band, one value of a dimension leaves its own band upwards while another leaves it
downwards (spend moved from one region to another, or from reserved to on-demand). Such a day is
reported once, at its first day, like any other change.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import numpy as np

from costlake.anomalies.contributors import contributors, contributors_json
from costlake.anomalies.detect import Finding, Params, SeriesResult, detect, median, quiet

SHIFT_DIMENSIONS = ("region", "pricing_model")


@dataclass
class ServiceSeries:
    """Daily cost of one (account, service) from `start`, zero on days without charges."""

    account_id: str
    service_name: str
    start: dt.date
    total: list[Decimal]
    parts: dict[tuple[str, str], list[Decimal]] = field(default_factory=dict)

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)


def _mix_shifts(series: ServiceSeries, total: SeriesResult, params: Params) -> list[Finding]:
    """Days the total stayed normal while one value of a dimension rose past its band and, over the
    next `mix_shift_days` days, stayed up by a real share of the total, while the other values of
    that dimension fell by at least half as much (each against its own baseline)."""
    busy = {i for f in total.findings for i in range(f.index, f.index + f.duration)}
    lowest_floor = max(params.min_impact, params.min_pct * max(min(series.total), Decimal(0)) / 100)
    shifts: dict[int, Finding] = {}
    for dimension in SHIFT_DIMENSIONS:
        values = {v: xs for (dim, v), xs in sorted(series.parts.items()) if dim == dimension}
        rises: dict[int, tuple[Finding, list[Decimal]]] = {}
        for xs in values.values():
            # A value can only be the one that rose if its median over `span` days reached the
            # floor, which is never below this bound (the expected total is a median of past
            # totals): most values of a stable service never get near it, so they are not analysed.
            if quiet(xs, params) or max(xs) < lowest_floor or not _moves(xs, params.mix_shift_days, params):
                continue
            for f in detect(xs, params).findings:
                if f.direction == "up" and (f.index not in rises or f.impact > rises[f.index][0].impact):
                    rises[f.index] = (f, xs)
        span = params.mix_shift_days
        for t, (rise, riser) in sorted(rises.items()):
            band = total.band(t)
            short = rise.duration < span or t + span > len(series.total)
            if t in busy or t in shifts or band is None or short:
                continue
            # A shift is a lasting move of a real share of the service's spend: judged on medians, of
            # its first `span` days against the window before it, so reshuffles of a few line items
            # between regions (everyday noise on small services) do not count.
            floor = max(params.min_impact, params.min_pct * abs(band.expected) / 100)
            before = slice(max(0, t - params.window), t)

            after = slice(t, t + span)

            def moved(xs: list[Decimal], after: slice = after, before: slice = before) -> Decimal:
                return median(xs[after]) - median(xs[before])

            gain = moved(riser)
            loss = sum((min(moved(xs), Decimal(0)) for xs in values.values() if xs is not riser), Decimal(0))
            if gain < floor or -loss < gain / 2:
                continue
            score = abs(rise.score or Decimal(0))
            shifts[t] = Finding(
                t, "mix_shift", "shift", series.total[t], band, score, rise.duration, rise.ongoing
            )
    return [shifts[t] for t in sorted(shifts)]


def _moves(values: list[Decimal], span: int, params: Params) -> bool:
    """Whether the median of some `span` days exceeds the median of the window before them by the
    dollar floor, in floats with a margin: a necessary condition for a mix-shift riser, cheap to test
    for every value at once, so the values of a stable service skip the full analysis."""
    v = np.array([float(x) for x in values])
    if v.size <= span:
        return False
    after = np.median(np.lib.stride_tricks.sliding_window_view(v, span), axis=1)  # days t .. t+span-1
    for t in range(1, v.size - span + 1):
        if (
            after[t] - np.median(v[max(0, t - params.window) : t])
            >= float(params.min_impact) * (1 - 1e-6) - 1e-6
        ):
            return True
    return False


def analyse(series: ServiceSeries, params: Params) -> list[Finding]:
    """The anomalies of one series, first day order, contributors attached."""
    if quiet(series.total, params) and all(quiet(v, params) for v in series.parts.values()):
        return []
    total = detect(series.total, params)
    findings = list(total.findings)
    if params.method == "baseline":
        findings += _mix_shifts(series, total, params)
        findings.sort(key=lambda f: f.index)
    for f in findings:
        f.contributors = contributors(f, series.parts)
    return findings


def anomaly_row(series: ServiceSeries, f: Finding, method: str) -> dict[str, Any]:
    """One `cost_anomalies` row."""
    top = f.contributors[0] if f.contributors else None
    return {
        "account_id": series.account_id,
        "service_name": series.service_name,
        "usage_date": series.day(f.index),
        "method": method,
        "kind": f.kind,
        "direction": f.direction,
        "actual_usd": f.actual,
        "expected_usd": f.band.expected,
        "expected_low_usd": f.band.low,
        "expected_high_usd": f.band.high,
        "impact_usd": f.impact,
        "impact_pct": f.impact_pct,
        "score": f.score,
        "duration_days": f.duration,
        "ongoing": f.ongoing,
        "history_days": f.band.history,
        "top_dimension": top.dimension if top else None,
        "top_value": top.value if top else None,
        "top_contribution_usd": top.contribution if top else None,
        "contributors": contributors_json(f.contributors),
    }


def analyse_all(all_series: Sequence[ServiceSeries], params: Params) -> list[dict[str, Any]]:
    """Rows for every series, sorted by (usage_date, account_id, service_name)."""
    rows = [anomaly_row(s, f, params.method) for s in all_series for f in analyse(s, params)]
    rows.sort(key=lambda r: (r["usage_date"], r["account_id"], r["service_name"]))
    return rows
