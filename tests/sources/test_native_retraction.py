"""The native `op` column (issue 12, point 7): which rows are retractions, what they must carry, and
what is quarantined. How a retraction changes what is published: tests/pipeline/test_retraction.py."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from costlake.sources.base import BatchContext
from costlake.sources.native import NativeSource

HEADER = ("event_id", "usage_date", "account_id", "service_name", "cost_usd", "ingestion_ts", "op")


def parse(
    write_csv, rows: list[list[str]], header: tuple[str, ...] = HEADER
) -> tuple[list[dict], list[dict]]:  # type: ignore[no-untyped-def]
    """(accepted, rejected) rows of a native file, as dicts."""
    path: Path = write_csv("bill.csv", rows, header)
    con = duckdb.connect()
    ctx = BatchContext("b000007-x", 7, str(path), dt.datetime(2025, 2, 1), "USD")
    NativeSource().parse(con, path, ctx)
    accepted = con.sql("SELECT * FROM accepted ORDER BY source_row").to_arrow_table().to_pylist()
    rejected = con.sql("SELECT * FROM rejected ORDER BY source_row").to_arrow_table().to_pylist()
    return accepted, rejected


def test_op_is_upsert_by_default_and_read_case_insensitively(write_csv):
    accepted, rejected = parse(
        write_csv,
        [
            ["e1", "2025-01-01", "A1", "EC2", "1", "2025-01-02T00:00:00Z", ""],
            ["e2", "2025-01-01", "A1", "EC2", "2", "2025-01-02T00:00:00Z", " Upsert "],
            ["e3", "", "", "", "", "2025-01-02T00:00:00Z", "DELETE"],
        ],
    )
    assert rejected == []
    assert [(r["event_id"], r["op"], r["delivery_seq"]) for r in accepted] == [
        ("e1", "upsert", 7),
        ("e2", "upsert", 7),
        ("e3", "delete", 7),
    ]


def test_a_file_without_op_is_all_upserts(write_csv):
    accepted, _ = parse(write_csv, [["e1", "2025-01-01", "A1", "EC2", "1", "2025-01-02"]], HEADER[:-1])
    assert accepted[0]["op"] == "upsert"


def test_a_delete_row_keeps_its_event_and_time_and_its_other_fields_are_not_read(write_csv):
    # Values that would quarantine an upsert: a delete row does not read them, and keeps none of them.
    accepted, rejected = parse(
        write_csv,
        [["e1", "9999-99-99", "=HYPERLINK(x)", "", "abc", "2025-01-03T01:00:00+05:00", "delete", "BoxUsage"]],
        (*HEADER, "usage_type"),
    )
    assert rejected == []
    [row] = accepted
    assert row["ingestion_ts"] == dt.datetime(2025, 1, 2, 20, 0)  # in UTC, the total order's time
    kept = {k: v for k, v in row.items() if v is not None}
    assert set(kept) == {
        "event_id",
        "ingestion_ts",
        "op",
        "delivery_seq",
        "batch_id",
        "batch_seq",
        "source_format",
        "source_file",
        "source_row",
        "load_date",
    }


@pytest.mark.parametrize(
    ("header", "row", "reason"),
    [
        (
            HEADER,
            ["e1", "", "", "", "", "", "delete"],
            "missing ingestion_ts (a delete row needs its ordering time)",
        ),
        (
            HEADER[:-2] + ("op",),
            ["e1", "", "", "", "", "delete"],
            "a delete row needs an ingestion_ts or ingestion_date column",
        ),
        (
            HEADER,
            ["", "", "", "", "", "2025-01-02", "delete"],
            "missing event_id",
        ),
        (
            HEADER,
            ["e1", "", "", "", "", "yesterday", "delete"],
            "ingestion_ts 'yesterday' is not an ISO 8601 timestamp (YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])",
        ),
        (
            HEADER,
            ["e1", "2025-01-01", "A1", "EC2", "1", "2025-01-02", "remove"],
            "op 'remove' is not one of upsert, delete",
        ),
    ],
)
def test_a_bad_op_or_a_delete_without_its_keys_is_quarantined(write_csv, header, row, reason):
    accepted, rejected = parse(write_csv, [row], header)
    assert accepted == []
    assert [r["reason"] for r in rejected] == [reason]
