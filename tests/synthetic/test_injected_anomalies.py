"""The injected anomalies' ground truth, and a step up whose extra spend moves region after a week."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from small_bills import SMALL, Bill

from costlake.synthetic.generate import generate
from costlake.synthetic.injection import KINDS, MOVE_AFTER, MOVED_MIN_DAYS


def test_kinds_come_in_turn_with_what_the_baseline_method_should_report(
    small_bill: Callable[..., Bill],
) -> None:
    truth = [t for t in small_bill().truth if t["kind"] != "noisy_mix"]
    assert KINDS[-1] == "step_up_moved"
    assert sorted(t["kind"] for t in truth) == sorted(KINDS * 2)
    expected = {
        "spike": "spike",
        "step_up": "step_up",
        "step_up_moved": "step_up",
        "new_service": "new_service",
        "drop": "step_down",
        "region_shift": "mix_shift",
    }
    assert all(t["expected_kind"] == expected[t["kind"]] for t in truth)
    assert all(t["cause_dimension"] == "region" and t["cause_value"] for t in truth)


def test_a_moved_step_lasts_to_the_end_and_at_least_three_weeks(small_bill: Callable[..., Bill]) -> None:
    moved = [t for t in small_bill().truth if t["kind"] == "step_up_moved"]
    first_day = date(2025, 1, 1)
    for t in moved:
        start = date.fromisoformat(t["start_date"])
        assert (start - first_day).days + int(t["days"]) == SMALL["days"]
        assert int(t["days"]) >= MOVED_MIN_DAYS
        assert 1.8 <= float(t["magnitude"]) <= 2.6


def _extra_by_region(bill: Bill, t: dict[str, str]) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Extra spend per region over the first week of the episode and after it: the spend minus what
    the region's daily average before the episode would have billed."""
    start = date.fromisoformat(t["start_date"])
    before_days = (start - date(2025, 1, 1)).days
    spans = {"before": before_days, "week": MOVE_AFTER, "after": int(t["days"]) - MOVE_AFTER}
    spend: dict[str, dict[str, Decimal]] = {span: defaultdict(Decimal) for span in spans}
    for (usage, region), cost in bill.series(t["account_id"], t["service_name"]).items():
        day = date.fromisoformat(usage)
        span = "before" if day < start else "week" if day < start + timedelta(MOVE_AFTER) else "after"
        spend[span][region] += cost
    regions = set().union(*spend.values())

    def extra(span: str) -> dict[str, Decimal]:
        return {r: spend[span][r] - spend["before"][r] / before_days * spans[span] for r in regions}

    return extra("week"), extra("after")


def test_the_cause_of_a_moved_step_carries_most_of_its_extra_spend(small_bill: Callable[..., Bill]) -> None:
    bill = small_bill()
    moved = [t for t in bill.truth if t["kind"] == "step_up_moved"]
    assert len(moved) == 2
    for t in moved:
        week, after = _extra_by_region(bill, t)
        first = max(week, key=week.__getitem__)
        assert first != t["cause_value"], "the first week's extra spend runs in another region"
        assert max(after, key=after.__getitem__) == t["cause_value"]
        episode = {r: week[r] + after[r] for r in week}
        assert max(episode, key=episode.__getitem__) == t["cause_value"]
        assert episode[t["cause_value"]] > sum(v for v in episode.values() if v > 0) / 2


def test_too_few_days_for_a_moved_step_is_refused(tmp_path: Path) -> None:
    days = 35 + MOVED_MIN_DAYS - 1
    generate(tmp_path / "five", **{**SMALL, "days": days}, anomalies=5)  # no step_up_moved among five
    with pytest.raises(ValueError, match="step_up_moved"):
        generate(tmp_path / "six", **{**SMALL, "days": days}, anomalies=6)
