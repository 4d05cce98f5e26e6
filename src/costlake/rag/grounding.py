"""Is every number in an explanation backed by the retrieved context?

Numbers are money ($1,204.50, -$12.00, 1204.5), percentages (212%, 212.0%), integers ("3 days"), decimals
and multipliers (3x, $1.2k). Each is compared, as an exact `Decimal` and ignoring its sign (the words carry
the direction: "fell by $12.00" for an impact of -12.00), with the numbers found in the context:
`$`, thousands separators and trailing zeros do not matter, and a rounding of a context number to the
number of decimals written counts (context 386.2031 supports "386.20" and "386.2"). The project's own
text rounds half-up (`formatting.ROUNDING`); a model may round half-even, so both roundings are accepted.

Not numbers to check: dates (2025-03-02, 2025-03, March 2, 2025, Mar 2, 2 March 2025, March 2025),
citations in square brackets ([anom-3f2a9c1b7d4e]) and digits inside identifiers (us-east-1, EC2, m5.large,
anom-3f2a9c...). The same rules read the context, so an account id quoted from it is supported.

>>> ctx = ["On 2025-03-02, account 334112345678 (payments-prod) spent $1,204.50 on AmazonRDS, "
...        "212.0% above the expected $386.2031; most of the increase came from region us-east-1 (+$790.10)."]
>>> check_grounding("On March 2, 2025 AmazonRDS cost $1,204.50 against $386.20 [anom-3f2a9c1b7d4e], "
...                 "up 212% (us-east-1: +$790.1) in account 334112345678.", ctx)
GroundingResult(grounded=True, unsupported=[])
>>> check_grounding("AmazonRDS cost $999.99, 3x the usual, on 2025-03-02 [anom-3f2a9c1b7d4e].", ctx)
GroundingResult(grounded=False, unsupported=['999.99', '3x'])
>>> [str(n.value) for n in extract_numbers("-$1,204.50 and 12.5% over 3 days, 1.2k in eu-west-1")]
['-1204.50', '12.5', '3', '1200.0']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal

from costlake.rag.formatting import ROUNDING

_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DAY = r"\d{1,2}(?:st|nd|rd|th)?"
_ISO = r"\d{4}-\d{2}(?:-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?)?"
# Month names are matched capitalised only, so "may 3" in a sentence stays a number.
_DATE = re.compile(
    rf"(?<![\w-])(?:{_ISO}|{_MONTHS}\s+{_DAY}(?:,?\s+\d{{4}})?|{_DAY}\s+(?:of\s+)?{_MONTHS}(?:,?\s+\d{{4}})?"
    rf"|{_MONTHS}\s+\d{{4}})(?!\w)"
)
# [anom-3f2a9c1b7d4e] or [anom-1, anom-2]: identifiers that start with a letter; "[42]" stays checked.
_CITATION = re.compile(r"\[\s*[A-Za-z][\w.:/-]*(?:\s*[,;]\s*[A-Za-z][\w.:/-]*)*\s*\]")
_NUMBER = re.compile(
    r"""
    (?<![\w.])(?<![A-Za-z_]-)            # not inside a word or an identifier (us-east-1, anom-123)
    (?P<sign>[-+\u2212])?\$?
    (?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
    (?P<suffix>bn|[kKMBx\u00d7])?
    (?![\d.]|[A-Za-z_]+\d)                # a unit may follow (999USD, 75pct), not more of an id (3f2a9)
    """,
    re.VERBOSE,
)
_ROUNDINGS = (ROUNDING, ROUND_HALF_EVEN)  # ours, and the other rounding a model may use
_SCALE = {"k": 1000, "K": 1000, "M": 1_000_000, "B": 1_000_000_000, "bn": 1_000_000_000}


@dataclass(frozen=True)
class Number:
    """A number as written (`token`, without $ and separators) and its exact value."""

    token: str
    value: Decimal
    #: decimals as written: "386.20" has 2, "212%" has 0
    places: int


@dataclass(frozen=True)
class GroundingResult:
    grounded: bool
    #: numbers of the explanation the context does not support, as written (no $ or separators), in order
    unsupported: list[str]


def _strip_non_numbers(text: str) -> str:
    return _DATE.sub(" ", _CITATION.sub(" ", text))


def extract_numbers(text: str) -> list[Number]:
    """The numbers in `text`, skipping dates, citations and identifiers."""
    found = []
    for match in _NUMBER.finditer(_strip_non_numbers(text)):
        digits = match["digits"].replace(",", "")
        sign = "-" if match["sign"] in {"-", "\u2212"} else ""
        suffix = match["suffix"] or ""
        value = Decimal(sign + digits) * _SCALE.get(suffix, 1)
        places = len(digits.partition(".")[2]) if not suffix or suffix in "x\u00d7" else 0
        found.append(Number(sign + digits + suffix, value, places))
    return found


def _supported(number: Number, context: set[Decimal]) -> bool:
    target = abs(number.value)
    if target in context:
        return True
    step = Decimal(1).scaleb(-number.places)
    for value in context:
        exponent = value.as_tuple().exponent
        finer = isinstance(exponent, int) and exponent < -number.places
        if finer and any(value.quantize(step, rounding=mode) == target for mode in _ROUNDINGS):
            return True
    return False


def context_numbers(texts: Iterable[str]) -> set[Decimal]:
    """Absolute values of every number in the context texts."""
    return {abs(n.value) for text in texts for n in extract_numbers(text)}


def check_grounding(explanation: str, context_texts: Sequence[str] | str) -> GroundingResult:
    """Whether each number in `explanation` appears among the context's numbers (see the module doc)."""
    texts = [context_texts] if isinstance(context_texts, str) else list(context_texts)
    unsupported = unsupported_numbers(explanation, context_numbers(texts))
    return GroundingResult(grounded=not unsupported, unsupported=unsupported)


def unsupported_numbers(text: str, context: set[Decimal]) -> list[str]:
    """The numbers of `text` (as written, deduplicated, in order) that `context` does not support."""
    unsupported: list[str] = []
    for number in extract_numbers(text):
        if not _supported(number, context) and number.token not in unsupported:
            unsupported.append(number.token)
    return unsupported
