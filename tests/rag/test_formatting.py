"""One formatting rule: chunk sentences and the offline composer write the same amount the same way."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from costlake.rag.chunk_text import chunk_text
from costlake.rag.formatting import format_pct, format_signed_usd, format_usd
from costlake.rag.grounding import check_grounding
from costlake.rag.llm import OfflineClient
from costlake.rag.prompt import build_prompt


def rds_spike(contribution: str, impact: str, pct: str) -> dict[str, Any]:
    """Chunk metadata of an RDS spike whose contributor, impact and percentage are the given values."""
    return {
        "usage_date": "2025-03-02",
        "account_id": "334112345678",
        "account_name": "payments-prod",
        "service_name": "AmazonRDS",
        "method": "baseline",
        "kind": "spike",
        "direction": "up",
        "actual_usd": "1204.5",
        "expected_usd": "386.2",
        "expected_low_usd": None,
        "expected_high_usd": None,
        "impact_usd": impact,
        "impact_pct": pct,
        "duration_days": 1,
        "ongoing": False,
        "top_dimension": None,
        "contributors": [{"dimension": "region", "value": "us-east-1", "contribution_usd": contribution}],
    }


@pytest.mark.parametrize(
    ("amount", "written"),
    [("790.105", "$790.11"), ("2.665", "$2.67"), ("0.125", "$0.13"), ("1234.565", "$1,234.57")],
)
def test_a_half_cent_is_written_identically_by_chunk_text_and_by_the_offline_answer(
    amount: str, written: str
) -> None:
    meta = rds_spike(contribution=amount, impact=amount, pct="12.25")
    sentence = chunk_text(meta)
    context = {**meta, "chunk_id": "anom-1", "text": sentence}
    answer = OfflineClient().generate(build_prompt("Why did RDS rise?", [context]))
    assert format_usd(Decimal(amount)) == written  # half-up; half-even writes each a cent lower
    assert f"{written} (12.3%) above the expected" in sentence
    assert f"{written} (12.3%) above the baseline" in answer
    assert f"(+{written})" in sentence and f"(+{written})" in answer
    assert check_grounding(answer, build_prompt("Why?", [context]).context_lines()).grounded


def test_signs_and_zero() -> None:
    assert [format_signed_usd(Decimal(v)) for v in ("12", "-12", "0.004", "-0.004")] == [
        "+$12.00",
        "-$12.00",
        "$0.00",
        "$0.00",
    ]
    assert format_pct(Decimal("-0.04")) == "0.0%" and format_pct(Decimal("-12.25")) == "-12.3%"
