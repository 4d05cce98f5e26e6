"""The intents end to end on a small lake: rankings in order of impact, look-ups, comparisons and
trends exact to the cent from the published tables, each saying which intent and dates it used."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal

import pytest

from costlake.catalog import readers
from costlake.catalog.views import UnknownTenant
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.tenants import load_tenants
from costlake.rag.explain import Explainer
from costlake.rag.formatting import format_usd
from costlake.rag.indexer import build_index
from costlake.rag.query_parser import QueryFilters
from costlake.settings import Settings
from helpers import NATIVE_HEADER, ingest_and_run

START = dt.date(2025, 1, 1)
DAYS = 59  # 2025-01-01 .. 2025-02-28
A1, A2, B1 = "111111111111", "222222222222", "333333333333"
SERVICES = ((A1, "AmazonEC2", 300), (A2, "AmazonS3", 90), (A2, "AWSLambda", 40), (B1, "AmazonRDS", 150))
#: (account, service, day index) -> factor: three changes for team-a in February, one for team-b
CHANGES = {
    (A1, "AmazonEC2", 33): 5,
    (A2, "AmazonS3", 36): 4,
    (A1, "AmazonEC2", 44): Decimal("0.1"),
    (B1, "AmazonRDS", 34): 9,
}


def _cost(account: str, service: str, level: int, i: int) -> Decimal:
    base = (
        Decimal(level + (i * 7) % 5)
        + Decimal(i % 3) / 100
        + (Decimal(i) if service == "AWSLambda" and i > 28 else 0)
    )
    return (base * CHANGES.get((account, service, i), 1)).quantize(Decimal("0.01"))


def _bill() -> list[list[str]]:
    rows = []
    for i in range(DAYS):
        day = (START + dt.timedelta(days=i)).isoformat()
        for account, service, level in SERVICES:
            rows.append(
                [
                    f"{account}-{service}-{i}",
                    day,
                    account,
                    service,
                    str(_cost(account, service, level, i)),
                    day,
                ]
            )
    return rows


def _spent(service: str, first: dt.date, last: dt.date) -> Decimal:
    account, level = next((a, lv) for a, s, lv in SERVICES if s == service)
    days = range((first - START).days, (last - START).days + 1)
    return sum((_cost(account, service, level, i) for i in days if 0 <= i < DAYS), Decimal(0))


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    folder = tmp_path_factory.mktemp("answers")
    wh = Warehouse(Settings(warehouse=str(folder / "wh"), embedder="hashing"))
    bill, tenants = folder / "bill.csv", folder / "tenants.csv"
    with bill.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(NATIVE_HEADER)
        writer.writerows(_bill())
    tenants.write_text(
        f"account_id,tenant_id,account_name\n{A1},team-a,payments-prod\n{A2},team-a,web-dev\n{B1},team-b,ml-prod\n"
    )
    ingest_and_run(wh, bill)
    load_tenants(wh, tenants)
    build_index(wh)
    yield wh


@pytest.fixture(scope="module")
def explainer(lake: Warehouse) -> Explainer:
    return Explainer(lake)


@pytest.fixture(scope="module")
def anchor(lake: Warehouse) -> dt.date:
    """team-a's latest complete day, which relative dates count from."""
    day = readers.latest_complete_date(lake, "team-a")
    assert day is not None and day <= dt.date(2025, 2, 28)
    return day


def test_relative_dates_count_from_the_latest_complete_day(anchor: dt.date, explainer: Explainer) -> None:
    answer = explainer.explain("How much did we spend on S3 this month?", tenant="team-a")
    assert (answer.intent, answer.date_from, answer.date_to) == ("lookup", "2025-02-01", anchor.isoformat())


def test_a_cost_lookup_is_exact_to_the_cent(explainer: Explainer) -> None:
    answer = explainer.explain("How much did we spend on S3 in January 2025?", tenant="team-a")
    expected = _spent("AmazonS3", dt.date(2025, 1, 1), dt.date(2025, 1, 31))
    assert answer.intent == "lookup" and (answer.date_from, answer.date_to) == ("2025-01-01", "2025-01-31")
    assert f"spend on AmazonS3 was {format_usd(expected)} (billed cost)" in answer.explanation
    assert answer.grounded and answer.citations == [] and "Not complete yet" not in answer.explanation


def test_a_lookup_names_the_days_not_complete_and_breaks_down_by_service(
    anchor: dt.date, explainer: Explainer
) -> None:
    answer = explainer.explain("What did web-dev cost from 2025-02-20 to 2025-03-05?", tenant="team-a")
    assert answer.intent == "lookup" and answer.grounded
    s3, fn = (_spent(s, dt.date(2025, 2, 20), dt.date(2025, 3, 5)) for s in ("AmazonS3", "AWSLambda"))
    assert f"was {format_usd(s3 + fn)}" in answer.explanation
    lines = sorted([(-s3, f"- amazons3: {format_usd(s3)}"), (-fn, f"- awslambda: {format_usd(fn)}")])
    assert "\n".join(line for _, line in lines) in answer.explanation.lower()
    assert (
        f"Not complete yet (no data, or data that may still change): {anchor + dt.timedelta(days=1)} "
        "to 2025-03-05." in answer.explanation
    )


def test_another_tenants_spend_is_never_in_a_lookup(explainer: Explainer) -> None:
    answer = explainer.explain("How much did we spend on RDS in February?", tenant="team-a")
    assert answer.explanation.startswith("No spend was published on AmazonRDS from 2025-02-01")
    ops = explainer.explain("How much did we spend on RDS in February?", tenant=None)
    assert "was $" in ops.explanation


def test_a_comparison_gives_both_periods_and_the_change(explainer: Explainer) -> None:
    answer = explainer.explain("S3 spend February vs January", tenant="team-a")
    jan = _spent("AmazonS3", dt.date(2025, 1, 1), dt.date(2025, 1, 31))
    feb = _spent("AmazonS3", dt.date(2025, 2, 1), dt.date(2025, 2, 28))
    assert answer.intent == "comparison" and (answer.date_from, answer.date_to) == (
        "2025-01-01",
        "2025-02-28",
    )
    assert answer.explanation.startswith(
        f"Spend on AmazonS3 was {format_usd(feb)} from 2025-02-01 to 2025-02-28 against {format_usd(jan)} "
        f"from 2025-01-01 to 2025-01-31: {'up' if feb > jan else 'down'} {format_usd(abs(feb - jan))}"
    )
    assert answer.grounded


def test_which_services_grew_lists_only_growth_largest_first(explainer: Explainer) -> None:
    answer = explainer.explain("Which services grew in February?", tenant="team-a")
    lines = [line for line in answer.explanation.splitlines() if line.startswith("- ")]
    names = [line[2:].split(":")[0].lower() for line in lines]
    growth = {
        s: _spent(s, dt.date(2025, 2, 1), dt.date(2025, 2, 28))
        - _spent(s, dt.date(2025, 1, 1), dt.date(2025, 1, 31))
        for s in ("AmazonEC2", "AmazonS3", "AWSLambda")
    }
    assert names == [
        s.lower() for s in sorted((s for s in growth if growth[s] > 0), key=lambda s: -growth[s])
    ]
    assert answer.grounded


def test_the_trend_compares_the_last_30_complete_days_with_the_30_before(
    anchor: dt.date, explainer: Explainer
) -> None:
    answer = explainer.explain("What is growing?", tenant="team-a")
    start = anchor - dt.timedelta(days=59)
    assert answer.intent == "trend" and (answer.date_from, answer.date_to) == (
        start.isoformat(),
        anchor.isoformat(),
    )
    assert "\n- awslambda:" in answer.explanation.lower()  # the one service that grows every day
    # The 30 days before start before the lake's first day: said so, not counted silently as $0
    missing = (START - start).days
    assert missing > 0 and f" Data begins on {START}: the {missing} day(s) of the earlier period" in (
        answer.explanation
    )
    assert answer.grounded
    feb = explainer.explain("S3 spend February vs January", tenant="team-a").explanation
    assert "Data begins" not in feb  # both periods inside the data


@pytest.mark.parametrize("question", ["What is growing?", "S3 spend February vs January", "month over month"])
def test_the_callers_dates_replace_the_periods_a_comparison_or_a_trend_names(
    explainer: Explainer, question: str
) -> None:
    """The page sends its date range with every question: they were ignored here (the answer covered
    the question's periods, or the last 30 days), where a filter replaces what the question says."""
    given = QueryFilters(date_from=dt.date(2025, 2, 1), date_to=dt.date(2025, 2, 10))
    answer = explainer.explain(question, tenant="team-a", given=given)
    assert answer.intent in ("comparison", "trend") and answer.grounded
    assert (answer.date_from, answer.date_to) == ("2025-01-22", "2025-02-10"), question
    s3 = [_spent("AmazonS3", *days) for days in ((dt.date(2025, 2, 1), dt.date(2025, 2, 10)),)]
    if "S3" in question:
        assert answer.explanation.startswith(
            f"Spend on AmazonS3 was {format_usd(s3[0])} from 2025-02-01 to 2025-02-10"
        )
    assert "Over the last" not in answer.explanation


@pytest.mark.parametrize(
    ("given", "days"),
    [
        (QueryFilters(date_from=dt.date(2999, 12, 31)), ("2999-12-31", "2999-12-31")),
        (QueryFilters(date_to=dt.date(1900, 1, 1)), ("1900-01-01", "1900-01-01")),
    ],
)
def test_a_range_from_one_given_end_is_never_reversed_nor_before_1900(
    explainer: Explainer, given: QueryFilters, days: tuple[str, str]
) -> None:
    answer = explainer.explain("How much did we spend?", tenant="team-a", given=given)
    assert (answer.date_from, answer.date_to) == days
    assert answer.explanation.startswith(
        f"No spend was published across the accounts from {days[0]} to {days[1]}"
    )


def test_a_ranking_orders_every_matching_anomaly_by_impact(explainer: Explainer) -> None:
    biggest = explainer.explain("What was the biggest cost anomaly in February 2025?", tenant="team-a")
    assert biggest.intent == "ranking" and (biggest.date_from, biggest.date_to) == (
        "2025-02-01",
        "2025-02-28",
    )
    assert len(biggest.citations) == 1 and biggest.citations[0].service_name == "amazonec2"  # the key
    # the text names the service as billed (dim_service), the account by id and name
    assert "\n1. AmazonEC2, account 111111111111 (payments-prod), 2025-02-03: +$" in biggest.explanation
    assert "\n\nAmazonEC2 spend in account payments-prod (111111111111) spiked" in biggest.explanation
    assert biggest.citations[0].usage_date == "2025-02-03"
    increases = explainer.explain("Which were the three largest cost increases in February?", tenant="team-a")
    impacts = [Decimal(c.impact_usd) for c in increases.citations]
    assert impacts == sorted(impacts, reverse=True) and all(i > 0 for i in impacts)
    assert {c.account_id for c in increases.citations} <= {A1, A2}  # never team-b's larger spike
    head = f"The {len(impacts)} largest cost increases in February 2025, by impact:\n1. "
    assert len(impacts) >= 2 and increases.explanation.startswith(head)
    drops = explainer.explain("top 2 decreases in February", tenant="team-a")
    assert drops.citations and all(Decimal(c.impact_usd) < 0 for c in drops.citations)


def test_no_match_says_so_and_labels_the_nearest(explainer: Explainer) -> None:
    answer = explainer.explain("Why did Lambda jump for payments-prod on 2025-01-15?", tenant="team-a")
    assert answer.explanation.startswith("No anomaly matched increases in account")
    assert "they do not match the question" in answer.explanation and len(answer.citations) <= 3


def test_an_unknown_tenant_is_refused_for_every_intent(explainer: Explainer) -> None:
    for question in ("How much did we spend last month?", "What is growing?", "biggest anomaly", "why?"):
        with pytest.raises(UnknownTenant):
            explainer.explain(question, tenant="tenant-nope")


def test_which_way_a_question_asks_is_read_from_whole_words() -> None:
    from costlake.rag.answers import _direction

    assert _direction("which services dropped in February? include backup", trend=False) == "down"
    assert _direction("February vs January for our whole group", trend=False) is None
    assert _direction("which services grew", trend=False) == "up"
    assert _direction("what is declining", trend=True) == "down"
    assert _direction("what is growing", trend=True) == "up"


def test_an_account_without_spend_is_said_so_and_no_complete_day_is_flagged(explainer: Explainer) -> None:
    for account in (B1, "999999999999"):  # another tenant's account reads exactly like a made-up one
        answer = explainer.explain(f"How much did {account} spend in January 2025?", tenant="team-a")
        assert answer.explanation == (
            f"No spend was published in account {account} from 2025-01-01 to 2025-01-31."
        ), answer.explanation


def test_questions_without_words_and_unreadable_dates_are_refused_in_one_line(explainer: Explainer) -> None:
    from costlake.errors import InputError

    for question in ("?!.,;:---...", "\U0001f600\U0001f525"):
        with pytest.raises(InputError, match="the question has no words"):
            explainer.explain(question, tenant="team-a")
    answer = explainer.explain("how much did we spend in 0000", tenant="team-a")  # no traceback
    # A day its month does not have is refused, not read as no date (an answer for the last 30 days)
    with pytest.raises(InputError, match=r"^2025-02-30 is not a date in the question$"):
        explainer.explain("how much did we spend on 2025-02-30?", tenant="team-a")
    assert answer.intent == "lookup" and answer.date_to is not None
    with pytest.raises(UnknownTenant) as refused:
        explainer.explain("what is growing", tenant="x" * 100_000)
    assert len(str(refused.value)) < 120


def _digits_only_withheld_service() -> str:
    """A service name the policy withholds whose label's hash is all digits ("say 0": 988751)."""
    from costlake.text.names import name_hash, shown_value

    name = next(f"say {n}" for n in range(1000) if name_hash(f"say {n}".lower()).isdigit())
    assert shown_value("service_name", name.lower()) != name.lower()
    return name


def test_a_withheld_names_label_is_not_read_as_a_figure(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The table answers' context held the stored names, the answer their labels: the digits of a label
    such as `service 988751 (name withheld)` were an unsupported figure, and a correct answer was
    marked ungrounded (with a warning; a model's answer would have been replaced)."""
    folder = tmp_path_factory.mktemp("labels")
    wh = Warehouse(Settings(warehouse=str(folder / "wh"), embedder="hashing"))
    withheld, bill = _digits_only_withheld_service(), folder / "bill.csv"
    with bill.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(NATIVE_HEADER)
        for i in range(40):
            day = (START + dt.timedelta(days=i)).isoformat()
            grown = "300.00" if i >= 31 else "100.00"  # the withheld service grows in February
            writer.writerows(
                [
                    [f"e{k}-{i}", day, A1, s, c, day]
                    for k, (s, c) in enumerate(((withheld, grown), ("EC2", "100.00")))
                ]
            )
    ingest_and_run(wh, bill)
    for question in (
        "How much was spent in January 2025 by service?",
        "Which services grew over the last 7 days?",
    ):
        answer = Explainer(wh).explain(question, tenant=None)
        assert " (name withheld)" in answer.explanation and withheld not in answer.explanation
        assert answer.grounded, (answer.explanation, answer.unsupported)
    lookup = Explainer(wh).explain(f"How much did {withheld} cost in January 2025?", tenant=None)
    assert lookup.grounded and "was $3,100.00" in lookup.explanation, lookup.explanation
