"""The three stages end to end on every engine: exact results, winners by total order, incremental days."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from costlake.pipeline.run import run_pipeline
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED, TABLES
from helpers import SEED, ingest_and_run, query_rows

pytestmark = pytest.mark.all_engines
D = Decimal


def service_days(wh):
    rows = query_rows(
        wh,
        "SELECT account_id, service_name, CAST(usage_date AS VARCHAR) AS d, total_cost_usd, event_count "
        "FROM account_service_day_cost",
    )
    return {(r["account_id"], r["service_name"], r["d"]): r["total_cost_usd"] for r in rows}


def account_days(wh):
    rows = query_rows(
        wh, "SELECT account_id, CAST(usage_date AS VARCHAR) AS d, total_cost_usd FROM daily_account_cost"
    )
    return {(r["account_id"], r["d"]): r["total_cost_usd"] for r in rows}


def test_seed_file_gives_the_documented_results(wh):
    ingest_and_run(wh, SEED)
    assert service_days(wh) == {
        ("A1", "ec2", "2025-01-01"): D("12.00"),
        ("A1", "s3", "2025-01-01"): D("5.00"),
        ("A2", "ec2", "2025-01-01"): D("7.00"),
        ("A1", "ec2", "2025-01-02"): D("8.00"),
    }
    assert account_days(wh) == {
        ("A1", "2025-01-01"): D("17.00"),
        ("A2", "2025-01-01"): D("7.00"),
        ("A1", "2025-01-02"): D("8.00"),
    }
    stage3 = query_rows(wh, "SELECT * FROM daily_account_cost ORDER BY usage_date, account_id")
    assert [r["service_count"] for r in stage3] == [2, 1, 1]
    assert [r["event_count"] for r in stage3] == [2, 1, 1]
    assert {r["run_id"] for r in stage3} and all(r["published_at"] for r in stage3)


def test_equal_ingestion_date_resolves_by_batch_then_row(wh, write_csv):
    # Same event, same ingestion_date: within one file the later row wins...
    same_file = write_csv(
        "one.csv",
        [
            ["e1", "2025-01-01", "A1", "EC2", "1.00", "2025-01-02"],
            ["e1", "2025-01-01", "A1", "EC2", "2.00", "2025-01-02"],
        ],
    )
    ingest_and_run(wh, same_file)
    assert account_days(wh) == {("A1", "2025-01-01"): D("2.00")}
    # ...and across files the later batch wins, even with the same ingestion_date.
    later = write_csv("two.csv", [["e1", "2025-01-01", "A1", "EC2", "3.00", "2025-01-02"]])
    ingest_and_run(wh, later)
    assert account_days(wh) == {("A1", "2025-01-01"): D("3.00")}
    # An older re-delivery (earlier ingestion_date) never beats the current winner.
    stale = write_csv("three.csv", [["e1", "2025-01-01", "A1", "EC2", "99.00", "2025-01-01"]])
    ingest_and_run(wh, stale)
    assert account_days(wh) == {("A1", "2025-01-01"): D("3.00")}


def test_twelve_decimal_values_sum_exactly(wh, write_csv):
    values = ["0.100000000001", "0.200000000002", "0.300000000003", "-0.000000000007", "1234567.891234567891"]
    rows = [[f"e{i}", "2025-01-01", "A1", "EC2", v, "2025-01-02"] for i, v in enumerate(values)]
    ingest_and_run(wh, write_csv("precise.csv", rows))
    exact = sum((D(v) for v in values), D(0))
    assert D(sum(float(v) for v in values)) != exact  # float would be wrong here
    assert account_days(wh) == {("A1", "2025-01-01"): exact}
    assert service_days(wh) == {("A1", "ec2", "2025-01-01"): exact}
    assert exact == D("1234568.491234567890")


def test_correction_moving_an_event_rebuilds_both_days_and_accounts(wh, write_csv):
    ingest_and_run(
        wh,
        write_csv(
            "first.csv",
            [
                ["e1", "2025-01-01", "A1", "EC2", "10", "2025-01-02"],
                ["e2", "2025-01-01", "A1", "S3", "5", "2025-01-02"],
                ["e3", "2025-01-03", "A3", "EC2", "1", "2025-01-04"],
            ],
        ),
    )
    # e1 moves to another day and account; nothing else is re-delivered.
    _, report = ingest_and_run(
        wh, write_csv("fix.csv", [["e1", "2025-01-02", "A2", "EC2", "11", "2025-01-05"]])
    )
    assert account_days(wh) == {
        ("A1", "2025-01-01"): D("5"),
        ("A2", "2025-01-02"): D("11"),
        ("A3", "2025-01-03"): D("1"),
    }
    touched = {t.table: [d.isoformat() for d in t.committed] for t in report.tables}
    assert touched["normalized_billing_events"] == ["2025-01-01", "2025-01-02"]
    assert touched["daily_account_cost"] == ["2025-01-01", "2025-01-02"]
    assert query_rows(wh, "SELECT count(*) AS n FROM normalized_billing_events WHERE event_id = 'e1'") == [
        {"n": 1}
    ]


def test_untouched_partitions_keep_their_files(wh, write_csv):
    ingest_and_run(
        wh,
        write_csv(
            "a.csv",
            [
                ["e1", "2025-01-01", "A1", "EC2", "1", "2025-01-02"],
                ["e2", "2025-01-02", "A1", "EC2", "2", "2025-01-03"],
            ],
        ),
    )
    day_one = [dt.date(2025, 1, 1)]
    before = {
        t.name: wh.data_files(t, dates=day_one) for t in (NORMALIZED, ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT)
    }
    ingest_and_run(wh, write_csv("b.csv", [["e2", "2025-01-02", "A1", "EC2", "3", "2025-01-04"]]))
    wh.refresh()
    after = {
        t.name: wh.data_files(t, dates=day_one) for t in (NORMALIZED, ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT)
    }
    assert after == before and all(before.values())
    assert account_days(wh) == {("A1", "2025-01-01"): D("1"), ("A1", "2025-01-02"): D("3")}


def test_run_with_nothing_new_commits_nothing(wh):
    ingest_and_run(wh, SEED)
    counts = {name: len(wh.table(t).snapshots()) for name, t in TABLES.items()}
    wh.refresh()
    report = run_pipeline(wh)
    assert not report.changed
    wh.refresh()
    assert {name: len(wh.table(t).snapshots()) for name, t in TABLES.items()} == counts


def test_service_names_fold_to_one_key_with_a_display_name(wh, write_csv):
    rows = [
        ["e1", "2025-01-01", "A1", "AmazonEC2", "1", "2025-01-02"],
        ["e2", "2025-01-01", "A1", " AMAZONEC2 ", "2", "2025-01-02"],
        ["e3", "2025-01-01", "A1", "amazonec2", "3", "2025-01-02"],
    ]
    ingest_and_run(wh, write_csv("names.csv", rows))
    assert service_days(wh) == {("A1", "amazonec2", "2025-01-01"): D("6")}
    assert query_rows(wh, "SELECT service_name, display_name FROM dim_service") == [
        {"service_name": "amazonec2", "display_name": "AmazonEC2"}
    ]


def test_data_complete_follows_the_lag(make_wh, write_csv):
    rows = [
        ["e1", "2025-01-01", "A1", "EC2", "1", "2025-01-03"],  # 48 h after the day began: complete at lag 24
        ["e2", "2025-01-02", "A1", "EC2", "1", "2025-01-03"],  # 24 h: not yet complete
    ]
    path = write_csv("lag.csv", rows)
    for lag, expected in ((24, [True, False]), (0, [True, True])):
        wh = make_wh(f"wh{lag}", completeness_lag_hours=lag)
        ingest_and_run(wh, path)
        flags = query_rows(wh, "SELECT data_complete FROM daily_account_cost ORDER BY usage_date")
        assert [r["data_complete"] for r in flags] == expected


def test_publish_log_records_every_partition(wh):
    _, report = ingest_and_run(wh, SEED)
    log = query_rows(
        wh,
        "SELECT table_name, CAST(usage_date AS VARCHAR) AS d, row_count, input_batch_ids, content_hash "
        "FROM publish_log ORDER BY table_name, d",
    )
    assert [(r["table_name"], r["d"], r["row_count"]) for r in log] == [
        ("account_service_day_cost", "2025-01-01", 3),
        ("account_service_day_cost", "2025-01-02", 1),
        ("daily_account_cost", "2025-01-01", 2),
        ("daily_account_cost", "2025-01-02", 1),
        ("normalized_billing_events", "2025-01-01", 3),
        ("normalized_billing_events", "2025-01-02", 1),
    ]
    assert all(r["input_batch_ids"] == report.batches[0] for r in log)
    assert len({r["content_hash"] for r in log}) == 6
