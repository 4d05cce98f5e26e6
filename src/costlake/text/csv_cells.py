"""CSV formula neutralisation (OWASP "CSV Injection"): a text cell that a spreadsheet would read as a
formula gets a leading `'`, so it is shown as text and never run.

The rule: a text cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`.
Numbers (int, float, Decimal) are never changed, and neither is text that is a plain number such as
`-12.5` or `+3E-2` (a spreadsheet reads it as that number, and a finance export must keep its sign).
Anything else that is not text (None, dates, booleans) passes through unchanged.
"""

from __future__ import annotations

import re
from typing import TypeVar

# Characters that start a formula (or, for tab and CR, hide one after them in some spreadsheets).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# A plain number in ASCII digits: optional sign, digits with an optional fraction, an optional exponent.
PLAIN_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

T = TypeVar("T")


def neutralise_cell(value: T) -> T | str:
    """The value to write into a CSV cell: `value`, or `'` + `value` when it is text a spreadsheet
    would run as a formula.

    >>> neutralise_cell('=HYPERLINK("http://x","click")')
    '\\'=HYPERLINK("http://x","click")'
    >>> neutralise_cell("@SUM(A1:A9)"), neutralise_cell("+1+1"), neutralise_cell("\\tcmd")
    ("'@SUM(A1:A9)", "'+1+1", "'\\tcmd")
    >>> neutralise_cell("-12.5"), neutralise_cell("+3E-2"), neutralise_cell("-1-1")
    ('-12.5', '+3E-2', "'-1-1")
    >>> from decimal import Decimal
    >>> neutralise_cell(Decimal("-0.5")), neutralise_cell(-3), neutralise_cell(None)
    (Decimal('-0.5'), -3, None)
    >>> neutralise_cell("EC2 = compute"), neutralise_cell("")
    ('EC2 = compute', '')
    """
    if not isinstance(value, str) or not value.startswith(FORMULA_STARTS):
        return value
    if PLAIN_NUMBER.fullmatch(value):
        return value
    return "'" + value
