"""What a question asks for: its intent, recognised by rules (no model needed), and the periods a
comparison or a trend compares.

- **explain** ("why did EC2 jump on March 3?"): the anomalies that match, best first (retrieval).
- **ranking** ("the biggest cost anomaly in February", "three largest increases in March"): every
  matching anomaly of the tenant ordered by impact: signed for increases and decreases, absolute
  for "biggest" and "largest".
- **lookup** ("how much did we spend on S3 last month?", "what did payments-prod cost last week?"):
  spend from the published tables, exact.
- **comparison** ("February vs January", "month over month", "which services grew in March?"): the
  spend of two periods, and what changed between them per service or account.
- **trend** ("what is growing?"): the services (or accounts) whose spend over the last 30 complete
  days grew most against the 30 days before.

"Why" at the start always explains; otherwise comparison words win over trend words, trend over
ranking, ranking over look-up.

>>> classify("What was the biggest cost anomaly in February 2025?")
Intent(kind='ranking', top=1, order='biggest', group_by='service')
>>> classify("Which were the three largest cost increases in March?")
Intent(kind='ranking', top=3, order='increase', group_by='service')
>>> classify("How much did each account spend on S3 last month?").kind, classify("February vs January").kind
('lookup', 'comparison')
>>> classify("What is growing fastest by account?")
Intent(kind='trend', top=5, order=None, group_by='account')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from costlake.errors import InputError
from costlake.rag.query_parser import QueryFilters, parse_period

Kind = Literal["explain", "ranking", "lookup", "comparison", "trend"]
Order = Literal["biggest", "increase", "decrease"]
GroupBy = Literal["service", "account"]
Period = tuple[date, date]

#: how many rows a ranking or trend lists when the question names no number and asks in the plural
DEFAULT_TOP = 5
MAX_TOP = 50
#: the trend's window: the last TREND_DAYS complete days against the TREND_DAYS before them
TREND_DAYS = 30

_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "a dozen": 12, "twelve": 12, "fifteen": 15, "twenty": 20,
}  # fmt: skip
_COUNT = r"(\d{1,3}|" + "|".join(_NUMBERS) + ")"
_SUPERLATIVE = (
    r"(?:biggest|largest|greatest|highest|worst|most\s+significant|most\s+expensive|top|fastest[\s-]growing)"
)
#: questions about a cause explain, whatever else they name ("what caused the spike in S3 cost")
_CAUSE = re.compile(
    r"^\W*(?:why|explain)\b|\bwhat\s+(?:caused|causes|drove|drives|is\s+behind|was\s+behind)\b"
    r"|\bwhat'?s\s+behind\b|\b(?:reason|reasons|cause|causes)\s+(?:for|of|behind)\b"
)
_ANOMALY_WORDS = (
    r"anomal\w*|spikes?|jumps?|increases?|rises?|surges?|growths?|decreases?|drops?|dips?|falls?|declines?"
    r"|savings?|changes?|shifts?|steps?|swings?|movers?|outliers?"
)
_UP = r"increases?|rises?|jumps?|spikes?|surges?|growths?|step[\s-]ups?|overspend\w*"
_DOWN = r"decreases?|drops?|dips?|falls?|declines?|savings?|reductions?|step[\s-]downs?"
_COMPARE = re.compile(
    r"\b(?:vs\.?|versus|compar(?:e|ed|ing|ison)|against|(?:month|week|year|quarter)[\s-]+over[\s-]+"
    r"(?:month|week|year|quarter)|mom|wow|yoy|qoq)\b"
    r"|\bwhich\s+(?:services?|accounts?)\s+(?:grew|rose|increased|shrank|fell|dropped|decreased|changed)\b"
    r"|\bhow\s+much\s+(?:more|less)\b|\b(?:more|less)\s+(?:\w+\s+){0,3}than\b"
    r"|\bhow\s+much\s+did\b.*\b(?:increase|grow|rise|drop|fall|decrease|change)\b"
)
_TREND = re.compile(
    r"\b(?:growing|trend(?:s|ing)?|fastest[\s-]growing|grow(?:s|ing)?\s+(?:the\s+)?(?:most|fastest)"
    r"|grew\s+(?:the\s+)?(?:most|fastest)|on\s+the\s+rise|creeping\s+up|declining|shrinking)\b"
)
_LOOKUP = re.compile(
    r"\b(?:how\s+much|what\s+(?:did|does|do|was|were|is|are)\b.*\b(?:cost|costs|spend|spent|bill|billed)"
    r"|total\s+(?:cost|spend|bill)|(?:spend|spent|spending|cost|costs)\s+(?:on|for|of|in)\b"
    r"|most\s+expensive\s+(?:services?|accounts?)|costs?\s+the\s+most|break\s*down|\bbill\s+for"
    r"|(?:services?|accounts?)\s+by\s+(?:cost|spend))"
)


@dataclass(frozen=True)
class Intent:
    kind: Kind
    top: int | None = None  # ranking and trend: how many to list
    order: Order | None = None  # ranking: by signed impact (increase, decrease) or absolute (biggest)
    group_by: GroupBy = "service"  # lookup breakdown, comparison and trend: per service or account


def classify(question: str) -> Intent:
    """The intent of `question` (see the module doc)."""
    q = " ".join(question.lower().split())
    by_account = re.search(r"\b(?:by|per|each|which|what|expensive|all|our|top(?:\s+\d+)?)\s+accounts?\b", q)
    by_account = by_account or re.search(r"\baccounts?\s+(?:by|costs?\s+the\s+most)\b", q)
    group: GroupBy = "account" if by_account else "service"
    if _CAUSE.search(q):
        return Intent("explain", group_by=group)
    if _COMPARE.search(q):
        return Intent("comparison", top=_top(q) or DEFAULT_TOP, group_by=group)
    if _TREND.search(q):
        return Intent("trend", top=_top(q) or DEFAULT_TOP, group_by=group)
    ranked = re.search(
        _SUPERLATIVE + r"\s+(?:" + _COUNT + r"\s+)?(?:[\w-]+\s+){0,2}?(" + _ANOMALY_WORDS + r")\b", q
    )
    counted = re.search(
        _COUNT + r"\s+" + _SUPERLATIVE + r"\s+(?:[\w-]+\s+){0,2}?(" + _ANOMALY_WORDS + r")\b", q
    )
    if ranked or counted:
        noun = (ranked or counted).group(2)  # type: ignore[union-attr]
        top = _top(q) or (1 if _singular(noun) else DEFAULT_TOP)
        return Intent("ranking", top=top, order=_order(q), group_by=group)
    if _LOOKUP.search(q):
        return Intent("lookup", top=_top(q), group_by=group)
    return Intent("explain", group_by=group)


def _top(q: str) -> int | None:
    """The number of rows the question asks for ("top 3", "three largest", "5 biggest"), if any."""
    m = re.search(r"\btop\s+" + _COUNT + r"\b", q) or re.search(
        r"\b" + _COUNT + r"\s+" + _SUPERLATIVE + r"\b", q
    )
    m = m or re.search(_SUPERLATIVE + r"\s+" + _COUNT + r"\b", q)
    if m is None:
        return None
    word = m.group(1)
    return max(1, min(MAX_TOP, int(word) if word.isdigit() else _NUMBERS[word]))


def _singular(noun: str) -> bool:
    return not (noun.endswith("s") or noun.endswith("ies"))


def _order(q: str) -> Order:
    up, down = re.search(r"\b(?:" + _UP + r")\b", q), re.search(r"\b(?:" + _DOWN + r")\b", q)
    if up and not down:
        return "increase"
    if down and not up:
        return "decrease"
    return "biggest"


_SIDES = r"\b(?:vs\.?|versus|compared?\s+(?:to|with)|against|than)\b"


def check_compared(question: str, filters: QueryFilters) -> None:
    """Refuse "A vs B" where A and B are services or accounts, not periods: a comparison compares two
    periods of what the filters name, so "EC2 vs S3" was answered as their sum this month against
    last month."""
    q = " ".join(question.lower().split())
    sides = re.split(_SIDES, q, maxsplit=1)
    if len(sides) != 2:
        return
    named = [
        {
            what
            for text, what in filters.matched.items()
            if what.startswith(("service", "account")) and text.lower() in side
        }
        for side in sides
    ]
    if named[0] and named[1] and named[0] != named[1]:
        raise InputError(
            "a comparison of one service or account with another is not answered (a comparison sets "
            "two periods of the same services and accounts side by side): ask about each one, or "
            "compare two periods"
        )


def comparison_periods(question: str, anchor: date) -> tuple[Period, Period]:
    """(earlier, later) periods a comparison compares, from the question and the lake's latest
    complete day `anchor`: the two sides of "A vs B" (in date order); one named period against the
    period of the same length before it (a month against the month before); "week over week" the
    last two complete weeks; otherwise the last two complete months."""
    q = " ".join(question.lower().split())
    sides = re.split(_SIDES, q, maxsplit=1)
    if len(sides) == 1 and re.search(r"\bcompar", q):  # "compare March with (or and) February"
        sides = re.split(r"\b(?:with|and|to)\b", q, maxsplit=1)
    if len(sides) == 2:
        first, second = (_side_period(side, anchor) for side in sides)
        if first[0] and first[1] and (re.search(_BEFORE, sides[1]) or first == second):
            return previous_period(first[0], first[1]), (first[0], first[1])  # "... vs the 30 days before"
        if first[0] and first[1] and second[0] and second[1]:
            a, b = sorted([(first[0], first[1]), (second[0], second[1])])
            return a, b
    start, end = parse_period(q, anchor)
    if start is not None and end is not None:
        return previous_period(start, end), (start, end)
    if re.search(r"\bweek[\s-]+over[\s-]+week\b|\bwow\b", q):
        end = anchor - timedelta(days=(anchor.weekday() + 1) % 7)  # the last complete Sunday
        week = (end - timedelta(days=6), end)
        return previous_period(*week), week
    month = last_complete_month(anchor)
    return previous_period(*month), month


_BEFORE = (
    r"\b(?:previous|prior|preceding)\s+(?:\d+\s+)?(?:days?|weeks?|months?|period|quarter|year)\b|\bbefore\b"
)


def _side_period(side: str, anchor: date) -> tuple[date | None, date | None]:
    """One side of "A vs B": its period, a bare "may" read as the month (next to "vs" it can be
    nothing else)."""
    found = parse_period(side, anchor)
    if found[0] is None and re.search(r"\bmay\b", side):
        found = parse_period(re.sub(r"\bmay\b", "in may", side), anchor)
    return found


def trend_periods(anchor: date) -> tuple[Period, Period]:
    """The TREND_DAYS days before the last TREND_DAYS complete days, and those days."""
    recent = (anchor - timedelta(days=TREND_DAYS - 1), anchor)
    return previous_period(*recent), recent


def previous_period(start: date, end: date) -> Period:
    """The period before [start, end]: the month(s) before for whole months, else the same number
    of days just before."""
    if start.day == 1 and (end + timedelta(days=1)).day == 1:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        first = start
        for _ in range(months):
            first = (first - timedelta(days=1)).replace(day=1)
        return first, start - timedelta(days=1)
    length = end - start
    return start - length - timedelta(days=1), start - timedelta(days=1)


def last_complete_month(anchor: date) -> Period:
    """The latest calendar month that ends on or before `anchor`."""
    end = anchor if (anchor + timedelta(days=1)).day == 1 else anchor.replace(day=1) - timedelta(days=1)
    return end.replace(day=1), end
