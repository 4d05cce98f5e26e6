"""The grounding check's precomputed structures answer exactly what the plain loops answered.

`reference_unsupported` is `ContextFacts.unsupported` as it was before the structures (every name's
pattern tried, every date parsed against every context date, `_supported` looping over every context
number): random contexts and answers must get the same list from both, including the error a decimal
context with too little precision raises for a rounding.
"""

from __future__ import annotations

import decimal
import itertools
import re
import string
from datetime import date
from decimal import Decimal, localcontext
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from costlake.rag import grounding as g
from costlake.rag.formatting import MONTHS


def reference_agrees(written: str, day: date) -> bool:
    iso = g._ISO_PARTS.match(written)
    year: int | None
    dom: int | None
    if iso:
        year, month, dom = int(iso[1]), int(iso[2]), int(iso[3]) if iso[3] else None
    else:
        name = g._MONTH_NAME.search(written)
        month = g._MONTH_NUMBERS.get(name[0][:3].lower(), 0) if name else 0
        year_match = g._YEAR.search(written)
        year = int(year_match[0]) if year_match else None
        dom_match = g._DAY_OF_MONTH.search(g._YEAR.sub(" ", written))
        dom = int(dom_match[1]) if dom_match else None
    return (year is None or year == day.year) and month == day.month and (dom is None or dom == day.day)


# The plain loop over every context value, which grounding keeps for contexts whose decimal settings
# could trap a rounding: the reference the fast path must agree with.
reference_supported = g._supported


OLD_CHUNK_ID = re.compile(r"(?<![\w-])anom-[A-Za-z0-9]+")


def reference_unsupported(facts: g.ContextFacts, text: str) -> list[str]:
    found = [m.group(0) for m in OLD_CHUNK_ID.finditer(text) if m.group(0) not in facts.chunk_ids]
    for name in facts.names:
        pattern = r"(?<![\w$.,])" + re.escape(name) + r"(?!\w)"
        text = re.sub(pattern, " ", text, flags=re.IGNORECASE)
    text = g._CITATION.sub(" ", text)
    for match in g._DATE.finditer(text):
        if not any(reference_agrees(match.group(0), day) for day in facts.dates):
            found.append(match.group(0))
    for number in g.extract_numbers(g._DATE.sub(" ", text)):
        if not reference_supported(number, facts.numbers):
            found.append(number.token)
    return list(dict.fromkeys(found))


def outcome(check: Any, *args: Any) -> Any:
    try:
        return check(*args)
    except ArithmeticError as exc:
        return ("raised", type(exc))


decimals = st.builds(
    lambda digits, places, negative: Decimal(("-" if negative else "") + digits).scaleb(-places),
    st.text("0123456789", min_size=1, max_size=9),
    st.integers(0, 8),
    st.booleans(),
)
names = st.one_of(
    st.sampled_from(["web 8461", "us-east-1", "334112345678", "K8s-01", "payments-2 prod", "ap-south-12"]),
    st.text(string.ascii_letters + string.digits + "-. \u212a\u017f", min_size=2, max_size=10),
)
days = st.dates(date(2024, 1, 1), date(2025, 12, 31))
edges = ["", "", "$", ".", ",", "_", "a", "7", "-", "(", ")"]
chunk_ids = st.sampled_from(["anom-3f2a9c1b7d4e", "anom-000000000001", "anom-abc"])


@st.composite
def chunks(draw: st.DrawFn) -> dict[str, Any]:
    chunk: dict[str, Any] = {"chunk_id": draw(chunk_ids), "usage_date": draw(days).isoformat()}
    for key in ("actual_usd", "expected_usd", "impact_usd", "impact_pct", "duration_days"):
        if draw(st.booleans()):
            chunk[key] = draw(decimals) if key != "duration_days" else draw(st.integers(0, 40))
    chunk["account_name"] = draw(names)
    chunk["contributors"] = [
        {"value": draw(names), "contribution_usd": draw(decimals), "actual_usd": draw(decimals)}
        for _ in range(draw(st.integers(0, 3)))
    ]
    return chunk


def written(value: Decimal, places: int, style: int) -> str:
    """A context value as an answer may write it: rounded, with $ and separators, or scaled."""
    rounded = value.quantize(Decimal(1).scaleb(-places)) if places < 9 else value
    return [f"${rounded:,}", f"{rounded}%", f"{rounded}x", f"-{rounded}", f"{rounded / 1000:.1f}k"][style]


@st.composite
def answers(draw: st.DrawFn, context: list[dict[str, Any]]) -> str:
    values = [Decimal(str(v)) for c in context for k, v in c.items() if k.endswith(("_usd", "_pct", "_days"))]
    named = [c["account_name"] for c in context] + [n["value"] for c in context for n in c["contributors"]]
    parts = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.integers(0, 6))
        if kind == 0 and values:
            value = draw(st.sampled_from(values))
            parts.append(written(value, draw(st.integers(0, 9)), draw(st.integers(0, 4))))
        elif kind == 1:
            parts.append(written(draw(decimals), draw(st.integers(0, 9)), draw(st.integers(0, 4))))
        elif kind == 2:
            day = draw(days)
            parts.append(
                draw(
                    st.sampled_from(
                        [day.isoformat(), day.isoformat()[:7], f"{MONTHS[day.month - 1]} {day.day}"]
                    )
                )
            )
        elif kind == 3:  # a name, in any case, next to what may or may not end a name
            name = draw(st.sampled_from(named))
            name = draw(st.sampled_from([name, name.upper(), name.lower(), name.title()]))
            parts.append(draw(st.sampled_from(edges)) + name + draw(st.sampled_from(edges)))
        elif kind == 4:
            chunk_id = draw(chunk_ids)
            parts.append(
                draw(
                    st.sampled_from(
                        [f"[{chunk_id}]", chunk_id, f"x{chunk_id}", f"-{chunk_id}", f"({chunk_id}"]
                    )
                )
            )
        else:
            parts.append(draw(st.text(string.ascii_letters + string.digits + " .,-_$%[]\u212a", max_size=12)))
    return draw(st.sampled_from([" ", ", ", " and ", ". "])).join(parts)


@st.composite
def cases(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str]:
    context = draw(st.lists(chunks(), min_size=1, max_size=4))
    return context, draw(answers(context))


@settings(max_examples=400, deadline=None, database=None)
@given(cases())
def test_the_fast_check_equals_the_plain_loops(case: tuple[list[dict[str, Any]], str]) -> None:
    context, text = case
    facts = g.context_facts(context)
    assert facts.unsupported(text) == reference_unsupported(facts, text)
    assert facts.unsupported(text) == reference_unsupported(facts, text)  # from the built structures


@settings(max_examples=150, deadline=None, database=None)
@given(cases(), st.integers(3, 8))
def test_a_rounding_the_decimal_context_refuses_still_raises_where_it_did(
    case: tuple[list[dict[str, Any]], str], precision: int
) -> None:
    context, text = case
    facts = g.context_facts(context)
    with localcontext() as decimal_context:
        decimal_context.prec = precision
        assert outcome(facts.unsupported, text) == outcome(reference_unsupported, facts, text)


def test_values_half_a_unit_away_count_and_the_next_ones_do_not() -> None:
    facts = g.context_facts(
        [{"chunk_id": "anom-1", "actual_usd": "386.205", "impact_pct": "12.25", "x_usd": "7.5"}]
    )
    assert [value for value, _ in facts._ordered] == [Decimal("7.5"), Decimal("12.25"), Decimal("386.205")]
    text = "$386.21 (half up), $386.20 (half even), 386.2, 12.2%, 12.3%, 8x, 7x, $386.205 [anom-1]"
    assert facts.unsupported(text) == reference_unsupported(facts, text) == ["7x"]
    assert facts.unsupported("$386.22, $386.19, 12.4% and 13% [anom-1]") == ["386.22", "386.19", "12.4", "13"]


@settings(max_examples=100, deadline=None, database=None)
@given(cases(), st.sampled_from(["Inexact", "Rounded", "Subnormal", "Clamped"]), st.integers(-3, 0))
def test_a_decimal_context_trapping_roundings_gets_the_loops_answer(
    case: tuple[list[dict[str, Any]], str], signal: str, emin: int
) -> None:
    context, text = case
    facts = g.context_facts(context)
    with localcontext() as decimal_context:
        decimal_context.traps[getattr(decimal, signal)] = True
        decimal_context.Emin = emin
        assert outcome(facts.unsupported, text) == outcome(reference_unsupported, facts, text)


def test_names_are_taken_out_where_their_pattern_matches_at_every_edge() -> None:
    context = [
        {"chunk_id": "anom-1", "account_name": "web 8461", "account_id": "334112345678", "actual_usd": "1"},
        {"chunk_id": "anom-2", "account_name": "K8s-01", "service_name": "amazons3", "impact_pct": "3"},
    ]
    facts = g.context_facts(context)
    for name, before, after, case in itertools.product(
        ["web 8461", "334112345678", "k8s-01", "AmazonS3"], edges, edges, [str, str.upper, str.title]
    ):
        for text in (
            f"{before}{case(name)}{after} costs 1",
            f"{before}{case(name)}{after}{case(name)} [anom-1]",
        ):
            assert facts.unsupported(text) == reference_unsupported(facts, text), text
