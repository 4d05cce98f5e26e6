"""Repair by re-reading (issue 12, point 8): `ingest --reparse FILE` reads a file already ingested again
with the current parser, as a new batch that replaces the file's earlier reading.

The first test repairs a warehouse that the parser which dropped UTC offsets really wrote (the fixture
`warehouse_offsets`, built by that code): it published 100.00 where the right total is 17.00. The
others prove the mechanics with today's parser: a new batch id, the old reading's rows no longer
winners, the re-read keeping the delivery's place in the total order, audits of every run passing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from costlake.pipeline.audit import verify
from costlake.pipeline.ingest import ingest_files
from costlake.pipeline.run import run_pipeline
from helpers import FIXTURES, cli, json_rows, query_rows, unpacked_warehouse

FIXTURE = FIXTURES / "warehouse_offsets"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
ROOT = Path(EXPECTED["root"])
DAILY = (
    "SELECT account_id, CAST(usage_date AS VARCHAR) AS usage_date, CAST(total_cost_usd AS VARCHAR) "
    "AS total_cost_usd FROM daily_account_cost ORDER BY usage_date, account_id"
)
HEADER = ("event_id", "usage_date", "account_id", "service_name", "cost_usd", "ingestion_ts")


@pytest.fixture
def prefix_warehouse() -> Iterator[Path]:
    """The warehouse the offset-dropping parser wrote, unpacked at its own path."""
    with unpacked_warehouse(FIXTURE, ROOT) as root:
        yield root


def test_reparse_corrects_a_lake_built_by_the_parser_that_dropped_offsets(prefix_warehouse, tmp_path):
    wh = prefix_warehouse
    a_csv, b_csv = FIXTURE / "bills" / "a.csv", FIXTURE / "bills" / "b.csv"
    # What the old parser published, and an audit that cannot see it (the replay reads the same raw).
    assert json_rows(cli(wh, "query", DAILY, "--format", "json")) == EXPECTED["published"]
    audit = cli(wh, "audit", "verify")
    assert audit.returncode == 0 and "0 mismatch(es)" in audit.stdout, audit.stdout
    # Ingesting the same bytes again is still a no-op.
    again = cli(wh, "ingest", str(a_csv))
    assert again.returncode == 0 and "already ingested" in again.stdout, again.stdout

    # Both files were read wrong (b.csv's -05:00 too): re-read every file ingested before the fix.
    reparsed = cli(wh, "ingest", "--reparse", str(a_csv), str(b_csv))
    assert reparsed.returncode == 0, reparsed.stderr
    assert f"replaces batch {EXPECTED['batches'][0]}" in reparsed.stdout
    assert f"replaces batch {EXPECTED['batches'][1]}" in reparsed.stdout
    ran = cli(wh, "run")
    assert ran.returncode == 0 and "reparsed batch: 2025-03-10" in ran.stdout, ran.stdout + ran.stderr

    assert json_rows(cli(wh, "query", DAILY, "--format", "json")) == EXPECTED["corrected"]
    # History stays: the old run still reads 100.00, and every run's replay matches its log.
    as_of = cli(wh, "query", DAILY, "--as-of", EXPECTED["run"], "--format", "json")
    assert json_rows(as_of) == EXPECTED["published"]
    audit = cli(wh, "audit", "verify")
    assert audit.returncode == 0 and "of 2 run(s): 0 mismatch(es)" in audit.stdout, audit.stdout
    # Raw is append-only: both readings of each file are there, the old ones with their wrong times.
    raw = (
        "SELECT batch_seq, CAST(ingestion_ts AS VARCHAR) AS ts, delivery_seq FROM raw_billing_events "
        "ORDER BY batch_seq"
    )
    rows = json_rows(cli(wh, "query", raw, "--format", "json"))
    assert [(r["batch_seq"], r["ts"], r["delivery_seq"]) for r in rows] == [
        (1, "2025-03-12 01:00:00", None),  # the old parser's readings, written before delivery_seq
        (2, "2025-03-11 16:00:00", None),
        (3, "2025-03-11 20:00:00", 1),  # a.csv re-read: 01:00+05:00 is 20:00 UTC; delivery 1
        (4, "2025-03-11 21:00:00", 2),  # b.csv re-read: 16:00-05:00 is 21:00 UTC; delivery 2
    ]


def test_a_reparse_is_a_new_batch_whose_rows_replace_the_old_reading(wh, write_csv):
    a = write_csv(
        "a.csv",
        [
            ["E", "2025-03-10", "A1", "EC2", "100.00", "2025-03-12T01:00:00+05:00"],
            ["F", "2025-03-10", "A1", "S3", "5.00", "2025-03-11T10:00:00Z"],
        ],
        HEADER,
    )
    b = write_csv("b.csv", [["E", "2025-03-10", "A1", "EC2", "17.00", "2025-03-11 16:00:00-05:00"]], HEADER)
    [first, _] = ingest_files(wh, [a, b])
    run_pipeline(wh)
    published = query_rows(wh, DAILY)
    assert published == [
        {"account_id": "A1", "usage_date": "2025-03-10", "total_cost_usd": "22.000000000000"}
    ]

    [again] = ingest_files(wh, [a], reparse=True)
    assert again.batch_id.startswith("b000003-") and again.replaces == first.batch_id
    report = run_pipeline(wh)
    assert report.reasons and all("reparsed batch" in r for r in report.reasons.values())
    winners = query_rows(wh, "SELECT event_id, batch_id FROM normalized_billing_events ORDER BY event_id")
    assert winners == [
        {"event_id": "E", "batch_id": next(r for r in _batches(wh) if r.startswith("b000002-"))},
        {"event_id": "F", "batch_id": again.batch_id},  # no longer the old reading's row
    ]
    assert query_rows(wh, DAILY) == published  # today's parser read a.csv right the first time
    # A plain ingest is still a no-op; another re-read replaces the latest reading.
    assert ingest_files(wh, [a])[0].skipped
    [third] = ingest_files(wh, [a], reparse=True)
    assert third.replaces == again.batch_id
    run_pipeline(wh)
    assert query_rows(wh, DAILY) == published
    assert verify(wh).mismatches == []
    replaced = query_rows(wh, "SELECT batch_seq, replaces FROM ingest_batches ORDER BY batch_seq")
    assert [r["replaces"] for r in replaced] == ["", "", first.batch_id, again.batch_id]


def _batches(wh) -> list[str]:  # type: ignore[no-untyped-def]
    return [r["batch_id"] for r in query_rows(wh, "SELECT batch_id FROM ingest_batches ORDER BY batch_seq")]


@pytest.mark.all_engines
def test_a_reread_keeps_its_delivery_s_place_in_the_total_order(wh, write_csv):
    # No ingestion_ts column: each version is stamped with its batch's load time, so b.csv (loaded
    # later) wins. Re-read, a.csv keeps its first load time and its place: b.csv still wins.
    header = HEADER[:-1]
    a = write_csv(
        "a.csv", [["E", "2025-03-10", "A1", "EC2", "1.00"], ["F", "2025-03-10", "A1", "S3", "2"]], header
    )
    b = write_csv("b.csv", [["E", "2025-03-10", "A1", "EC2", "3.00"]], header)
    ingest_files(wh, [a, b])
    run_pipeline(wh)
    ingest_files(wh, [a], reparse=True)
    run_pipeline(wh)
    costs = query_rows(wh, "SELECT event_id, billed_cost FROM normalized_billing_events ORDER BY event_id")
    assert [(r["event_id"], str(r["billed_cost"])) for r in costs] == [
        ("E", "3.000000000000"),
        ("F", "2.000000000000"),
    ]
    times = query_rows(wh, "SELECT DISTINCT batch_seq, ingestion_ts FROM raw_billing_events ORDER BY 1")
    assert times[0]["ingestion_ts"] == times[2]["ingestion_ts"] < times[1]["ingestion_ts"]
    assert verify(wh).mismatches == []


def test_reparse_refuses_a_file_never_ingested(tmp_path, write_csv):
    never = write_csv("never.csv", [["E", "2025-03-10", "A1", "EC2", "1", "2025-03-11T00:00:00Z"]], HEADER)
    refused = cli(tmp_path / "wh", "ingest", "--reparse", str(never))
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert "not ingested yet, so nothing to re-read; ingest it without --reparse" in refused.stderr
    assert "--reparse" in cli(tmp_path / "wh", "ingest", "--help").stdout
