"""Intents and periods read from questions by rules: each intent, the number and order a ranking
asks for, and the exact periods comparisons and trends compare."""

from __future__ import annotations

from datetime import date

import pytest

from costlake.errors import InputError
from costlake.rag.intents import (
    Intent,
    check_compared,
    classify,
    comparison_periods,
    last_complete_month,
    previous_period,
    trend_periods,
)
from costlake.rag.query_parser import parse_period, parse_query

ANCHOR = date(2025, 3, 31)  # the lake's latest complete day


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Why did EC2 spend jump on March 3?", Intent("explain")),
        ("why is the biggest account so expensive?", Intent("explain")),  # "why" always explains
        ("EC2 on 2025-03-02", Intent("explain")),
        ("What was the biggest cost anomaly in February 2025?", Intent("ranking", 1, "biggest")),
        ("Which were the three largest cost increases in March?", Intent("ranking", 3, "increase")),
        ("top 4 drops last month", Intent("ranking", 4, "decrease")),
        ("the 2 biggest spikes this quarter", Intent("ranking", 2, "increase")),
        ("What are the largest changes?", Intent("ranking", 5, "biggest")),
        ("largest decrease in RDS", Intent("ranking", 1, "decrease")),
        ("How much did we spend on S3 last month?", Intent("lookup")),
        ("What did account payments-prod cost last week?", Intent("lookup")),
        ("total cost in Q1", Intent("lookup")),
        ("most expensive accounts this quarter", Intent("lookup", group_by="account")),
        ("February vs January", Intent("comparison", 5)),
        ("compare March with February by account", Intent("comparison", 5, group_by="account")),
        ("month over month", Intent("comparison", 5)),
        ("Which services grew in March?", Intent("comparison", 5)),
        ("What is growing?", Intent("trend", 5)),
        ("What are the three fastest-growing services?", Intent("trend", 3)),
        ("What is declining?", Intent("trend", 5)),
        ("Top 3 accounts by cost in March", Intent("lookup", 3, group_by="account")),
        ("Which account costs the most?", Intent("lookup", group_by="account")),
        ("Break down March spend by account", Intent("lookup", group_by="account")),
        ("What's our EC2 bill for March?", Intent("lookup")),
        ("How much did S3 increase in March?", Intent("comparison", 5)),
        ("how much more did we spend in March than February", Intent("comparison", 5)),
        ("What caused the spike in S3 cost for web-dev on March 3?", Intent("explain")),
        ("what drove the drop in RDS spend last week", Intent("explain")),
        ("reason for the jump in EC2 cost on 2025-03-02", Intent("explain")),
        ("which accounts are trending up, top 3", Intent("trend", 3, group_by="account")),
    ],
)
def test_each_intent_is_recognised(question: str, expected: Intent) -> None:
    assert classify(question) == expected


@pytest.mark.parametrize(
    ("phrase", "start", "end"),
    [
        ("today", ANCHOR, ANCHOR),
        ("yesterday", date(2025, 3, 30), date(2025, 3, 30)),
        ("this week", date(2025, 3, 31), ANCHOR),  # the anchor is a Monday
        ("last week", date(2025, 3, 24), date(2025, 3, 30)),
        ("this month", date(2025, 3, 1), ANCHOR),  # not the day after the data ends
        ("last month", date(2025, 2, 1), date(2025, 2, 28)),
        ("Q1", date(2025, 1, 1), date(2025, 3, 31)),
        ("q2", date(2024, 4, 1), date(2024, 6, 30)),  # Q2 2025 has not begun: the last one that has
        ("first quarter of 2024", date(2024, 1, 1), date(2024, 3, 31)),
        ("this quarter", date(2025, 1, 1), ANCHOR),
        ("last quarter", date(2024, 10, 1), date(2024, 12, 31)),
        ("last 30 days", date(2025, 3, 2), ANCHOR),
        ("since March", date(2025, 3, 1), ANCHOR),
        ("year to date", date(2025, 1, 1), ANCHOR),
        ("this year", date(2025, 1, 1), ANCHOR),
        ("last year", date(2024, 1, 1), date(2024, 12, 31)),
    ],
)
def test_time_phrases_count_from_the_latest_complete_day(phrase: str, start: date, end: date) -> None:
    assert parse_period(f"spend {phrase}", ANCHOR) == (start, end)


def test_comparison_periods() -> None:
    feb, jan = (date(2025, 2, 1), date(2025, 2, 28)), (date(2025, 1, 1), date(2025, 1, 31))
    assert comparison_periods("February vs January", ANCHOR) == (jan, feb)
    assert comparison_periods("January compared to February", ANCHOR) == (jan, feb)
    assert comparison_periods("compare February with January", ANCHOR) == (jan, feb)
    assert comparison_periods("which services grew in February?", ANCHOR) == (jan, feb)
    assert comparison_periods("month over month", ANCHOR) == (feb, (date(2025, 3, 1), ANCHOR))
    assert comparison_periods("month over month", date(2025, 3, 30)) == (jan, feb)
    week = (date(2025, 3, 24), date(2025, 3, 30))
    assert comparison_periods("week over week", ANCHOR) == ((date(2025, 3, 17), date(2025, 3, 23)), week)
    may, apr = (date(2024, 5, 1), date(2024, 5, 31)), (date(2024, 4, 1), date(2024, 4, 30))
    assert comparison_periods("S3 spend May vs April", ANCHOR) == (apr, may)  # a bare "may" next to vs
    last30 = (date(2025, 3, 2), ANCHOR)
    before30 = (date(2025, 1, 31), date(2025, 3, 1))
    assert comparison_periods("spend in the last 30 days vs the previous 30 days", ANCHOR) == (
        before30,
        last30,
    )
    assert comparison_periods("last 30 days compared to the 30 days before", ANCHOR) == (before30, last30)
    last10 = (date(2025, 3, 22), ANCHOR)
    assert comparison_periods("last 10 days against the 10 before", ANCHOR)[1] == last10


def test_trend_and_previous_periods() -> None:
    before, after = trend_periods(ANCHOR)
    assert after == (date(2025, 3, 2), ANCHOR) and before == (date(2025, 1, 31), date(2025, 3, 1))
    assert previous_period(date(2025, 3, 1), date(2025, 3, 31)) == (date(2025, 2, 1), date(2025, 2, 28))
    assert previous_period(date(2025, 1, 1), date(2025, 3, 31)) == (date(2024, 10, 1), date(2024, 12, 31))
    assert previous_period(date(2025, 3, 10), date(2025, 3, 12)) == (date(2025, 3, 7), date(2025, 3, 9))
    assert last_complete_month(date(2025, 3, 30)) == (date(2025, 2, 1), date(2025, 2, 28))


@pytest.mark.parametrize("phrase", ["in 0000", "in 0001", "in 3000", "the year 1899"])
def test_years_no_bill_can_have_are_not_read(phrase: str) -> None:
    """A number alone may be an amount or a count: not read as a year outside 1900-2999."""
    assert parse_period(f"how much did we spend {phrase}", ANCHOR) == (None, None)


@pytest.mark.parametrize(
    "day",
    [
        "0000-01-01", "0001-01-01", "1899-12-31", "9999-12-31", "9999-02-30", "December 31, 9999",
        "31 December 9999", "31 December 1800", "December 9999", "1 March 3000", "9999-12",
        "December of 9999", "Q4 9999", "Q4 of 9999", "fourth quarter of 9999", "31-Dec-9999", "Dec-31-9999",
        "December the 31st, 9999", "9999/12",
    ],
)  # fmt: skip
def test_a_day_no_bill_can_have_is_refused(day: str) -> None:
    """Read as no date, "on 9999-12-31" was answered for the last 30 days, and "December 31, 9999" for
    the latest December."""
    refused = f"^{day} is not a date in the question \\(bills are dated from 1900 to 2999\\)$"
    with pytest.raises(InputError, match=refused):
        parse_period(f"how much did we spend on {day}", ANCHOR)


@pytest.mark.parametrize("quarter", ["Q0", "Q5", "q9", "Q12", "Q5 2025", "Q7 of 2024", "Q6, 2025"])
def test_a_quarter_no_year_has_is_refused_not_left_unread(quarter: str) -> None:
    """Left unread, "in Q5" was answered for the default range (the last 30 days)."""
    with pytest.raises(
        InputError, match=f"^{quarter} is not a quarter in the question \\(a quarter is Q1 to Q4\\)$"
    ):
        parse_period(f"how much did we spend in {quarter}", ANCHOR)
    assert parse_period("how much did we spend in Q4 2024", ANCHOR) == (date(2024, 10, 1), date(2024, 12, 31))
    assert parse_period("how much did EC2 Q developer cost", ANCHOR) == (None, None)


@pytest.mark.parametrize(
    "day", ["2025-02-30", "2024-02-30", "2025-04-31", "2025/06/31", "February 30", "31 April", "Feb 29 2025"]
)
def test_a_day_its_month_does_not_have_is_refused_not_read_as_no_date(day: str) -> None:
    """Read as no date, it was answered for the default range (the last 30 days): a mistyped date."""
    with pytest.raises(InputError, match=f"^{day} is not a date in the question$"):
        parse_period(f"how much did we spend on {day}", ANCHOR)
    leap = date(2024, 2, 29)
    assert parse_period("how much did we spend on 2024-02-29", ANCHOR) == (leap, leap)


@pytest.mark.parametrize("month", ["2025-13", "2025-00", "2024-99"])
def test_a_month_no_year_has_is_refused_not_read_as_its_year(month: str) -> None:
    """Read as no month, "in 2025-13" was answered for the whole of 2025."""
    with pytest.raises(InputError, match=f"^{month} is not a month in the question \\(a month is written"):
        parse_period(f"how much did we spend in {month}", ANCHOR)


def test_open_ended_and_empty_ranges_end_on_the_anchor() -> None:
    mid = date(2025, 3, 15)
    assert parse_period("since March", mid) == (date(2025, 3, 1), mid)  # not the end of March
    assert parse_period("last 0 days", mid) == (mid, mid)
    feb, mar = (date(2025, 2, 1), date(2025, 2, 28)), (date(2025, 3, 1), date(2025, 3, 31))
    assert comparison_periods("how much more did we spend in March than February", ANCHOR) == (feb, mar)


def test_a_named_day_without_a_year_is_its_latest_up_to_the_anchor() -> None:
    """February 29 without a year is the latest one (years back in a common year), not February."""
    leap = date(2024, 2, 29)
    assert parse_period("how much did we spend on February 29", date(2025, 3, 1)) == (leap, leap)
    assert parse_period("what did March 32 services cost", ANCHOR)[0] == date(ANCHOR.year, 3, 1)


@pytest.mark.parametrize(
    ("phrase", "period"),
    [
        ("in December of 2023", (date(2023, 12, 1), date(2023, 12, 31))),
        ("in Q1 of 2023", (date(2023, 1, 1), date(2023, 3, 31))),
        ("on 31-Dec-2023", (date(2023, 12, 31), date(2023, 12, 31))),
        ("on Dec-31-2023", (date(2023, 12, 31), date(2023, 12, 31))),
        ("on December the 31st, 2023", (date(2023, 12, 31), date(2023, 12, 31))),
        ("in 2023/12", (date(2023, 12, 1), date(2023, 12, 31))),
    ],
)
def test_a_year_written_after_of_or_with_hyphens_is_the_year_asked_for(
    phrase: str, period: tuple[date, date]
) -> None:
    """ "December of 2023" was read as the latest December, "2023/12" as the whole of 2023."""
    assert parse_period(f"how much did we spend {phrase}", ANCHOR) == period


@pytest.mark.parametrize(
    ("phrase", "period"),
    [
        ("before March 10", (date(1900, 1, 1), date(2025, 3, 9))),
        ("until March 10", (date(1900, 1, 1), date(2025, 3, 10))),
        ("up to 2025-03-10", (date(1900, 1, 1), date(2025, 3, 10))),
        ("after March 10", (date(2025, 3, 11), ANCHOR)),
        ("from March 10", (date(2025, 3, 10), ANCHOR)),
        ("from March 10 to March 12", (date(2025, 3, 10), date(2025, 3, 12))),
        ("in the 30 days before March 10", (date(2025, 2, 8), date(2025, 3, 9))),
        ("in the 2 weeks before 2025-03-10", (date(2025, 2, 24), date(2025, 3, 9))),
        ("since 2025", (date(2025, 1, 1), ANCHOR)),
        ("before February", (date(1900, 1, 1), date(2025, 1, 31))),
        ("in H1 2025", (date(2025, 1, 1), date(2025, 6, 30))),
        ("in the second half of 2024", (date(2024, 7, 1), date(2024, 12, 31))),
        ("in H2", (date(2024, 7, 1), date(2024, 12, 31))),  # the latest that has begun
        ("over the last seven days", (date(2025, 3, 25), ANCHOR)),
        ("in the last two weeks", (date(2025, 3, 18), ANCHOR)),
        ("in the last 2 years", (date(2023, 4, 2), ANCHOR)),  # 730 days
    ],
)
def test_a_date_with_the_word_before_it_or_a_spelt_count_is_the_range_it_names(
    phrase: str, period: tuple[date, date]
) -> None:
    """Read as the date alone, "before March 10" was answered for March 10; "H1 2025", "the last seven
    days" and "the last 2 years" were not read, and answered for the last 30 days."""
    assert parse_period(f"how much did we spend {phrase}", ANCHOR) == period


@pytest.mark.parametrize(
    ("phrase", "refused"),
    [
        ("in FY2025", "FY2025 is not a period this reads \\(a fiscal year"),
        ("in fiscal year 2024", "fiscal year is not a period this reads"),
        ("in 2025-W10", "2025-W10 is not a period this reads \\(weeks are not read by number\\)"),
        ("in week 53", "week 53 is not a period this reads"),
        ("on 3/2/2025", "3/2/2025 is not a period this reads \\(day and month can be read either way\\)"),
        ("on March 32nd", "March 32nd is not a date in the question"),
        ("on March 32", "March 32 is not a date in the question"),
    ],
)
def test_a_period_that_is_not_read_is_refused_not_answered_for_another(phrase: str, refused: str) -> None:
    """Left unread, each was answered for the default range (the last 30 days), "2025-W10" for all of
    2025 and "March 32nd" for all of March."""
    with pytest.raises(InputError, match="^" + refused):
        parse_period(f"how much did we spend {phrase}", ANCHOR)


@pytest.mark.parametrize(
    ("question", "refused"),
    [
        ("EC2 vs S3", True),
        ("payments-prod vs payments-dev last month", True),
        ("how does payments-prod compare to payments-dev?", True),
        ("EC2 in March vs S3 in February", True),
        ("March vs February for EC2", False),
        ("EC2 in March vs February", False),
        ("EC2 and S3 this month compared with last month", False),
        ("how much more did we spend on EC2 in March than February?", False),
    ],
)
def test_one_service_or_account_against_another_is_refused(question: str, refused: bool) -> None:
    """A comparison sets two periods side by side: "EC2 vs S3" was answered as their sum this month
    against last month."""
    accounts = {"334112345678": "payments-prod", "334112345679": "payments-dev"}
    filters = parse_query(question, accounts=accounts, services=["AmazonEC2", "AmazonS3"], today=ANCHOR)
    if refused:
        with pytest.raises(InputError, match="^a comparison of one service or account with another is not"):
            check_compared(question, filters)
    else:
        check_compared(question, filters)
