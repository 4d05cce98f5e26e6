"""The grounding check, and the property that the offline composer's answers always pass it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costlake.errors import InputError
from costlake.rag.grounding import (
    NO_CITATION,
    GroundingResult,
    check_grounding,
    context_facts,
    extract_numbers,
)
from costlake.rag.llm import OfflineClient
from costlake.rag.prompt import build_prompt

CONTEXT: list[dict[str, Any]] = [
    {
        "chunk_id": "anom-3f2a9c1b7d4e",
        "account_id": "334112345678",
        "account_name": "payments-prod",
        "service_name": "AmazonRDS",
        "usage_date": "2025-03-02",
        "actual_usd": "1204.50",
        "expected_usd": "386.2031",
        "impact_pct": "212.0",
        "contributors": [{"dimension": "region", "value": "us-east-1", "contribution_usd": "790.10"}],
        "text": "On 2025-03-02 payments-prod spent $1,204.50; the sentence supports nothing: $4.44",
    },
    {
        "chunk_id": "anom-8c1d00aa1234",
        "account_id": "111122223333",
        "account_name": "web 8461",
        "service_name": "service 3f2a9c (name withheld)",
        "usage_date": "2024-11-30",
        "duration_days": 3,
        "impact_usd": "-12.00",
        "impact_pct": "-12.3456",
        "text": "t",
    },
]


def unsupported(explanation: str) -> list[str]:
    """What `CONTEXT` does not support in `explanation`, a phrase that need not cite (see the citation
    tests)."""
    return context_facts(CONTEXT).unsupported(explanation)


def test_an_invented_number_is_caught() -> None:
    result = check_grounding("AmazonRDS cost $999.99 on 2025-03-02 [anom-3f2a9c1b7d4e].", CONTEXT)
    assert result == GroundingResult(grounded=False, unsupported=["999.99"])


def test_the_context_may_be_given_as_the_prompts_json_lines() -> None:
    lines = build_prompt("why?", CONTEXT).context_lines()
    assert check_grounding("spent $1,204.50 [anom-3f2a9c1b7d4e]", lines).grounded
    assert check_grounding("spent $1,204.51", lines).unsupported == ["1204.51"]
    with pytest.raises(InputError, match="not a chunk"):
        check_grounding("x", ["On 2025-03-02 it cost $1."])


@pytest.mark.parametrize(
    "text",
    [
        "spent $1,204.50",
        "spent 1204.5 dollars",
        "spent $1204.50000",
        "212.0% above",
        "212% above",
        "lasting 3 days",
        "fell by $12.00",  # the sign is in the words
        "an impact of -$12.00",
        "an impact of \u2212$12",  # unicode minus
        "(+$790.10)",
        "The bill is $12.",  # a full stop after a number
        "account 334112345678",
        "account web 8461 (111122223333)",  # digits inside names are not claims
        "on service 3f2a9c (name withheld)",
    ],
)
def test_numbers_from_the_context_in_any_notation_are_supported(text: str) -> None:
    assert unsupported(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("expected $386.20", []),  # 386.2031 rounded to cents
        ("expected $386.2", []),
        ("expected $386", []),
        ("down 12.35%", []),  # -12.3456, half-up or half-even
        ("down 12.3%", []),
        ("expected $386.21", ["386.21"]),  # not a rounding of anything in the context
        ("expected $390", ["390"]),
        ("down 12.4%", ["12.4"]),
        ("spent $1,205", []),  # 1204.50 rounds half-up to 1205
        ("spent $1,204", []),  # ... and half-even to 1204
        ("spent $1,200", ["1200"]),  # a rounding to hundreds is not a rounding to decimals
    ],
)
def test_roundings_of_context_numbers_count_and_nothing_else(text: str, expected: list[str]) -> None:
    assert unsupported(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "on 2025-03-02",
        "on 2024-11-30T08:15:00Z",
        "in 2024-11",
        "on March 2, 2025",
        "on Mar 2",
        "on 30 November 2024",
        "on the 30th of November",
        "in March 2025",
        "see [anom-3f2a9c1b7d4e]",
        "see [anom-3f2a9c1b7d4e, anom-8c1d00aa1234] and anom-8c1d00aa1234",
        "in us-west-2 on EC2 m5.large instances, S3 and p99 latency",
    ],
)
def test_context_dates_citations_and_identifiers_are_not_numbers(text: str) -> None:
    assert unsupported(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("on 2025-03-03", ["2025-03-03"]),
        ("on 2023-03-02", ["2023-03-02"]),
        ("in 2025-04", ["2025-04"]),
        ("on March 3", ["March 3"]),
        ("in April 2025", ["April 2025"]),
        ("on 2 March 2024", ["2 March 2024"]),
    ],
)
def test_a_date_the_context_does_not_hold_is_not_grounded(text: str, expected: list[str]) -> None:
    assert unsupported(text) == expected


def test_a_citation_of_a_chunk_that_was_not_retrieved_is_not_grounded() -> None:
    result = check_grounding("AmazonRDS spiked [anom-000000000000]; see also anom-ffffffffffff.", CONTEXT)
    assert result == GroundingResult(False, ["anom-000000000000", "anom-ffffffffffff"])


def test_digits_inside_names_ids_and_sentences_support_nothing() -> None:
    # chunk ids, us-east-1, the label's 3f2a9c, "web 8461" and the sentence's $4.44 are not numeric fields
    assert unsupported("up 9 days") == ["9"]
    assert unsupported("region 1") == ["1"]
    assert unsupported("the total is $8461 and $4.44") == ["8461", "4.44"]
    assert unsupported("The bill is $0.") == ["0"]
    assert unsupported("costs are 334112345678 dollars") == []  # the account id, taken out as a name
    assert unsupported("costs are $334112345678") == ["334112345678"]  # "$" makes it an amount


def test_multipliers_scales_and_bracketed_numbers_are_checked() -> None:
    assert unsupported("4x the usual, about $1.2k, [42] and 5-10%") == ["4x", "1.2k", "42", "5", "10"]


def test_each_unsupported_number_is_reported_once_as_written() -> None:
    result = check_grounding("$5,000.00 then $5,000.00 then -$7", [])
    assert result == GroundingResult(grounded=False, unsupported=["5000.00", "-7"])
    assert check_grounding("", CONTEXT).grounded


def test_extract_numbers_reads_values_exactly() -> None:
    values = [n.value for n in extract_numbers("$1,204.50, -$12.00, 212.0%, .5 and 3 days on 2025-03-02")]
    assert values == [Decimal("1204.50"), Decimal("-12.00"), Decimal("212.0"), Decimal("0.5"), Decimal(3)]


# --- zeros: only an actual amount of zero supports a written zero ------------------------------------------

NEW_SERVICE: dict[str, Any] = {
    "chunk_id": "anom-010b5b673ba5",
    "account_id": "334112345678",
    "service_name": "AmazonBedrock",
    "usage_date": "2025-03-02",
    "kind": "new_service",
    "direction": "up",
    "actual_usd": "57.3",
    "expected_usd": "0",
    "expected_low_usd": "0",
    "expected_high_usd": "0.00",
    "impact_usd": "57.3",
    "impact_pct": None,
    "contributors": [
        {
            "dimension": "region",
            "value": "us-east-1",
            "actual_usd": "57.3",
            "expected_usd": "0",
            "contribution_usd": "57.3",
        },
    ],
    "text": "t",
}
DROPPED: dict[str, Any] = {
    **NEW_SERVICE,
    "chunk_id": "anom-0000000dead0",
    "kind": "dropped_to_zero",
    "direction": "down",
    "actual_usd": "0.00",
    "expected_usd": "212.40",
    "expected_low_usd": "200",
    "expected_high_usd": "220",
    "impact_usd": "-212.40",
    "impact_pct": "-100.0",
    "contributors": [],
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The bill is $0 [anom-010b5b673ba5].", ["0"]),
        ("Total costs are $0.00 this month [anom-010b5b673ba5]", ["0.00"]),
        ("AmazonBedrock cost $57.30 against an expected $0.00 [anom-010b5b673ba5].", ["0.00"]),
        ("AmazonBedrock cost $57.30, up 0% [anom-010b5b673ba5].", ["0"]),
        ("AmazonBedrock cost $57.30 with nothing expected [anom-010b5b673ba5].", []),
    ],
)
def test_a_zero_baseline_does_not_support_a_zero(text: str, expected: list[str]) -> None:
    assert check_grounding(text, [NEW_SERVICE]).unsupported == expected


@pytest.mark.parametrize(
    ("chunk", "text"),
    [
        (DROPPED, "AmazonBedrock dropped to $0.00 from an expected $212.40 [anom-0000000dead0]."),
        (DROPPED, "The bill is $0 [anom-0000000dead0]."),
        (  # a contributor's actual amount is an actual amount too
            {
                **NEW_SERVICE,
                "contributors": [{"dimension": "region", "value": "eu-west-1", "actual_usd": "0"}],
            },
            "eu-west-1 cost $0 [anom-010b5b673ba5].",
        ),
        (  # not zero, but rounds to it, like any rounding
            {**NEW_SERVICE, "expected_usd": "0.003"},
            "against an expected $0.00 [anom-010b5b673ba5].",
        ),
    ],
)
def test_an_actual_amount_of_zero_supports_a_zero(chunk: dict[str, Any], text: str) -> None:
    assert check_grounding(text, [chunk]) == GroundingResult(grounded=True, unsupported=[])


def test_zero_impacts_contributions_and_durations_support_no_zero() -> None:
    chunk = {
        **NEW_SERVICE,
        "kind": "mix_shift",
        "actual_usd": "500.00",
        "expected_usd": "500.00",
        "impact_usd": "0.00",
        "impact_pct": "0.0",
        "duration_days": 0,
        "contributors": [{"dimension": "region", "value": "eu-west-1", "contribution_usd": "0"}],
    }
    result = check_grounding("Total costs are $0.00, 0% and 0 days [anom-010b5b673ba5].", [chunk])
    assert result == GroundingResult(grounded=False, unsupported=["0.00", "0"])


@pytest.mark.parametrize("chunk", [NEW_SERVICE, DROPPED])
def test_offline_answers_for_new_services_and_drops_to_zero_are_grounded(chunk: dict[str, Any]) -> None:
    prompt = build_prompt("What changed?", [chunk])
    answer = OfflineClient().generate(prompt)
    assert check_grounding(answer, prompt.context).grounded, answer
    assert check_grounding(answer, prompt.context_lines()).grounded, answer
    assert "could not be summarised" not in answer
    assert ("with nothing expected" in answer) == (chunk is NEW_SERVICE)
    assert ("$0.00" in answer) == (chunk is DROPPED)


# --- citations: figures need one --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "AmazonRDS cost $1,204.50 against $386.20, up 212%.",
        "AmazonRDS spiked on 2025-03-02.",  # a date is a figure
        "AmazonRDS cost $1,204.50 (anom-3f2a9c1b7d4e).",  # an id without brackets is not a citation
    ],
)
def test_figures_without_any_citation_are_not_grounded(text: str) -> None:
    assert check_grounding(text, CONTEXT) == GroundingResult(grounded=False, unsupported=[NO_CITATION])
    assert check_grounding(text + " [anom-3f2a9c1b7d4e]", CONTEXT).grounded


def test_the_citation_rule_needs_figures_and_ids_to_cite() -> None:
    # no figure: nothing to cite (names and ids are not figures)
    assert check_grounding("The retrieved data does not say why.", CONTEXT).grounded
    assert check_grounding("It was account 334112345678 (web 8461) on AmazonRDS.", CONTEXT).grounded
    # no chunk id in the context: nothing could be cited
    no_ids = [{k: v for k, v in chunk.items() if k != "chunk_id"} for chunk in CONTEXT]
    assert check_grounding("AmazonRDS cost $1,204.50.", no_ids).grounded
    # unsupported figures are reported as such, the missing citation only when all else is supported
    assert check_grounding("AmazonRDS cost $999.99.", CONTEXT).unsupported == ["999.99"]


# --- property: the offline composer is grounded by construction ------------------------------------------

# labels of withheld names (a hash may be all digits) are names like any other
SERVICES = ["AmazonEC2", "AmazonRDS", "AmazonS3", "AWSLambda", "AmazonMSK", "service 123456 (name withheld)"]
KINDS = ["spike", "dip", "step_up", "step_down", "new_service", "dropped_to_zero", "mix_shift", "unknown"]
VALUES = {
    "region": ["us-east-1", "eu-west-2", "ap-southeast-2", "region 905e12 (name withheld)"],
    "pricing_model": ["OnDemand", "SavingsPlan", "Spot", "Reserved"],
    "charge_category": ["Usage", "Credit", "Tax", "Refund"],
}


@st.composite
def money(draw: st.DrawFn, places: int | None = None) -> str:
    """A decimal string with 0 to 6 places, positive or negative, up to hundreds of millions."""
    unscaled = draw(st.integers(min_value=-(10**12), max_value=10**12))
    scale = draw(st.integers(min_value=0, max_value=6)) if places is None else places
    return format(Decimal(unscaled).scaleb(-scale), "f")


@st.composite
def contributor(draw: st.DrawFn) -> dict[str, Any]:
    dimension = draw(st.sampled_from(sorted(VALUES)))
    return {
        "dimension": dimension,
        "value": draw(st.sampled_from(VALUES[dimension])),
        "actual_usd": draw(money()),
        "expected_usd": draw(money()),
        "contribution_usd": draw(money()),
    }


@st.composite
def anomaly(draw: st.DrawFn, index: int) -> dict[str, Any]:
    return {
        "chunk_id": f"anom-{draw(st.integers(min_value=0, max_value=16**12 - 1)):012x}{index}",
        "tenant_id": "acme",
        "account_id": str(draw(st.integers(min_value=10**11, max_value=10**12 - 1))),
        "account_name": draw(st.sampled_from(["payments", "data", "ml", "account 000777 (name withheld)"]))
        + draw(st.text("abcxyz0123456789-", max_size=10)),
        "service_name": draw(st.sampled_from(SERVICES)),
        "usage_date": draw(st.dates()).isoformat(),
        "direction": draw(st.sampled_from(["up", "down", "shift"])),
        "kind": draw(st.sampled_from(KINDS)),
        "actual_usd": draw(money()),
        "expected_usd": draw(money()),
        "impact_usd": draw(money()),
        "impact_pct": draw(st.none() | money()),
        "duration_days": draw(st.integers(min_value=0, max_value=400)),
        "ongoing": draw(st.booleans()),
        "contributors": draw(st.lists(contributor(), max_size=5)),
        "text": "generated anomaly",
    }


@st.composite
def anomalies(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [draw(anomaly(i)) for i in range(draw(st.integers(min_value=0, max_value=7)))]


@settings(max_examples=150, deadline=None)
@given(chunks=anomalies(), limit=st.integers(min_value=1, max_value=5))
def test_offline_answers_are_always_grounded(chunks: list[dict[str, Any]], limit: int) -> None:
    answer = OfflineClient(max_anomalies=limit).generate(build_prompt("What changed?", chunks))
    result = check_grounding(answer, build_prompt("What changed?", chunks).context)
    assert result.grounded, (result.unsupported, answer)
    assert "could not be summarised" not in answer  # the rules ground it, not the last-resort guard
    for chunk in chunks[:limit]:
        assert f"[{chunk['chunk_id']}]" in answer
