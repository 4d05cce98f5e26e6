"""How the explanation layer writes money, percentages and dates: one rule for every text it writes.

Chunk sentences (`chunk_text.py`) and the offline composer's answers (`llm/offline.py`) both format with
these functions, so the same amount reads the same everywhere, and the grounding check (`grounding.py`)
recognises this rounding first.

The rule: money is rounded ROUND_HALF_UP to cents, percentages ROUND_HALF_UP to one decimal (0.1), both
with thousands separators; a value that rounds to zero is written without a sign ("$0.00", never "-$0.00"
or "+$0.00"). Half-up is how
invoices and people round ($790.105 is $790.11), and it does not depend on whether the cent digit is even.
Exact values that are data rather than prose (chunk metadata, citations) are written by `decimal_str`,
which never rounds.

>>> format_usd(Decimal("790.105")), format_usd(Decimal("1204.5")), format_usd(Decimal("-12"))
('$790.11', '$1,204.50', '-$12.00')
>>> format_usd(Decimal("-0.004")), format_usd(Decimal("0.005")), format_usd(Decimal("1234567.891"))
('$0.00', '$0.01', '$1,234,567.89')
>>> [format_signed_usd(Decimal(amount)) for amount in ("790.105", "-305.5", "0.004")]
['+$790.11', '-$305.50', '$0.00']
>>> format_pct(Decimal("211.8902")), format_pct(Decimal("12.25")), format_pct(Decimal("-0.04"))
('211.9%', '12.3%', '0.0%')
>>> format_pct(Decimal("1234.56"))
'1,234.6%'
>>> format_date(date(2025, 3, 2)), format_date("2025-03-02"), format_long_date(date(2025, 3, 2))
('2025-03-02', '2025-03-02', 'Sunday, March 2, 2025')
"""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal

#: The one rounding mode of the project's own text (money and percentages).
ROUNDING = ROUND_HALF_UP
CENT = Decimal("0.01")
TENTH = Decimal("0.1")

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def round_usd(amount: Decimal) -> Decimal:
    """`amount` rounded half-up to cents, with no negative zero."""
    cents = amount.quantize(CENT, rounding=ROUNDING)
    return abs(cents) if cents == 0 else cents


def round_pct(pct: Decimal) -> Decimal:
    """`pct` (in percent units) rounded half-up to one decimal, with no negative zero."""
    tenths = pct.quantize(TENTH, rounding=ROUNDING)
    return abs(tenths) if tenths == 0 else tenths


def format_usd(amount: Decimal) -> str:
    """Dollars rounded half-up to cents, thousands separators, the sign before the dollar sign."""
    cents = round_usd(amount)
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents):,.2f}"


def format_signed_usd(amount: Decimal) -> str:
    """Like `format_usd`, with an explicit "+" for amounts that are positive after rounding."""
    text = format_usd(amount)
    return "+" + text if round_usd(amount) > 0 else text


def format_pct(pct: Decimal) -> str:
    """A percentage (in percent units) rounded half-up to one decimal, with thousands separators."""
    return f"{round_pct(pct):,.1f}%"


def format_date(day: date | str) -> str:
    """A day as ISO 8601 (2025-03-02); a string is checked to be an ISO date and written as is."""
    return day.isoformat() if isinstance(day, date) else date.fromisoformat(day).isoformat()


def format_long_date(day: date) -> str:
    """The day spelled out for prose: "Sunday, March 2, 2025"."""
    return f"{WEEKDAYS[day.weekday()]}, {MONTHS[day.month - 1]} {day.day}, {day.year}"


def decimal_str(value: Decimal) -> str:
    """Exact, compact decimal string: trailing zeros dropped, no exponent, never rounded.

    >>> decimal_str(Decimal("1204.500000000000")), decimal_str(Decimal("0E-12")), decimal_str(Decimal("1E+2"))
    ('1204.5', '0', '100')
    """
    return "0" if value == 0 else format(value.normalize(), "f")
