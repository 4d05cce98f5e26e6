"""From a service's daily series (total and per region / pricing model / charge category) to its
anomalies, each with contributors: a pure function, the unit the job runs for every series.

Besides changes of the total, the `baseline` method reports a *mix shift* (mix.py): spend that moved
between regions or pricing models while the total stayed inside its band.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from costlake.anomalies.contributors import Contributor, contributors, contributors_json
from costlake.anomalies.detect import Finding, Params, SeriesResult, detect
from costlake.anomalies.mix import mix_shifts


@dataclass
class ServiceSeries:
    """Daily cost of one (account, service) from `start`, zero on days without charges (None before
    the day it was loaded from, when only the recent days were loaded: see `frame.exact_totals`;
    the parts hold None on the days that were not read: `frame.exact_parts`)."""

    account_id: str
    service_name: str
    start: dt.date
    total: list[Decimal]
    parts: dict[tuple[str, str], list[Decimal]] = field(default_factory=dict)

    def day(self, index: int) -> dt.date:
        return self.start + dt.timedelta(days=index)


def analyse(
    series: ServiceSeries,
    params: Params,
    *,
    begin: int = 0,
    regime: int = 0,
    mix_days: Collection[int] | None = None,
) -> list[Finding]:
    """The anomalies of one series from day `begin` on (no change open that day, the level of day
    `regime`), first day order, contributors attached; `mix_days`: the only days that may start a
    mix shift (from the float screen; None: every day)."""
    total = detect(series.total, params, begin=begin, regime=regime)
    return finish(series, total, params, begin=begin, mix_days=mix_days)


def parts_days(
    total: SeriesResult,
    params: Params,
    mix_days: Collection[int] | None,
    known: Collection[int] = (),
) -> set[int] | None:
    """The only days whose parts `finish` reads after `total` (None: any day): each finding's
    basis and episode (its contributors; not for the findings on the days `known`, whose
    contributors are given), and for every day that may start a mix shift, the window
    before it and the span after it (mix.mix_shifts judges t on days t - window .. t + span - 1 and
    dates a run from a span before its first day, with a window before that)."""
    days: set[int] = set()
    for f in total.findings:
        if f.index in known:
            continue
        days.update(f.band.basis)
        days.update(range(f.index, f.index + max(f.duration, 1)))
    if params.method == "baseline":
        if mix_days is None:
            return None
        reach = params.window + params.mix_shift_days
        for t in mix_days:
            days.update(range(max(t - reach, 0), t + params.mix_shift_days))
    return days


def finish(
    series: ServiceSeries,
    total: SeriesResult,
    params: Params,
    *,
    begin: int = 0,
    mix_days: Collection[int] | None = None,
    known: Mapping[int, list[Contributor]] | None = None,
) -> list[Finding]:
    """`analyse` after the total's detection: mix shifts, then every finding's contributors (those
    `known` for the changes of the total on their days)."""
    findings = list(total.findings)
    if params.method == "baseline":
        busy = {i for f in total.findings for i in range(f.index, f.index + f.duration)}
        findings += mix_shifts(series.total, series.parts, total, busy, params, begin, mix_days)
        findings.sort(key=lambda f: f.index)
    known = known or {}
    for f in findings:
        given = known.get(f.index) if f.kind != "mix_shift" else None
        f.contributors = contributors(f, series.parts, series.total) if given is None else given
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
