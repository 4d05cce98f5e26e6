"""Is every figure and citation of an explanation backed by the retrieved context?

The context is structured: the retrieved chunks as the prompt shows them (`Prompt.context`, or its JSON
lines). Only its *numeric fields* support a number: money (`*_usd`, contributors' too), percentages
(`*_pct`), counts (`*_count`) and numbers of days (`*_days`); only its date fields (`*_date`) support a
date. Names and ids (account ids and names, services, regions, labels of withheld names, chunk ids)
support nothing, and digits inside them are not claims either: a name the context holds is taken out of
the answer before it is read, so "account 334112345678" or "region us-east-1" is not a number, while
"$8461" taken from an account named "web 8461" is an unsupported figure. The chunk's sentence (`text`)
is never read for numbers: every number in it is one of the numeric fields.

An answer is grounded when
- every chunk id it names (`anom-...`, in brackets or not) is one of the retrieved chunks;
- every date it states (2025-03-02, 2025-03, March 2, 2025, Mar 2, 2 March 2025, March 2025) agrees with a
  date of the context in each part it states (year, month, day);
- every number (money $1,204.50 or -$12.00, percentages 212%, counts "3 days", multipliers 3x, $1.2k) is,
  ignoring its sign (the words carry the direction: "fell by $12.00" for an impact of -12.00), a numeric
  field's value or its rounding to the decimals written (386.2031 supports "386.20" and "386.2"; half-up
  as the project rounds, `formatting.ROUNDING`, or half-even as a model may);
- a zero is a claim like any other, and a field that is exactly zero supports it only when that field is
  an actual amount (`actual_usd`, the anomaly's or a contributor's: spend that dropped to zero). A zero
  baseline (`expected_usd` of a new service), impact, contribution, percentage or duration means
  "nothing", which an answer says in words ("nothing was expected"): "The bill is $0" is not grounded by
  a new service's `expected_usd` of 0. A field that is not zero but rounds to zero (0.003) supports
  "$0.00" as any rounding does;
- when the context holds chunk ids and the answer states a figure (a number or a date), it cites at
  least one chunk id in brackets ([anom-...]): the instructions require citations. An answer whose
  figures are all supported but that cites nothing is reported as `[NO_CITATION]`.

Numbers written in words ("seven hundred thousand dollars") are not read: a known limit.

>>> ctx = [{"chunk_id": "anom-3f2a9c1b7d4e", "account_id": "334112345678", "account_name": "web 8461",
...         "service_name": "AmazonRDS", "usage_date": "2025-03-02", "actual_usd": "1204.50",
...         "expected_usd": "386.2031", "impact_pct": "211.88",
...         "contributors": [{"dimension": "region", "value": "us-east-1", "contribution_usd": "790.10"}]}]
>>> check_grounding("On March 2, 2025 AmazonRDS cost $1,204.50 against $386.20 [anom-3f2a9c1b7d4e], "
...                 "up 212% (us-east-1: +$790.1) in account 334112345678 (web 8461).", ctx)
GroundingResult(grounded=True, unsupported=[])
>>> check_grounding("AmazonRDS cost $999.99, 3x the usual, on 2025-03-03 [anom-000000000000], $8461.", ctx)
GroundingResult(grounded=False, unsupported=['anom-000000000000', '2025-03-03', '999.99', '3x', '8461'])
>>> check_grounding("AmazonRDS cost $1,204.50.", ctx)
GroundingResult(grounded=False, unsupported=['(no citation)'])
>>> [str(n.value) for n in extract_numbers("-$1,204.50 and 12.5% over 3 days, 1.2k in eu-west-1")]
['-1204.50', '12.5', '3', '1200.0']
"""

from __future__ import annotations

import contextlib
import decimal
import json
import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation, getcontext
from functools import cached_property, lru_cache
from operator import itemgetter
from typing import Any

from costlake.errors import InputError
from costlake.rag.formatting import MONTHS, ROUNDING
from costlake.rag.spans import replaced, without_ascii_name

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
_ISO_PARTS = re.compile(r"(\d{4})-(\d{2})(?:-(\d{2}))?")
_MONTH_NAME = re.compile(r"[A-Z][a-z]+")
_YEAR = re.compile(r"(?<!\d)\d{4}(?!\d)")
_DAY_OF_MONTH = re.compile(r"(?<!\d)(\d{1,2})(?:st|nd|rd|th)?(?!\d)")
# [anom-3f2a9c1b7d4e] or [anom-1, anom-2]: identifiers that start with a letter; "[42]" stays checked.
_CITATION = re.compile(r"\[\s*[A-Za-z][\w.:/-]*(?:\s*[,;]\s*[A-Za-z][\w.:/-]*)*\s*\]")
_ASCII_DIGITS = re.compile(r"[0-9]+")
# "anom-..." not after a word character or "-"; the check follows the "a" so the search scans for it
_CHUNK_ID = re.compile(r"a(?<![\w-]a)nom-[A-Za-z0-9]+")
_NUMBER = re.compile(
    r"""
    (?<![\w.])(?<![A-Za-z_]-)            # not inside a word or an identifier (us-east-1, anom-123)
    (?P<sign>[-+\u2212])?\$?
    (?P<digits>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)
    (?P<suffix>bn|[kKMBx\u00d7])?
    (?!\d|\.\d|[A-Za-z_]+\d)             # a unit or a full stop may follow (999USD, $0.), not more
                                          # of a number or an id (1.2.3, 3f2a9)
    """,
    re.VERBOSE,
)
_ROUNDINGS = (ROUNDING, ROUND_HALF_EVEN)  # ours, and the other rounding a model may use
# what a rounding may signal
_INEXACT, _ROUNDED, _SUBNORMAL = decimal.Inexact, decimal.Rounded, decimal.Subnormal
_UNDERFLOW, _CLAMPED = decimal.Underflow, decimal.Clamped
_EXACT = Context(prec=decimal.MAX_PREC, Emax=decimal.MAX_EMAX, Emin=decimal.MIN_EMIN)  # sums, exactly
_FIVE = Decimal(5)
_first = itemgetter(0)
_SCALE = {"k": 1000, "K": 1000, "M": 1_000_000, "B": 1_000_000_000, "bn": 1_000_000_000}
#: fields whose values support numbers: money, percentages, counts and numbers of days (the
#: anomalies' `impact_pct`, `duration_days`, `history_days`; the cost answers' `change_pct`, ...)
NUMERIC_SUFFIXES = ("_usd", "_pct", "_count", "_days")
NUMERIC_FIELDS = frozenset({"impact_pct", "duration_days", "history_days"})
#: the fields whose value, when exactly zero, supports a written zero: actual amounts (see the module
#: doc), and the spend a cost answer read
ZERO_FIELDS = frozenset({"actual_usd", "cost_usd", "total_usd", "previous_cost_usd"})
#: what `GroundingResult.unsupported` holds when every figure is supported but none is cited
NO_CITATION = "(no citation)"
_MONTH_NUMBERS = {name[:3].lower(): number for number, name in enumerate(MONTHS, start=1)}


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
    #: what the context does not support, as written (numbers without $ or separators, dates, chunk ids),
    #: each once, chunk ids first, then dates, then numbers, each in order of appearance; or, when all
    #: of them are supported but none is cited, `[NO_CITATION]`
    unsupported: list[str]


@dataclass(frozen=True)
class ContextFacts:
    """What the retrieved context can support: the values of its numeric fields (absolute), its dates,
    its chunk ids, and its names and ids that hold digits (longest first), which are not claims.

    The checks read structures built once per context (the values in order, each name's digits and
    pattern), so a number is checked against the few values near it, not by rounding every value."""

    numbers: frozenset[Decimal]
    dates: frozenset[date]
    chunk_ids: frozenset[str]
    names: tuple[str, ...]

    def unsupported(self, text: str) -> list[str]:
        """The chunk ids, dates and numbers of `text` this context does not support (see the module doc)."""
        found = [m.group(0) for m in _CHUNK_ID.finditer(text) if m.group(0) not in self.chunk_ids]
        text = _CITATION.sub(" ", self._without_names(text))
        dates = list(_DATE.finditer(text))
        for match in dates:
            parts = _date_parts(match.group(0))
            if not any(_parts_agree(parts, day) for day in self.dates):
                found.append(match.group(0))
        for number in extract_numbers(replaced(text, dates)):
            if not self.supports(number):
                found.append(number.token)
        return list(dict.fromkeys(found))

    def supports(self, number: Number) -> bool:
        """Whether a numeric field's value, or its rounding to the places written, is `number` (ignoring
        its sign): what `_supported` answers by rounding every value, answered from the values within
        half a unit of the number's last place (the only ones that can round to it), found by bisection.
        Where the decimal context could refuse a rounding (too little precision, traps set), or the
        places are extreme, `_supported` itself answers, so the same error is raised where it was."""
        target, places = abs(number.value), number.places
        if not self._rounds_quietly(places, getcontext()):
            return _supported(number, self.numbers)
        known = self._answered.get((target, places))  # a quiet rounding depends on values only
        if known is None:
            known = self._answered[target, places] = self._near(target, places)
        return known

    def _near(self, target: Decimal, places: int) -> bool:
        if target in self.numbers:
            return True
        half = _EXACT.scaleb(_FIVE, -places - 1)
        ordered, step = self._ordered, Decimal(1).scaleb(-places)
        at, end = bisect_left(ordered, _EXACT.subtract(target, half), key=_first), _EXACT.add(target, half)
        while at < len(ordered) and ordered[at][0] <= end:
            value, exponent = ordered[at]
            if exponent < -places and any(value.quantize(step, rounding=m) == target for m in _ROUNDINGS):
                return True
            at += 1
        return False

    @cached_property
    def _answered(self) -> dict[tuple[Decimal, int], bool]:
        """`_near`'s answers by value and places: the composer checks each sentence, then the whole text."""
        return {}

    def _rounds_quietly(self, places: int, context: Context) -> bool:
        """Whether `context` rounds every value to `places` decimals without a signal it traps or an
        invalid result: digits to spare, an exponent in range, and no trap on rounding."""
        digits = max(self._largest, 0) + places + 2  # integer digits, the places, a carry
        in_range = context.Emin <= -places <= context.Emax - context.prec
        if digits > context.prec or not in_range:
            return False
        traps = context.traps
        return not (
            traps[_INEXACT] or traps[_ROUNDED] or traps[_SUBNORMAL] or traps[_UNDERFLOW] or traps[_CLAMPED]
        )

    @cached_property
    def _ordered(self) -> list[tuple[Decimal, int]]:
        """The values in increasing order, each with its exponent."""
        return sorted((value, int(value.as_tuple().exponent)) for value in self.numbers)

    @cached_property
    def _largest(self) -> int:
        """The largest adjusted exponent of the values (the position of the first digit)."""
        return max((value.adjusted() for value in self.numbers), default=0)

    @cached_property
    def _name_patterns(self) -> tuple[tuple[str | None, str, re.Pattern[str]], ...]:
        """Each name (longest first) with what a text must hold for its pattern to match: its lower case
        when the name is ASCII (in an ASCII text, case-insensitive matching is `str.lower`'s), and its
        longest run of ASCII digits ("" when none: digits have no other case, in any text)."""
        return tuple(
            (
                name.lower() if name.isascii() else None,
                max(_ASCII_DIGITS.findall(name), key=len, default=""),
                re.compile(r"(?<![\w$.,])" + re.escape(name) + r"(?!\w)", re.IGNORECASE),
            )
            for name in self.names
        )

    def _without_names(self, text: str) -> str:
        lowered = text.lower() if text.isascii() else None
        for lower, digits, pattern in self._name_patterns:
            if lowered is not None and lower is not None:
                if lower in lowered:
                    text = without_ascii_name(text, lowered, lower)
                    lowered = text.lower()  # " " keeps an ASCII text ASCII
            elif digits in text:  # "" is in every text
                text = pattern.sub(" ", text)
                lowered = text.lower() if lowered is not None else None
        return text


def context_facts(context: Sequence[Mapping[str, Any] | str]) -> ContextFacts:
    """The facts of retrieved chunks: `Prompt.context`, or the JSON lines of `Prompt.context_lines()`."""
    numbers: set[Decimal] = set()
    dates: set[date] = set()
    names: set[str] = set()
    chunk_ids: set[str] = set()
    for number, item in enumerate(context, start=1):
        chunk = _as_chunk(item, number)
        if isinstance(chunk.get("chunk_id"), str):
            chunk_ids.add(chunk["chunk_id"])
        _collect(chunk, numbers, dates, names)
    ordered = tuple(sorted(names, key=lambda name: (-len(name), name)))
    return ContextFacts(frozenset(numbers), frozenset(dates), frozenset(chunk_ids), ordered)


def _as_chunk(item: Mapping[str, Any] | str, number: int) -> Mapping[str, Any]:
    if isinstance(item, Mapping):
        return item
    try:
        chunk = json.loads(item, parse_float=Decimal)
    except (TypeError, json.JSONDecodeError):
        chunk = None
    if not isinstance(chunk, dict):
        raise InputError(f"context item {number} is not a chunk: pass Prompt.context or its context_lines()")
    return chunk


def _collect(value: Any, numbers: set[Decimal], dates: set[date], names: set[str], key: str = "") -> None:
    """Walk one chunk (nested contributors included), sorting its values into numbers, dates and names."""
    if type(value) is dict or isinstance(value, Mapping):
        for name, inner in value.items():
            if name != "text":  # the sentence: its numbers are the fields', its names are the fields'
                _collect(inner, numbers, dates, names, str(name))
    elif isinstance(value, list | tuple):
        for inner in value:
            _collect(inner, numbers, dates, names, key)
    elif (kind := _key_kind(key)) == "number":
        # an exact zero supports a written zero only as an actual amount: a zero baseline means "nothing"
        if (exact := _decimal(value)) is not None and (exact != 0 or key in ZERO_FIELDS):
            numbers.add(abs(exact))
    elif kind == "date" and isinstance(value, date | str):
        with contextlib.suppress(ValueError):  # a day that is not a date supports nothing
            dates.add(value if isinstance(value, date) else date.fromisoformat(value))
    elif isinstance(value, str) and _is_name_with_digits(value):
        names.add(value)


@lru_cache(maxsize=1024)
def _key_kind(key: str) -> str:
    """What a field's values support: "number" (`NUMERIC_SUFFIXES`, `NUMERIC_FIELDS`), "date", or "name"."""
    if key.endswith(NUMERIC_SUFFIXES) or key in NUMERIC_FIELDS:
        return "number"
    return "date" if key.endswith("_date") else "name"


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        exact = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation:
        return None
    return exact if exact.is_finite() else None


@lru_cache(maxsize=8192)
def _is_name_with_digits(value: str) -> bool:
    """Names and ids worth taking out of an answer: they hold a digit, and are not a short bare number
    (a name "0" must not hide the claim "0")."""
    if not any(ch.isdigit() for ch in value):
        return False
    return any(ch.isalpha() for ch in value) or len(value) >= 6


def _date_parts(written: str) -> tuple[int | None, int, int | None]:
    """The year (None when not stated), month and day of the month (None when not stated) of a date as
    written (any form `_DATE` reads); month 0 when it names no month."""
    iso = _ISO_PARTS.match(written)
    year: int | None
    dom: int | None
    if iso:
        year, month, dom = int(iso[1]), int(iso[2]), int(iso[3]) if iso[3] else None
    else:
        name = _MONTH_NAME.search(written)
        month = _MONTH_NUMBERS.get(name[0][:3].lower(), 0) if name else 0
        year_match = _YEAR.search(written)
        year = int(year_match[0]) if year_match else None
        rest = _YEAR.sub(" ", written)
        dom_match = _DAY_OF_MONTH.search(rest)
        dom = int(dom_match[1]) if dom_match else None
    return year, month, dom


def _parts_agree(parts: tuple[int | None, int, int | None], day: date) -> bool:
    year, month, dom = parts
    return (year is None or year == day.year) and month == day.month and (dom is None or dom == day.day)


def extract_numbers(text: str) -> list[Number]:
    """The numbers in `text`, skipping dates, citations and identifiers (but not names: see
    `ContextFacts.unsupported`)."""
    found = []
    for match in _NUMBER.finditer(_DATE.sub(" ", _CITATION.sub(" ", text))):
        digits = match["digits"].replace(",", "")
        sign = "-" if match["sign"] in {"-", "\u2212"} else ""
        suffix = match["suffix"] or ""
        value = Decimal(sign + digits) * _SCALE.get(suffix, 1)
        places = len(digits.partition(".")[2]) if not suffix or suffix in "x\u00d7" else 0
        found.append(Number(sign + digits + suffix, value, places))
    return found


def _supported(number: Number, context: Iterable[Decimal]) -> bool:
    target = abs(number.value)
    step = Decimal(1).scaleb(-number.places)
    for value in context:
        if value == target:
            return True
        exponent = value.as_tuple().exponent
        finer = isinstance(exponent, int) and exponent < -number.places
        if finer and any(value.quantize(step, rounding=mode) == target for mode in _ROUNDINGS):
            return True
    return False


def check_grounding(
    explanation: str, context: Sequence[Mapping[str, Any] | str] | ContextFacts
) -> GroundingResult:
    """Whether every chunk id, date and number of `explanation` is supported by `context` (the
    retrieved chunks, see `context_facts`), and its figures are cited (see the module doc for the rules)."""
    facts = context if isinstance(context, ContextFacts) else context_facts(context)
    unsupported = facts.unsupported(explanation)
    uncited = not unsupported and bool(facts.chunk_ids) and not _cites(explanation)
    if uncited and _states_figures(facts._without_names(explanation)):
        unsupported = [NO_CITATION]
    return GroundingResult(grounded=not unsupported, unsupported=unsupported)


def _cites(text: str) -> bool:
    """Whether `text` cites some chunk id in brackets ([anom-...]; whether it was retrieved is checked
    apart)."""
    return any(_CHUNK_ID.search(match.group(0)) for match in _CITATION.finditer(text))


def _states_figures(text: str) -> bool:
    """Whether `text` (without the context's names) states a date or a number."""
    return bool(_DATE.search(text)) or bool(extract_numbers(text))
