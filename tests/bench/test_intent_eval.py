"""The intent bench's own parts: its question generator and its expected answers, on a tiny lake
held in DuckDB (the bench itself runs on a lake it builds, in `make bench-rag`)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import random
import re
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from types import ModuleType
from typing import Any

import duckdb
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "intent_eval.py"
ANCHOR = dt.date(2025, 7, 15)
A1, A2 = "111111111111", "222222222222"
SERVICES = ("amazonec2", "amazons3", "amazonrds")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("intent_eval", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["intent_eval"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _cost(account: str, service: str, i: int) -> Decimal:
    return (
        Decimal(100 * (SERVICES.index(service) + 1) + i % 7)
        + Decimal(i % 3) / 1000
        + (5 if account == A2 else 0)
    )


def _days() -> list[dt.date]:
    return [
        dt.date(2025, 1, 1) + dt.timedelta(days=i) for i in range((ANCHOR - dt.date(2025, 1, 1)).days + 1)
    ]


@pytest.fixture(scope="module")
def tenant(bench: ModuleType) -> Any:
    con = duckdb.connect()
    con.execute(
        """CREATE TABLE account_service_day_cost (account_id VARCHAR, service_name VARCHAR, usage_date DATE,
           total_cost_usd DECIMAL(38,12))"""
    )
    rows = [(a, s, d, _cost(a, s, i)) for i, d in enumerate(_days()) for a in (A1, A2) for s in SERVICES]
    con.executemany("INSERT INTO account_service_day_cost VALUES (?, ?, ?, ?)", rows)
    anomalies = [
        {
            "account_id": a,
            "service_name": s,
            "usage_date": d,
            "method": "baseline",
            "impact_usd": Decimal(n - 9),
        }
        for n, (a, s, d) in enumerate((a, s, d) for d in _days()[::40] for a in (A1, A2) for s in SERVICES)
    ]
    return bench.Tenant(
        "team-a", con, ANCHOR, {A1: "payments-prod", A2: "web-dev"}, list(SERVICES), anomalies, {}
    )


def _spent(first: dt.date, last: dt.date, accounts: tuple[str, ...], services: tuple[str, ...]) -> Decimal:
    return sum(
        (
            _cost(a, s, i)
            for i, d in enumerate(_days())
            if first <= d <= last
            for a in accounts
            for s in services
        ),
        Decimal(0),
    )


def test_the_generator_asks_at_least_30_distinct_questions_of_each_intent(
    bench: ModuleType, tenant: Any
) -> None:
    asked = bench.questions([tenant], 30, random.Random(7))
    assert Counter(q.intent for q in asked) == dict.fromkeys(bench.INTENTS, 30)
    assert len({q.text for q in asked}) == len(asked)
    assert asked == bench.questions([tenant], 30, random.Random(7))  # same seed, same questions


def test_a_lookups_expected_total_is_the_sum_of_the_published_rows(bench: ModuleType, tenant: Any) -> None:
    assert tenant.spend((dt.date(2025, 3, 1), dt.date(2025, 3, 31)), None, [A2], ["amazons3"]) == {
        "all": _spent(dt.date(2025, 3, 1), dt.date(2025, 3, 31), (A2,), ("amazons3",))
    }
    rng = random.Random(3)
    for form in range(7):
        q = bench.lookup_question(rng, tenant, form)
        first, last = (dt.date.fromisoformat(d) for d in re.findall(r"\d{4}-\d\d-\d\d", q.shown)[:2])
        accounts = (
            (A1,)
            if "payments-prod" in q.text or A1 in q.text
            else (A2,)
            if "web-dev" in q.text or A2 in q.text
            else (A1, A2)
        )
        services = tuple(s for s in SERVICES if any(w in q.text for w in bench.SAID[s])) or SERVICES
        assert q.expected[0] == bench.cents(_spent(first, last, accounts, services)), q.text


def test_amounts_round_half_up_to_cents(bench: ModuleType) -> None:
    assert [bench.cents(Decimal(x)) for x in ("790.105", "-305.505", "0.004")] == [
        Decimal("790.11"),
        Decimal("-305.51"),
        Decimal("0.00"),
    ]


def test_time_phrases_count_from_the_latest_complete_day(bench: ModuleType) -> None:
    rng = random.Random(0)
    assert bench.when(rng, ANCHOR, ("last month",)) == (
        "last month",
        (dt.date(2025, 6, 1), dt.date(2025, 6, 30)),
    )
    assert bench.when(rng, ANCHOR, ("last week",)) == (
        "last week",
        (dt.date(2025, 7, 7), dt.date(2025, 7, 13)),
    )
    assert bench.when(rng, ANCHOR, ("this month",)) == ("this month", (dt.date(2025, 7, 1), ANCHOR))
