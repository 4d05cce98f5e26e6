"""Scoring against the generator's truth: injected anomalies must be found, noisy-mix series
(expected kind "none") must stay quiet."""

from __future__ import annotations

from costlake.anomalies.evaluate import Scores, score


def _truth(account: str, start: str, expected_kind: str, cause: str = "") -> dict[str, str]:
    return {
        "account_id": account,
        "service_name": "amazonec2",
        "start_date": start,
        "expected_kind": expected_kind,
        "cause_dimension": "region" if cause else "",
        "cause_value": cause,
    }


def _found(account: str, day: str, region: str | None = None) -> dict[str, object]:
    return {
        "account_id": account,
        "service_name": "amazonec2",
        "usage_date": day,
        "top_dimension": "region" if region else None,
        "top_value": region,
    }


def test_a_series_that_must_stay_quiet_is_never_found_nor_missed() -> None:
    truth = [_truth("A", "2025-02-10", "step_up", "eu-west-1"), _truth("Q", "2025-01-01", "none")]
    quiet_run = score([_found("A", "2025-02-11", "eu-west-1")], truth)
    assert quiet_run == Scores(1, 0, 0, 1, noise_alarms=0)
    # Alarms on the quiet series, even on its "start" day, are false positives and noise alarms.
    noisy_run = score(
        [_found("Q", "2025-01-01"), _found("Q", "2025-02-03"), _found("B", "2025-02-03")], truth
    )
    assert noisy_run == Scores(0, 3, 1, 0, noise_alarms=2)
    assert noisy_run.recall == 0.0 and quiet_run.recall == 1.0


def test_no_truth_but_quiet_series_gives_full_recall() -> None:
    s = score([], [_truth("Q", "2025-01-01", "none")])
    assert (s.true_positives, s.false_negatives, s.recall, s.noise_alarms) == (0, 0, 1.0, 0)


def test_scores_add_up_noise_alarms() -> None:
    total = Scores(1, 2, 3, 1, noise_alarms=1) + Scores(4, 5, 6, 2, noise_alarms=2)
    assert total == Scores(5, 7, 9, 3, noise_alarms=3)
    assert Scores(0, 0, 0, 0).noise_alarms == 0
