"""The stages as pure functions: Arrow in, Arrow out, no lake involved."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pyarrow as pa

from costlake.pipeline import stage1_normalize, stage2_account_service_day, stage3_account_day
from costlake.tables import ACCOUNT_SERVICE_DAY, NORMALIZED, RAW

D = Decimal
DAY1, DAY2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)


def raw(*rows: tuple) -> pa.Table:
    """rows of (event_id, account, service, day, cost, ingested, batch_seq, source_row)."""
    keys = (
        "event_id",
        "account_id",
        "service_name",
        "usage_date",
        "billed_cost",
        "ingestion_ts",
        "batch_seq",
        "source_row",
    )
    dicts = [
        dict(zip(keys, r, strict=True)) | {"effective_cost": r[4], "charge_category": "usage"} for r in rows
    ]
    return pa.Table.from_pylist(dicts, schema=RAW.arrow_schema())


def ts(day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(2025, 1, day, hour)


def test_latest_version_wins_by_total_order():
    rows = raw(
        ("e1", "A1", "EC2", DAY1, D("1"), ts(2), 1, 5),
        ("e1", "A1", "EC2", DAY1, D("2"), ts(2), 2, 1),  # same time, later batch
        ("e1", "A1", "EC2", DAY1, D("3"), ts(1), 3, 1),  # later batch, older ingestion: loses
        ("e2", "A1", "EC2", DAY1, D("4"), ts(2), 1, 7),
        ("e2", "A1", "EC2", DAY1, D("5"), ts(2), 1, 8),  # same batch and time, later row
    )
    out = stage1_normalize.normalize(rows)
    assert out.schema.names == NORMALIZED.column_names
    assert sorted((r["event_id"], r["billed_cost"]) for r in out.to_pylist()) == [
        ("e1", D("2")),
        ("e2", D("5")),
    ]


def test_rebuilding_days_follows_an_event_that_moved():
    rows = raw(
        ("e1", "A1", "EC2", DAY1, D("1"), ts(2), 1, 1),
        ("e2", "A1", "S3", DAY1, D("2"), ts(2), 1, 2),
        ("e1", "A2", "EC2", DAY2, D("9"), ts(3), 2, 1),  # correction: another day and account
    )
    got = sorted(
        (r["event_id"], r["account_id"], r["usage_date"])
        for r in stage1_normalize.normalize(rows).to_pylist()
    )
    assert got == [("e1", "A2", DAY2), ("e2", "A1", DAY1)]
    # Rebuilding day 1 alone drops e1 from it: its winner lives on day 2 now.
    only_day1 = stage1_normalize.normalize(rows, days=[DAY1]).to_pylist()
    assert [(r["event_id"], r["usage_date"]) for r in only_day1] == [("e2", DAY1)]


def test_stage2_and_stage3_sum_exactly_and_count():
    events = stage1_normalize.normalize(
        raw(
            ("e1", "A1", "EC2", DAY1, D("0.000000000001"), ts(2), 1, 1),
            ("e2", "A1", "EC2", DAY1, D("-0.5"), ts(2), 1, 2),
            ("e3", "A1", "S3", DAY1, D("2.25"), ts(2), 1, 3),
        )
    )
    service_days = stage2_account_service_day.aggregate(events)
    assert service_days.schema.names == ACCOUNT_SERVICE_DAY.column_names
    assert sorted(
        (r["service_name"], r["total_cost_usd"], r["event_count"]) for r in service_days.to_pylist()
    ) == [
        ("ec2", D("-0.499999999999"), 2),
        ("s3", D("2.25"), 1),
    ]
    accounts = pa.table({"account_id": ["A1"], "last_ingestion_ts": [ts(3)]})
    published = stage3_account_day.publish(
        service_days, accounts, lag_hours=24, run_id="r1", published_at=ts(5)
    ).to_pylist()
    assert published == [
        {
            "account_id": "A1",
            "usage_date": DAY1,
            "total_cost_usd": D("1.750000000001"),
            "effective_cost_usd": D("1.750000000001"),
            "event_count": 3,
            "service_count": 2,
            "data_complete": True,
            "published_at": ts(5),
            "run_id": "r1",
        }
    ]
