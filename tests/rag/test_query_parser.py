"""Question -> filters: a table of questions and the filters they must parse to."""

from __future__ import annotations

from collections.abc import Collection
from datetime import date

import pytest

from costlake.errors import InputError
from costlake.rag.query_parser import Direction, QueryFilters, parse_query
from costlake.synthetic.generate import SERVICES

TODAY = date(2025, 3, 12)  # a Wednesday
ACCOUNTS = {
    "334112345678": "payments-prod",
    "777788889999": "payments-prod-eu",
    "111122223333": "data-lake",
    "444455556666": "storage-prod",
}
FOCUS = ("Amazon Elastic Compute Cloud", "Virtual Machines", "Amazon Simple Storage Service")
LAKE = ("amazonec2", "amazons3", "awslambda")  # stage 1 case-folds service names


def F(
    accounts: Collection[str] = (),
    services: Collection[str] = (),
    dates: tuple[date, date] | date | None = None,
    direction: Direction | None = None,
) -> QueryFilters:
    start, end = (dates, dates) if isinstance(dates, date) else dates or (None, None)
    return QueryFilters(frozenset(accounts), frozenset(services), start, end, direction)


def d(month: int, day: int, year: int = 2025) -> date:
    return date(year, month, day)


CASES: list[tuple[str, QueryFilters]] = [
    ("Why did RDS spike on 2025-03-02?", F(services={"AmazonRDS"}, dates=d(3, 2), direction="up")),
    ("What happened to EC2 on March 2?", F(services={"AmazonEC2"}, dates=d(3, 2))),
    ("Mar 2nd compute costs", F(services={"AmazonEC2"}, dates=d(3, 2))),
    ("2 March 2025 S3 drop", F(services={"AmazonS3"}, dates=d(3, 2), direction="down")),
    ("March 2, 2025: why did storage costs fall?", F(services={"AmazonS3"}, dates=d(3, 2), direction="down")),
    ("on December 25", F(dates=d(12, 25, 2024))),  # after today: last year
    ("payments-prod spend in February", F(accounts={"334112345678"}, dates=(d(2, 1), d(2, 28)))),
    ("payments prod in March 2025", F(accounts={"334112345678"}, dates=(d(3, 1), d(3, 31)))),
    ("PAYMENTS_PROD in 2025-03", F(accounts={"334112345678"}, dates=(d(3, 1), d(3, 31)))),
    ("spend on payments-prod-eu yesterday", F(accounts={"777788889999"}, dates=d(3, 11))),
    ("storage-prod costs last month", F(accounts={"444455556666"}, dates=(d(2, 1), d(2, 28)))),
    ("account 1111-2222-3333 data transfer today", F({"111122223333"}, {"AWSDataTransfer"}, d(3, 12))),
    ("Did 999988887777 and data-lake grow?", F(accounts={"999988887777", "111122223333"}, direction="up")),
    ("Why did egress fall last week?", F((), {"AWSDataTransfer"}, (d(3, 3), d(3, 9)), "down")),
    ("anything this week", F(dates=(d(3, 10), d(3, 12)))),
    ("past 14 days cdn", F(services={"AmazonCloudFront"}, dates=(d(2, 27), d(3, 12)))),
    ("last 7 days", F(dates=(d(3, 6), d(3, 12)))),
    ("last 2 weeks", F(dates=(d(2, 27), d(3, 12)))),
    ("last 1000 days", F(dates=(d(6, 17, 2022), d(3, 12)))),  # any number of them
    ("last 99999999999 days", F(dates=(d(1, 1, 1900), d(3, 12)))),  # back to the first billing year
    ("this month so far", F(dates=(d(3, 1), d(3, 12)))),
    ("in December", F(dates=(d(12, 1, 2024), d(12, 31, 2024)))),
    ("what happened in 2024", F(dates=(d(1, 1, 2024), d(12, 31, 2024)))),
    ("from 2025-02-27 to 2025-03-02", F(dates=(d(2, 27), d(3, 2)))),
    ("since March 1, why has Glue cost more?", F((), {"AWSGlue"}, (d(3, 1), d(3, 12)), "up")),
    ("costs may rise in May", F(dates=(d(5, 1, 2024), d(5, 31, 2024)), direction="up")),
    ("kubernetes and redis costs", F(services={"AmazonEKS", "AmazonElastiCache"})),
    ("what changed for opensearch", F(services={"AmazonES"})),
    ("step functions and lambda functions", F(services={"AmazonStates", "AWSLambda"})),
    ("SQS queue and SNS notifications", F(services={"AWSQueueService", "AmazonSNS"})),
    ("Route 53 DNS spend went down", F(services={"AmazonRoute53"}, direction="down")),
    ("secrets manager, KMS and WAF", F(services={"AWSSecretsManager", "AWSKMS", "AWSWAF"})),
    ("Amazon EC2 and AWS Data Transfer", F(services={"AmazonEC2", "AWSDataTransfer"})),
    ("amazonrds and AmazonDynamoDB savings", F(services={"AmazonRDS", "AmazonDynamoDB"}, direction="down")),
    ("EMR and MSK (kafka) got cheaper", F(services={"ElasticMapReduce", "AmazonMSK"}, direction="down")),
    ("a step up in SageMaker spend", F(services={"AmazonSageMaker"}, direction="up")),
    ("spend increased and then decreased", F()),  # both directions: no direction filter
    ("spend moved up", F()),  # "moved" says change, not which way
    ("tell me more about the Athena anomaly", F(services={"AmazonAthena"})),
    ("how do I set up CloudTrail", F(services={"AWSCloudTrail"})),
    ("break down the cost of buckets", F(services={"AmazonS3"})),
]  # fmt: skip


@pytest.mark.parametrize(("question", "expected"), CASES, ids=[q for q, _ in CASES])
def test_parse(question: str, expected: QueryFilters) -> None:
    assert parse_query(question, accounts=ACCOUNTS, services=SERVICES, today=TODAY) == expected


@pytest.mark.parametrize(
    ("question", "services", "expected"),
    [
        ("why did EC2 go up", FOCUS, {"Amazon Elastic Compute Cloud"}),
        ("Virtual Machines cost", FOCUS, {"Virtual Machines"}),
        ("amazon simple storage service and compute", FOCUS, {FOCUS[2], "Amazon Elastic Compute Cloud"}),
        ("EC2 spike and lambda", LAKE, {"amazonec2", "awslambda"}),
        ("AmazonS3 buckets", LAKE, {"amazons3"}),
        ("lambda and redshift", ("AmazonS3",), set()),  # aliases only map to services that exist
        # a service without aliases, stored case-folded, asked about as people spell it
        ("how much on Amazon Glacier in January", ("amazonglacier", "amazonec2"), {"amazonglacier"}),
        ("amazon-glacier and roundsvc", ("amazonglacier", "roundsvc"), {"amazonglacier", "roundsvc"}),
        ("route 53 costs", ("route53", "amazonroute"), {"route53"}),
        ("glacial amazon", ("amazonglacier",), set()),
        # a service named as the start of another's name is not read into it, nor one out of words
        ("aws lambda spend", ("aws", "awslambda", "amazon", "amazonec2"), {"awslambda"}),
        ("amazon ec2 and aws", ("aws", "awslambda", "amazon", "amazonec2"), {"amazonec2", "aws"}),
        ("I am trying to understand", ("iam", "amazonec2"), set()),
    ],
)  # fmt: skip
def test_service_spellings(question: str, services: Collection[str], expected: set[str]) -> None:
    assert parse_query(question, accounts={}, services=services, today=TODAY).service_names == expected


def test_matched_says_what_was_read() -> None:
    f = parse_query(
        "Why did storage-prod RDS costs jump on 2025-03-02?",
        accounts=ACCOUNTS,
        services=SERVICES,
        today=TODAY,
    )
    assert f.matched == {
        "storage-prod": "account 444455556666",
        "2025-03-02": "date 2025-03-02",
        "RDS": "service AmazonRDS",
        "jump": "direction up",
    }
    assert f.single_day


def test_account_ids_are_not_dates_and_names_are_not_services() -> None:
    f = parse_query("444455556666 storage-prod", accounts=ACCOUNTS, services=SERVICES, today=TODAY)
    assert f == F(accounts={"444455556666"})


def test_unknown_names_are_not_accounts() -> None:
    # Only names in `accounts` are read: the retriever passes the asking tenant's accounts.
    f = parse_query("payments-prod spend", accounts={}, services=SERVICES, today=TODAY)
    assert f == F()


def test_year_rolls_back_only_when_the_date_is_after_today() -> None:
    assert parse_query("March 12", accounts={}, services=(), today=TODAY).date_from == d(3, 12)
    assert parse_query("March 13", accounts={}, services=(), today=TODAY).date_from == d(3, 13, 2024)
    assert parse_query("April", accounts={}, services=(), today=TODAY).date_from == d(4, 1, 2024)
    assert parse_query("last month", accounts={}, services=(), today=d(1, 15)).date_from == d(12, 1, 2024)


@pytest.mark.parametrize("number", ["37014965641", "3701496564188", "00000000000"])
def test_an_id_a_digit_short_or_long_is_refused_not_read_as_every_account(number: str) -> None:
    """Left unread, "What did 37014965641 spend?" (an id missing a digit) was answered for every
    account the asker may see."""
    with pytest.raises(InputError, match=f"^{number} is not an account id in the question \\(an AWS"):
        parse_query(f"What did {number} spend last week?", accounts=ACCOUNTS, services=SERVICES, today=TODAY)


def test_a_known_id_of_any_length_and_amounts_are_not_refused() -> None:
    legacy = {"37014965641": "legacy-billing"}  # a source whose ids are not AWS's: matched as listed
    f = parse_query("What did 37014965641 spend?", accounts=legacy, services=SERVICES, today=TODAY)
    assert f == F(accounts={"37014965641"})
    for amount in ("$12345678901", "12345678901.50", "1,234,567,890,123", "€3701496564188"):
        assert parse_query(f"we spent {amount} more", accounts=ACCOUNTS, services=SERVICES, today=TODAY) == F(
            direction="up"
        )
    assert parse_query("spend of 444455556666", accounts={}, services=SERVICES, today=TODAY) == F(
        accounts={"444455556666"}
    )


@pytest.mark.parametrize(
    "question",
    [
        "how much did we spend on everything except EC2 last month?",
        "payments-prod last month, excluding EC2",
        "spend last month other than S3",
        "EC2 spend not counting payments-prod",
        "which were the largest increases, excluding EFS?",
    ],
)
def test_a_question_that_leaves_something_out_is_refused(question: str) -> None:
    """The filters name only what to include: "everything except EC2" was answered for EC2 alone."""
    with pytest.raises(
        InputError, match=r"^'(?:except|excluding|other than|not counting) [^']*': a question that leaves"
    ):
        parse_query(question, accounts=ACCOUNTS, services=SERVICES, today=TODAY)


def test_an_account_named_with_an_excluding_word_is_its_name() -> None:
    named = {"111111111111": "left-out", "222222222222": "minus-eu"}
    for question, account in (("spend of left-out", "111111111111"), ("minus-eu last week", "222222222222")):
        assert parse_query(question, accounts=named, services=SERVICES, today=TODAY).account_ids == {account}
    with pytest.raises(InputError, match="^'except minus-eu': a question that leaves"):
        parse_query("all accounts except minus-eu", accounts=named, services=SERVICES, today=TODAY)


def test_a_service_name_that_matches_no_service_is_refused_not_read_as_all() -> None:
    """Left unread, "amazonfoo" was answered for every service, as if the question named none. Only
    where every service of the asker is known (the tables' answers): the anomaly index knows only
    the services with anomalies, and a question about another one finds none, as before."""
    question = "how much did we spend on amazonfoo?"
    with pytest.raises(InputError, match="^no service is named 'amazonfoo'"):
        parse_query(question, accounts=ACCOUNTS, services=SERVICES, today=TODAY, every_service=True)
    assert parse_query(question, accounts=ACCOUNTS, services=SERVICES, today=TODAY) == F()
    for asked in (
        "amazonrds and AWSLambda",
        "why did EC2 spend jump in us-east-1?",
        "which account costs most?",
    ):
        parse_query(asked, accounts=ACCOUNTS, services=SERVICES, today=TODAY, every_service=True)
