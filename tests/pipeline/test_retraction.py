"""Retractions in the native format (issue 12, point 7): a row with `op = delete` removes its event.

A delete row takes part in the total order (ingestion_ts, delivery, row) like any version of the event:
when it wins, the event leaves whatever day its last version was on; a later upsert revives it, an older
one cannot. The scenarios run on every engine through `run`; `backfill`, `validate` and `audit verify`
must agree with what was published. The CLI test at the end runs the same commands as processes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from costlake.pipeline.audit import verify
from costlake.pipeline.ingest import ingest_files
from costlake.pipeline.run import run_pipeline
from costlake.pipeline.validate import validate
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED
from helpers import cli, query_rows

D = Decimal
HEADER = ("event_id", "usage_date", "account_id", "service_name", "cost_usd", "ingestion_ts", "op")
STAGES = (NORMALIZED, ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT)
DAY1, DAY2 = dt.date(2025, 1, 1), dt.date(2025, 1, 2)
PUBLISHED = [
    ["e1", "2025-01-01", "A1", "EC2", "10.25", "2025-01-02T00:00:00Z", ""],
    ["e2", "2025-01-01", "A1", "S3", "5", "2025-01-02T00:00:00Z", "upsert"],
    ["e3", "2025-01-02", "A1", "EC2", "7", "2025-01-03T00:00:00Z", ""],
]


def delete(event: str, at: str) -> list[str]:
    """A delete row: the event id and its ingestion time, nothing else."""
    return [event, "", "", "", "", at, "delete"]


def account_days(wh) -> dict[tuple[str, str], tuple[Decimal, int]]:
    rows = query_rows(
        wh,
        "SELECT account_id, CAST(usage_date AS VARCHAR) AS d, total_cost_usd, event_count "
        "FROM daily_account_cost",
    )
    return {(r["account_id"], r["d"]): (r["total_cost_usd"], r["event_count"]) for r in rows}


def events(wh) -> dict[str, tuple[str, Decimal]]:
    rows = query_rows(
        wh, "SELECT event_id, CAST(usage_date AS VARCHAR) AS d, billed_cost FROM normalized_billing_events"
    )
    return {r["event_id"]: (r["d"], r["billed_cost"]) for r in rows}


@pytest.fixture
def deliver(wh, write_csv):
    """deliver(name, rows) ingests a native file with `op` and runs; returns the run's report."""

    def go(name: str, rows: list[list[str]]):  # type: ignore[no-untyped-def]
        ingest_files(wh, [write_csv(name, rows, HEADER)])
        return run_pipeline(wh)

    return go


def assert_consistent(wh) -> None:
    """What was published is what a replay and the gate over the published tables say, and a backfill of
    the whole window changes nothing."""
    audit = verify(wh)
    assert audit.mismatches == [] and audit.partitions
    assert [f for f in validate(wh)[1] if f.severity == "error"] == []
    again = run_pipeline(wh, backfill=(dt.date(2024, 12, 30), dt.date(2025, 1, 10)))
    assert not again.changed


@pytest.mark.all_engines
def test_a_delete_removes_the_event_from_its_day_and_touches_no_other_day(wh, deliver):
    deliver("a.csv", PUBLISHED)
    wh.refresh()
    day2_files = {t.name: wh.data_files(t, dates=[DAY2]) for t in STAGES}

    report = deliver("b.csv", [delete("e1", "2025-01-05T00:00:00Z")])

    # The delete row has no day of its own: the planner takes the day of the version it displaces.
    assert report.reasons == {DAY1: {"retracted events"}}
    assert account_days(wh) == {("A1", "2025-01-01"): (D(5), 1), ("A1", "2025-01-02"): (D(7), 1)}
    assert set(events(wh)) == {"e2", "e3"}
    wh.refresh()
    assert {t.name: wh.data_files(t, dates=[DAY2]) for t in STAGES} == day2_files
    assert_consistent(wh)


# DuckDB only: on Spark the same ordering (an older version stays deleted, a newer one is published)
# is covered by the unknown-event test below, which walks both cases with one delivery fewer.
def test_a_later_upsert_revives_a_deleted_event_and_an_older_one_cannot(wh, deliver):
    deliver("a.csv", PUBLISHED)
    deliver("b.csv", [delete("e1", "2025-01-05T00:00:00Z")])

    # Older than the delete (arriving after it): the tombstone still wins, the event stays deleted.
    # (Another account, so that its ingestion time makes no published day complete.)
    older = deliver("c.csv", [["e1", "2025-01-02", "A9", "EC2", "99", "2025-01-04T23:59:59Z", ""]])
    assert older.reasons == {DAY2: {"new rows"}} and not any(t.committed for t in older.tables)
    assert "e1" not in events(wh)

    # Later than the delete: the event is back, on the day of the new version.
    deliver("d.csv", [["e1", "2025-01-02", "A1", "EC2", "3.5", "2025-01-06T00:00:00Z", "upsert"]])
    assert events(wh)["e1"] == ("2025-01-02", D("3.5"))
    assert account_days(wh) == {("A1", "2025-01-01"): (D(5), 1), ("A1", "2025-01-02"): (D("10.5"), 2)}
    assert_consistent(wh)


@pytest.mark.all_engines
def test_a_delete_of_an_unknown_event_changes_nothing_and_holds_against_older_versions(
    wh, deliver, write_csv
):
    deliver("a.csv", PUBLISHED)
    before = account_days(wh)

    [result] = ingest_files(wh, [write_csv("b.csv", [delete("e9", "2025-01-05T00:00:00Z")], HEADER)])
    assert (result.accepted, result.quarantined, result.unknown_deletes) == (1, 0, 1)
    report = run_pipeline(wh)
    assert report.reasons == {} and not any(t.committed for t in report.tables)
    assert account_days(wh) == before

    # The delete is kept: a version of e9 older than it, delivered later, is never published...
    deliver("c.csv", [["e9", "2025-01-01", "A1", "EC2", "1", "2025-01-04T00:00:00Z", ""]])
    assert account_days(wh) == before
    # ... a newer one is.
    deliver("d.csv", [["e9", "2025-01-01", "A1", "EC2", "1", "2025-01-05T00:00:01Z", ""]])
    assert account_days(wh)[("A1", "2025-01-01")] == (D("16.25"), 3)
    assert_consistent(wh)


@pytest.mark.all_engines
def test_a_delete_in_the_same_file_as_its_upsert_follows_the_total_order(wh, deliver):
    deliver(
        "a.csv",
        [
            *PUBLISHED,
            # Same time as the upsert, a later row: the delete wins.
            delete("e2", "2025-01-02T00:00:00Z"),
            # An upsert of e4 after its delete, in time: the upsert wins though its row comes first.
            ["e4", "2025-01-02", "A2", "RDS", "4", "2025-01-03T00:00:01Z", ""],
            delete("e4", "2025-01-03T00:00:00Z"),
        ],
    )
    assert events(wh) == {
        "e1": ("2025-01-01", D("10.25")),
        "e3": ("2025-01-02", D(7)),
        "e4": ("2025-01-02", D(4)),
    }
    assert account_days(wh) == {
        ("A1", "2025-01-01"): (D("10.25"), 1),
        ("A1", "2025-01-02"): (D(7), 1),
        ("A2", "2025-01-02"): (D(4), 1),
    }
    assert_consistent(wh)


@pytest.mark.all_engines
def test_retracting_the_only_event_of_a_day_empties_the_day(wh, deliver):
    deliver("a.csv", PUBLISHED)
    deliver("b.csv", [delete("e3", "2025-01-05T00:00:00Z")])
    assert account_days(wh) == {("A1", "2025-01-01"): (D("15.25"), 2)}
    wh.refresh()
    assert all(wh.data_files(t, dates=[DAY2]) == [] for t in STAGES)
    assert_consistent(wh)


def test_retraction_through_the_cli_run_backfill_and_audit(tmp_path, write_csv):
    lake = tmp_path / "wh"
    assert cli(lake, "ingest", str(write_csv("a.csv", PUBLISHED, HEADER))).returncode == 0
    assert cli(lake, "run").returncode == 0
    retraction = write_csv(
        "b.csv", [delete("e1", "2025-01-05T00:00:00Z"), delete("e9", "2025-01-05")], HEADER
    )
    ingested = cli(lake, "ingest", str(retraction))
    assert ingested.returncode == 0, ingested.stderr
    assert "2 accepted, 0 quarantined" in ingested.stdout
    assert "1 delete row(s) of events the lake has no version of" in ingested.stdout
    ran = cli(lake, "run")
    assert ran.returncode == 0 and "retracted events: 2025-01-01" in ran.stdout, ran.stdout + ran.stderr
    total = "SELECT CAST(sum(total_cost_usd) AS VARCHAR) AS total FROM daily_account_cost"
    assert cli(lake, "query", total, "--format", "csv").stdout.splitlines() == ["total", "12.000000000000"]
    backfill = cli(lake, "backfill", "--from", "2025-01-01", "--to", "2025-01-02")
    assert backfill.returncode == 0, backfill.stderr
    assert cli(lake, "query", total, "--format", "csv").stdout.splitlines() == ["total", "12.000000000000"]
    audit = cli(lake, "audit", "verify")
    assert audit.returncode == 0 and "0 mismatch(es)" in audit.stdout, audit.stdout
