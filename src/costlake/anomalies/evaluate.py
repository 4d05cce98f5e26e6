"""Scoring detected anomalies against injected ground truth (the generator's anomalies_truth.csv).

A detection matches an injected anomaly when account and service agree and it is reported on the
anomaly's first day or the day after (a change that starts on a quiet weekend day may only leave the
band the next day); a level shift must be reported once. Precision counts every detection (natural noise that
alerts is a false positive); recall counts every injected anomaly; `cause_hits` counts matched
anomalies whose top contributor is the injected cause.

>>> truth = [{"account_id": "A", "service_name": "s", "start_date": "2025-02-10",
...           "cause_dimension": "region", "cause_value": "eu-west-1"}]
>>> found = [{"account_id": "A", "service_name": "s", "usage_date": "2025-02-10",
...           "top_dimension": "region", "top_value": "eu-west-1"},
...          {"account_id": "B", "service_name": "s", "usage_date": "2025-02-11",
...           "top_dimension": None, "top_value": None}]
>>> s = score(found, truth)
>>> (s.true_positives, s.false_positives, s.false_negatives, s.cause_hits, round(s.f1, 3))
(1, 1, 0, 1, 0.667)

A truth row whose `expected_kind` is "none" (a noisy-mix series) is a series on which no alarm is
allowed: it is never found nor missed, and every detection on its account and service is a false
positive that is also counted in `noise_alarms`.

>>> quiet = {"account_id": "B", "service_name": "s", "start_date": "2025-01-01",
...          "expected_kind": "none", "cause_dimension": "", "cause_value": ""}
>>> s = score(found, truth + [quiet])
>>> (s.true_positives, s.false_positives, s.false_negatives, s.noise_alarms)
(1, 1, 0, 1)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

NO_ALARM = "none"  # the expected kind of a truth row on which nothing may be reported


@dataclass(frozen=True)
class Scores:
    true_positives: int
    false_positives: int
    false_negatives: int
    cause_hits: int
    noise_alarms: int = 0  # false positives on series that must stay quiet (expected kind "none")

    @property
    def precision(self) -> float:
        found = self.true_positives + self.false_positives
        return self.true_positives / found if found else 1.0

    @property
    def recall(self) -> float:
        injected = self.true_positives + self.false_negatives
        return self.true_positives / injected if injected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def cause_share(self) -> float:
        """Share of the detected injected anomalies whose top contributor is the injected cause."""
        return self.cause_hits / self.true_positives if self.true_positives else 0.0

    def __add__(self, other: Scores) -> Scores:
        return Scores(
            self.true_positives + other.true_positives,
            self.false_positives + other.false_positives,
            self.false_negatives + other.false_negatives,
            self.cause_hits + other.cause_hits,
            self.noise_alarms + other.noise_alarms,
        )


TOLERANCE_DAYS = 1


def score(detected: Sequence[Mapping[str, Any]], truth: Sequence[Mapping[str, str]]) -> Scores:
    m = _match(detected, truth)
    quiet = {(t["account_id"], t["service_name"]) for t in truth if t.get("expected_kind") == NO_ALARM}
    noise = sum(1 for key in m.found if key[:2] in quiet and key not in m.matched)
    hits = len(m.matched)
    return Scores(hits, len(m.found) - hits, len(m.missed), m.causes, noise)


def errors(detected: Sequence[Mapping[str, Any]], truth: Sequence[Mapping[str, str]]) -> list[dict[str, Any]]:
    """What `score` counts against a method, one dict per error: each false alarm (`error`
    "false_alarm", the detected row's fields, and the kind injected on that series if any: a change
    reported too late or too early shows as a miss and a false alarm on the same series) and each
    miss (`error` "missed", the truth row's fields, and the days reported on that series).

    >>> truth = [{"account_id": "A", "service_name": "s", "start_date": "2025-02-10", "kind": "step_up",
    ...           "cause_dimension": "region", "cause_value": "eu-west-1"}]
    >>> late = [{"account_id": "A", "service_name": "s", "usage_date": "2025-02-12", "kind": "step_up",
    ...          "top_dimension": None, "top_value": None}]
    >>> [(e["error"], e.get("usage_date") or e["start_date"], e["on_series"]) for e in errors(late, truth)]
    [('missed', '2025-02-10', ['2025-02-12']), ('false_alarm', '2025-02-12', ['step_up'])]
    """
    m = _match(detected, truth)
    out: list[dict[str, Any]] = []
    for t in m.missed:
        days = sorted(k[2] for k in m.found if k[:2] == (t["account_id"], t["service_name"]))
        out.append({"error": "missed", **t, "on_series": days})
    for key, row in m.found.items():
        if key not in m.matched:
            kinds = [t.get("kind", "") for t in truth if (t["account_id"], t["service_name"]) == key[:2]]
            out.append({"error": "false_alarm", **row, "on_series": kinds})
    return out


@dataclass
class _Matched:
    found: dict[tuple[str, str, str], Mapping[str, Any]]  # every detection by (account, service, day)
    matched: set[tuple[str, str, str]]  # the detections that found an injected anomaly
    missed: list[Mapping[str, str]]  # the injected anomalies none found
    causes: int  # found ones whose top contributor is the injected cause


def _match(detected: Sequence[Mapping[str, Any]], truth: Sequence[Mapping[str, str]]) -> _Matched:
    found = {(str(d["account_id"]), str(d["service_name"]), str(d["usage_date"])): d for d in detected}
    matched: set[tuple[str, str, str]] = set()
    missed = []
    causes = 0
    for t in truth:
        if t.get("expected_kind") == NO_ALARM:
            continue
        start = dt.date.fromisoformat(t["start_date"])
        for lag in range(TOLERANCE_DAYS + 1):
            key = (t["account_id"], t["service_name"], (start + dt.timedelta(days=lag)).isoformat())
            if key in found and key not in matched:
                matched.add(key)
                top = (found[key]["top_dimension"], found[key]["top_value"])
                causes += top == (t["cause_dimension"], t["cause_value"])
                break
        else:
            missed.append(t)
    return _Matched(found, matched, missed, causes)
