"""Answers read from the published tables, not from the anomalies: cost look-ups, comparisons and
trends (intents.py), exact to the cent, through the tenant-scoped readers.

Each answer is composed from the rows it read, and those rows are its context: the grounding check
reads the answer against them as it reads an explanation against retrieved anomalies. Days of the
range whose data is not complete yet are named, so a half-delivered day is not taken for a drop.
Names from billing files pass the name policy before they are shown.

Ranking, the fifth intent that is not an explanation, orders anomalies (`rank`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from costlake.catalog import readers
from costlake.lake.warehouse import Warehouse
from costlake.rag.chunk_text import account_phrase, service_phrase
from costlake.rag.chunks import Chunk
from costlake.rag.formatting import format_pct, format_usd
from costlake.rag.intents import (
    Intent,
    Order,
    Period,
    check_compared,
    comparison_periods,
    previous_period,
    trend_periods,
)
from costlake.rag.query_parser import YEARS, QueryFilters
from costlake.rag.retriever import matcher, one_spelling
from costlake.text.names import shown_value

#: rows a breakdown lists at most when the question names no number
BREAKDOWN_ROWS = 10


@dataclass(frozen=True)
class TableAnswer:
    """An answer from the published tables: its text, the rows it was composed from (the context
    grounding checks), and the date range it covers."""

    text: str
    context: list[dict[str, Any]]
    date_from: dt.date
    date_to: dt.date
    rows_read: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Names:
    """The tenant's names, read once per question: account id -> account name, and service key ->
    display name (dim_service, cut to the keys the tenant's costs use). Not yet through the policy."""

    accounts: dict[str, str | None]
    services: dict[str, str | None]

    @classmethod
    def read(cls, wh: Warehouse, tenant: str | None) -> Names:
        accounts = {a.account_id: a.account_name for a in readers.accounts(wh, tenant)}
        return cls(accounts, readers.service_names(wh, tenant))

    def of(self, intent: Intent) -> dict[str, str | None]:
        """The names a list of `intent`'s groups shows."""
        return self.services if intent.group_by == "service" else self.accounts


def rank(pool: Sequence[Chunk], filters: QueryFilters, intent: Intent) -> list[Chunk]:
    """Every chunk of `pool` that matches `filters`, ordered by impact as `intent` asks (signed for
    increases and decreases, absolute for "biggest"), ties by chunk id; at most `intent.top`."""
    order: Order = intent.order or "biggest"
    matches = matcher(filters)
    if order == "increase":
        found = [c for c in pool if matches(c) and c.impact_usd > 0]
        found.sort(key=lambda c: (-c.impact_usd, c.chunk_id))
    elif order == "decrease":
        found = [c for c in pool if matches(c) and c.impact_usd < 0]
        found.sort(key=lambda c: (c.impact_usd, c.chunk_id))
    else:
        found = [c for c in pool if matches(c)]
        found.sort(key=lambda c: (-abs(c.impact_usd), c.chunk_id))
    return found[: intent.top or len(found)]


def lookup(
    wh: Warehouse, tenant: str | None, names: Names, filters: QueryFilters, intent: Intent, anchor: dt.date
) -> TableAnswer:
    """What the accounts and services of `filters` cost over its dates (default: the last 30
    complete days), per service or account."""
    start, end = _range(filters, anchor)
    spend = _spend(wh, tenant, filters, intent, (start, end))
    scope = _scope(filters, names.services)
    context: list[dict[str, Any]] = [
        {"from_date": start, "to_date": end, "total_usd": spend.total_usd, **_named(filters, scope)}
    ]
    if not spend.groups:
        text = f"No spend was published {scope} from {start} to {end}."
    else:
        when = f"On {start}" if start == end else f"From {start} to {end}"
        text = f"{when}, spend {scope} was {format_usd(spend.total_usd)} (billed cost)."
    lines = _breakdown(spend.groups, intent, names.of(intent), context)
    if len(spend.groups) > 1:
        text += f"\nBy {intent.group_by}, largest first:\n" + "\n".join(lines)
    text += _incomplete(spend.incomplete, context)
    return TableAnswer(text, context, start, end, len(spend.groups))


def comparison(
    wh: Warehouse,
    tenant: str | None,
    names: Names,
    question: str,
    filters: QueryFilters,
    intent: Intent,
    anchor: dt.date,
    window: Period | None = None,
) -> TableAnswer:
    """The spend of two periods (`intents.comparison_periods`; the caller's `window` and the period
    before it, when its filters give dates) and the largest changes per group."""
    check_compared(question, filters)
    if window is None:
        before, after = comparison_periods(question, anchor)
    else:
        before, after = previous_period(*window), window
    return _compare(wh, tenant, names, filters, intent, before, after, question)


def trend(
    wh: Warehouse,
    tenant: str | None,
    names: Names,
    question: str,
    filters: QueryFilters,
    intent: Intent,
    anchor: dt.date,
    window: Period | None = None,
) -> TableAnswer:
    """The groups whose spend over the last 30 complete days (the caller's `window`, when its filters
    give dates) grew most against as many days before (fell most, when the question asks what is
    declining)."""
    before, after = trend_periods(anchor) if window is None else (previous_period(*window), window)
    return _compare(
        wh, tenant, names, filters, intent, before, after, question, trend=True, latest=window is None
    )


def _compare(
    wh: Warehouse,
    tenant: str | None,
    names: Names,
    filters: QueryFilters,
    intent: Intent,
    before: Period,
    after: Period,
    question: str,
    *,
    trend: bool = False,
    latest: bool = False,
) -> TableAnswer:
    """`after` against `before`; `latest`: `after` is the last complete days (a trend's own period)."""
    old, new = (_spend(wh, tenant, filters, intent, period) for period in (before, after))
    a, b = old.total_usd, new.total_usd
    days = (before[1] - before[0]).days + 1
    scope = _scope(filters, names.services)
    context: list[dict[str, Any]] = [
        {"from_date": before[0], "to_date": before[1], "total_usd": a, "period_days": days}
        | _named(filters, scope),
        {"from_date": after[0], "to_date": after[1], "total_usd": b, "change_usd": b - a, **_pct(b - a, a)},
    ]
    if latest:
        text = (
            f"Over the last {days} complete days ({after[0]} to {after[1]}), spend {scope} was "
            f"{format_usd(b)} against {format_usd(a)} in the {days} days before ({before[0]} to {before[1]})"
        )
    else:
        text = (
            f"Spend {scope} was {format_usd(b)} from {after[0]} to {after[1]} against {format_usd(a)} "
            f"from {before[0]} to {before[1]}"
        )
    text += f": {_moved(b - a, a)}."
    if not old.groups and new.groups:
        text += f" Nothing was published from {before[0]} to {before[1]}."
    else:
        text += _before_the_data(readers.first_usage_date(wh, tenant), before, context)
    text += _mover_lines(old, new, intent, _direction(question, trend), names.of(intent), context)
    text += _incomplete(sorted({*old.incomplete, *new.incomplete}), context)
    return TableAnswer(text, context, before[0], after[1], len(old.groups) + len(new.groups))


def _before_the_data(first: dt.date | None, before: Period, context: list[dict[str, Any]]) -> str:
    """A note when the earlier period starts before the first published day: its days before that
    count as nothing spent, and the change is not like for like."""
    if first is None or not before[0] < first <= before[1]:
        return ""
    missing = (first - before[0]).days
    context[0] |= {"first_published_date": first, "before_data_days": missing}
    return f" Data begins on {first}: the {missing} day(s) of the earlier period before it hold no spend."


def _mover_lines(
    old: readers.Spend,
    new: readers.Spend,
    intent: Intent,
    direction: str | None,
    names: dict[str, str | None],
    context: list[dict[str, Any]],
) -> str:
    """The groups whose spend changed most in `direction`, one line each (and their context)."""
    label = {"up": "grew most", "down": "fell most", None: "changed most"}[direction]
    shown = _movers(old.groups, new.groups, direction)[: intent.top or BREAKDOWN_ROWS]
    lines = []
    for key, was, now in shown:
        group = _shown(intent, key, names)
        moved = {"previous_cost_usd": was, "cost_usd": now, "change_usd": now - was} | _pct(now - was, was)
        context.append({_key_field(intent): key, "shown_as": group} | moved)
        change = _moved(now - was, was)
        lines.append(f"- {group}: {format_usd(now)} against {format_usd(was)} ({change})")
    if lines:
        return f"\nThe {intent.group_by}s whose spend {label}:\n" + "\n".join(lines)
    if old.groups or new.groups:
        return f"\nNo {intent.group_by}'s spend {label.split()[0]} between the two periods."
    return ""


def _spend(
    wh: Warehouse, tenant: str | None, filters: QueryFilters, intent: Intent, period: Period
) -> readers.Spend:
    return readers.spend(
        wh,
        tenant,
        period[0],
        period[1],
        group_by=intent.group_by,
        accounts=filters.account_ids,
        services=filters.service_names,
    )


def given_window(given: QueryFilters | None, anchor: dt.date) -> Period | None:
    """The period a caller's filters give (they replace what the question says), None when they give
    no date."""
    if given is None or (given.date_from is None and given.date_to is None):
        return None
    return _range(given, anchor)


def _range(filters: QueryFilters, anchor: dt.date) -> Period:
    """The filters' dates; a missing end is the latest complete day (or the start, when that is
    later), a missing start 30 days before the end (never before the earliest date a question reads)."""
    end = filters.date_to or max(anchor, filters.date_from or anchor)
    start = filters.date_from or max(end - dt.timedelta(days=29), dt.date(YEARS[0], 1, 1))
    return start, end


def _scope(filters: QueryFilters, display: dict[str, str | None]) -> str:
    """'on AmazonS3 in account 123' / 'across the accounts': what the figures cover, in words,
    services by their display names where `display` (key -> name) has one."""
    parts = []
    if filters.service_names:
        named = {readers.service_key(k): v for k, v in display.items() if v}
        spellings = (named.get(readers.service_key(s), s) for s in one_spelling(filters.service_names))
        parts.append("on " + ", ".join(sorted(str(shown_value("service_name", s)) for s in spellings)))
    if filters.account_ids:
        ids = sorted(filters.account_ids)
        parts.append(("in account " if len(ids) == 1 else "in accounts ") + ", ".join(ids))
    return " ".join(parts) or "across the accounts"


def _named(filters: QueryFilters, scope: str) -> dict[str, Any]:
    """The accounts and services an answer covers, as stored and as the answer shows them (`scope`,
    with the labels of withheld names), for its context: names and ids are not claims."""
    return {
        "account_ids": sorted(filters.account_ids),
        "service_names": sorted(filters.service_names),
        "scope": scope,
    }


def _breakdown(
    groups: Sequence[readers.GroupSpend],
    intent: Intent,
    names: dict[str, str | None],
    context: list[dict[str, Any]],
) -> list[str]:
    ordered = sorted(groups, key=lambda g: (-g.cost_usd, g.key))[: intent.top or BREAKDOWN_ROWS]
    lines = []
    for g in ordered:
        group = _shown(intent, g.key, names)  # as stored and as shown (a withheld name's label)
        context.append({_key_field(intent): g.key, "shown_as": group, "cost_usd": g.cost_usd})
        lines.append(f"- {group}: {format_usd(g.cost_usd)}")
    if len(groups) > len(ordered):
        lines.append(f"- and {len(groups) - len(ordered)} more")
        context.append({"more_count": len(groups) - len(ordered)})
    return lines


def _movers(
    old: Sequence[readers.GroupSpend], new: Sequence[readers.GroupSpend], direction: str | None
) -> list[tuple[str, Decimal, Decimal]]:
    """(key, before, after) of each group that changed, the largest change in `direction` first."""
    was = {g.key: g.cost_usd for g in old}
    now = {g.key: g.cost_usd for g in new}
    rows = [(k, was.get(k, Decimal(0)), now.get(k, Decimal(0))) for k in sorted(was.keys() | now.keys())]
    rows = [r for r in rows if r[2] != r[1]]
    if direction == "up":
        rows = sorted((r for r in rows if r[2] > r[1]), key=lambda r: (r[1] - r[2], r[0]))
    elif direction == "down":
        rows = sorted((r for r in rows if r[2] < r[1]), key=lambda r: (r[2] - r[1], r[0]))
    else:
        rows.sort(key=lambda r: (-abs(r[2] - r[1]), r[0]))
    return rows


_GREW = re.compile(r"\b(?:grew|grow|grows|growing|rose|rise|rising|increased?|increasing|higher|up)\b")
_FELL = re.compile(
    r"\b(?:fell|fall|falling|dropped|drop|drops|shrank|shrinking|decreased?|decreasing|declin\w*|lower|down|sav\w*)\b"
)


def _direction(question: str, trend: bool) -> str | None:
    """Which changes the question asks about: "up", "down", or None (both) when it says both or
    neither; a trend is about growth unless it asks what is declining."""
    q = question.lower()
    grew, fell = bool(_GREW.search(q)), bool(_FELL.search(q))
    if trend:
        return "down" if fell and not grew else "up"
    return "up" if grew and not fell else "down" if fell and not grew else None


def _moved(change: Decimal, base: Decimal) -> str:
    if change == 0:
        return "no change"
    pct = _pct(change, base).get("change_pct")
    size = format_usd(abs(change)) + (f", {format_pct(abs(pct))}" if pct is not None and pct != 0 else "")
    return ("up " if change > 0 else "down ") + size


def _pct(change: Decimal, base: Decimal) -> dict[str, Decimal]:
    """{"change_pct": ...} of a change against a base that is not zero (nothing to compare with)."""
    return {"change_pct": change * 100 / base} if base != 0 else {}


def _incomplete(days: Sequence[dt.date], context: list[dict[str, Any]]) -> str:
    """A sentence naming the days not complete yet, as runs of consecutive days."""
    if not days:
        return ""
    runs: list[list[dt.date]] = []
    for day in sorted(days):
        if runs and day - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    named = []
    for run in runs:
        context.append({"incomplete_from_date": run[0], "incomplete_to_date": run[-1]})
        named.append(str(run[0]) if len(run) == 1 else f"{run[0]} to {run[-1]}")
    return "\nNot complete yet (no data, or data that may still change): " + ", ".join(named) + "."


def _key_field(intent: Intent) -> str:
    return "service_name" if intent.group_by == "service" else "account_id"


def _shown(intent: Intent, key: str, names: dict[str, str | None]) -> str:
    """A group as a list shows it: a service's display name, an account's id and name (through the
    name policy)."""
    if intent.group_by == "service":
        shown = {"service_name": shown_value("service_name", key)}
        return service_phrase(shown | {"service_display_name": shown_value("service_name", names.get(key))})
    return account_phrase(key, shown_value("account_name", names.get(key))).removeprefix("account ")
