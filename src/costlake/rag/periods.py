"""Date arithmetic of the periods a question names (query_parser.py reads them out of its text):
the latest such day, quarter or half up to the lake's latest complete day, and the ranges of
relative phrases.

>>> relative("last seven days", date(2025, 3, 31))
(datetime.date(2025, 3, 25), datetime.date(2025, 3, 31))
"""

from __future__ import annotations

import re
from datetime import date, timedelta

# A count of days, weeks, months or years, in digits or spelt ("the last seven days")
COUNTS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "fourteen": 14, "thirty": 30, "ninety": 90,
}  # fmt: skip


YEARS = (1900, 2999)  # the years a question's dates may name; others (0000, 9999) are not read as dates


def half(number: int, year: str | None, today: date) -> tuple[date, date]:
    """Half `number` of `year`; without a year, the latest one that has begun by `today`."""
    first = 1 if number == 1 else 7
    value = int(year) if year else today.year if first <= today.month else today.year - 1
    return date(value, first, 1), month_end(value, first + 5)


def latest_day(year: int | None, month: int, day: int, today: date) -> date | None:
    """The day `day` of `month` in `year`; without a year, the latest such day up to `today` (the
    latest February 29 may be years back). None when there is no such day.

    >>> latest_day(None, 2, 29, date(2025, 3, 1)), latest_day(None, 2, 30, date(2025, 3, 1))
    (datetime.date(2024, 2, 29), None)
    """
    for candidate in [year] if year is not None else range(today.year, today.year - 8, -1):
        try:
            value = date(candidate, month, day)
        except ValueError:
            continue
        if year is not None or value <= today:
            return value
    return None


def quarter(number: int, year: str | None, today: date) -> tuple[date, date]:
    """Quarter `number` of `year`; without a year, the latest one that has begun by `today`."""
    first = (number - 1) * 3 + 1
    value = int(year) if year else today.year if first <= today.month else today.year - 1
    return date(value, first, 1), month_end(value, first + 2)


def plausible(year: str | None) -> bool:
    """Whether a year written in a question can be a billing year (`YEARS`); no year is."""
    return year is None or YEARS[0] <= int(year) <= YEARS[1]


def year_of(year: str) -> tuple[date, date]:
    return date(int(year), 1, 1), date(int(year), 12, 31)


def month_end(year: int, month: int) -> date:
    return date(year + month // 12, month % 12 + 1, 1) - timedelta(days=1)


def relative(phrase: str, today: date) -> tuple[date, date]:
    """yesterday, today, last/past N days|weeks|months (N x 30 days), last/this/past
    week|month|quarter|year, year/quarter/month/week to date; `today` is the day they count from."""
    words = phrase.replace("-", " ").split()
    monday = today - timedelta(days=today.weekday())
    if words[-1] in ("date", "ytd", "qtd", "mtd", "wtd"):  # year to date, qtd, ...
        unit = {"ytd": "year", "qtd": "quarter", "mtd": "month", "wtd": "week"}.get(words[0], words[0])
        return relative(f"this {unit}", today)
    if words[0] in ("yesterday", "today"):
        one = today - timedelta(days=1 if words[0] == "yesterday" else 0)
        return one, one
    if len(words) == 3:
        spelt = COUNTS.get(words[1])
        count = spelt or (int(words[1]) if len(words[1]) < 10 else 10**9)  # 1000 digits: as many days as any
        days = max(count, 1) * {"d": 1, "w": 7, "m": 30, "y": 365}[words[2][0]]  # "last 0 days": one
        first = date(YEARS[0], 1, 1)  # "last 100000 days": every day a bill can have
        return max(today - timedelta(days=min(days - 1, (today - first).days)), first), today
    which, unit = words
    if unit == "week":
        if which == "this":
            return monday, today
        if which == "past":
            return today - timedelta(days=6), today
        return monday - timedelta(days=7), monday - timedelta(days=1)
    if unit == "quarter":
        start = date(today.year, (today.month - 1) // 3 * 3 + 1, 1)
        if which == "this":
            return start, today
        if which == "past":
            return today - timedelta(days=89), today
        end = start - timedelta(days=1)
        return date(end.year, end.month - 2, 1), end
    if unit == "month":
        if which == "this":
            return today.replace(day=1), today
        if which == "past":
            return today - timedelta(days=29), today
        last = today.replace(day=1) - timedelta(days=1)
        return last.replace(day=1), last
    if which == "this":
        return date(today.year, 1, 1), today
    if which == "past":
        return today - timedelta(days=364), today
    return date(today.year - 1, 1, 1), date(today.year - 1, 12, 31)


_UNTIL = re.compile(r"(?:\buntil|\btill|\bthrough|\bthru|\bup\s+to|\bup\s+until)$")
_THEN_TO = re.compile(r"^(?:to|until|till|through|thru|and)\b|^-")


def open_ended(before: str, after: str, period: tuple[date, date], today: date) -> tuple[date, date]:
    """The range a date naming `period` names with the question's text `before` it
    (lower-cased; `after` it tells "from March 10" from "from March 10 to 12"): "since March" and
    "from March" (with no end of its own) run from its first day to `today`, "after March" from the
    day after it; "before March" runs up to the day before it, "until March" to its last day, both
    from the first day a bill may have. Read as the date alone, "before March 10" was answered for
    March 10.

    >>> open_ended("spend before", "?", (date(2025, 3, 10),) * 2, date(2025, 3, 31))
    (datetime.date(1900, 1, 1), datetime.date(2025, 3, 9))
    """
    start, end = period
    first = date(YEARS[0], 1, 1)
    if before.endswith("since") or (before.endswith("from") and not _THEN_TO.search(after)):
        start, end = start, today
    elif before.endswith("after"):
        start, end = end + timedelta(days=1), today
    elif before.endswith("before"):
        # "the 30 days before March 10": those days; "before March 10": every day before it
        counted = re.search(r"(\d{1,5})\s+(day|week)s?\s+before$", before)
        span = int(counted[1]) * (7 if counted[2] == "week" else 1) if counted else None
        start, end = start - timedelta(days=span) if span else first, start - timedelta(days=1)
    elif _UNTIL.search(before):
        start = first
    else:
        return start, end
    return start, end
