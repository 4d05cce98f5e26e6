"""A warehouse written by v0.1.0 opens with today's code, migrates, and keeps every promise."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from costlake.lake.warehouse import Warehouse
from costlake.pipeline.run import run_pipeline
from costlake.settings import Settings
from costlake.tables import INGEST_BATCHES, TABLES
from helpers import FIXTURES, NATIVE_TS_HEADER, cli, json_rows, unpacked_warehouse

FIXTURE = FIXTURES / "warehouse_v0.1.0"
EXPECTED = json.loads((FIXTURE / "expected.json").read_text())
# Iceberg metadata holds absolute paths: the warehouse is unpacked where v0.1.0 wrote it.
ROOT = Path(EXPECTED["root"])

DAILY = (
    "SELECT account_id, CAST(usage_date AS VARCHAR) AS usage_date, "
    "CAST(total_cost_usd AS VARCHAR) AS total_cost_usd, "
    "CAST(effective_cost_usd AS VARCHAR) AS effective_cost_usd, event_count, service_count "
    "FROM daily_account_cost ORDER BY usage_date, account_id"
)


@pytest.fixture
def v010_warehouse() -> Iterator[Path]:
    """The v0.1.0 warehouse, unpacked at its own path."""
    with unpacked_warehouse(FIXTURE, ROOT) as root:
        yield root


def test_v010_warehouse_opens_with_its_totals_audit_and_as_of(v010_warehouse, write_csv):
    wh = v010_warehouse
    for run_id, rows in EXPECTED["runs"].items():
        assert json_rows(cli(wh, "query", DAILY, "--as-of", run_id, "--format", "json")) == rows, run_id
    assert json_rows(cli(wh, "query", DAILY, "--format", "json")) == EXPECTED["runs"][EXPECTED["latest_run"]]
    batches = "SELECT batch_id, batch_seq, sha256 FROM ingest_batches ORDER BY batch_seq"
    assert json_rows(cli(wh, "query", batches, "--format", "json")) == EXPECTED["batches"]
    owners = "SELECT account_id, tenant_id FROM dim_account ORDER BY account_id"
    assert json_rows(cli(wh, "query", owners, "--format", "json")) == EXPECTED["tenants"]
    anomalies = (
        "SELECT account_id, service_name, CAST(usage_date AS VARCHAR) AS usage_date, kind, "
        "CAST(impact_usd AS VARCHAR) AS impact_usd FROM cost_anomalies "
        "ORDER BY usage_date, account_id, service_name"
    )
    assert json_rows(cli(wh, "query", anomalies, "--format", "json")) == EXPECTED["anomalies"]

    audit = cli(wh, "audit", "verify")
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "of 3 run(s): 0 mismatch(es)" in audit.stdout

    idle = cli(wh, "run")
    assert idle.returncode == 0, idle.stderr
    assert "nothing new to publish" in idle.stdout
    # Migrated, not rewritten: v0.1.0's tenants-file names carry no source yet (issue 14).
    sources = "SELECT DISTINCT account_name_source FROM dim_account"
    assert json_rows(cli(wh, "query", sources, "--format", "json")) == [{"account_name_source": None}]
    # Today's stages rebuild every day v0.1.0 published to the same content (its raw rows have no `op`
    # or `delivery_seq`: upserts, each batch its own delivery): a backfill of the month commits nothing
    # (it plans the 21 days raw has rows on, 2025-03-01..21).
    month = (dt.date(2025, 3, 1), dt.date(2025, 3, 31))
    backfill = run_pipeline(Warehouse(Settings(warehouse=str(wh))), backfill=month)
    assert sorted(backfill.reasons) == [dt.date(2025, 3, d) for d in range(1, 22)] and not backfill.changed

    # The migrated lake takes new deliveries: one more event on a published day.
    extra = write_csv(
        "late.csv",
        [["evt-late-1", "2025-03-10", "125820107534", "AmazonS3", "0.010000000001", "2025-03-26"]],
    )
    assert cli(wh, "ingest", str(extra)).returncode == 0
    ran = cli(wh, "run")
    assert ran.returncode == 0, ran.stderr
    after = {
        (r["account_id"], r["usage_date"]): r for r in json_rows(cli(wh, "query", DAILY, "--format", "json"))
    }
    before = {(r["account_id"], r["usage_date"]): r for r in EXPECTED["runs"][EXPECTED["latest_run"]]}
    changed = {key for key in after if after[key] != before.get(key)}
    assert changed == {("125820107534", "2025-03-10")}
    key = ("125820107534", "2025-03-10")
    assert Decimal(after[key]["total_cost_usd"]) == Decimal(before[key]["total_cost_usd"]) + Decimal(
        "0.010000000001"
    )
    audit = cli(wh, "audit", "verify")
    assert audit.returncode == 0 and "of 4 run(s): 0 mismatch(es)" in audit.stdout, audit.stdout

    after_retraction = _a_delete_retracts_an_event_published_by_v010(wh, write_csv, after)
    _usage_types_arrive_next_to_events_published_by_v010(wh, write_csv, after_retraction)
    _billing_names_never_replace_the_tenants_names_of_v010(wh, write_csv)

    # Opened, the warehouse's tables are at today's definitions (lake/migrate.py).
    opened = Warehouse(Settings(warehouse=str(wh)))
    opened.ensure_tables()
    for tdef in TABLES.values():
        assert [f.name for f in opened.table(tdef).schema().fields] == tdef.column_names, tdef.name


def _a_delete_retracts_an_event_published_by_v010(wh: Path, write_csv, before: dict) -> dict:  # type: ignore[no-untyped-def]
    """Issue 12: the raw rows v0.1.0 wrote have no `op` column and read as upserts; a delete row (a
    native file with `op`) retracts one of their events from the day it is on, and nothing else moves."""
    event = (
        "SELECT account_id, CAST(usage_date AS VARCHAR) AS usage_date, CAST(billed_cost AS VARCHAR) AS cost "
    )
    event += "FROM normalized_billing_events WHERE event_id = 'evt-000000022'"
    [published] = json_rows(cli(wh, "query", event, "--format", "json"))
    old_ops = "SELECT DISTINCT op FROM raw_billing_events WHERE batch_seq <= 3"
    assert json_rows(cli(wh, "query", old_ops, "--format", "json")) == [{"op": None}]

    header = ("event_id", "usage_date", "account_id", "service_name", "cost_usd", "ingestion_ts", "op")
    retraction = write_csv(
        "retraction.csv", [["evt-000000022", "", "", "", "", "2025-03-27T00:00:00Z", "delete"]], header
    )
    ingested = cli(wh, "ingest", str(retraction))
    assert ingested.returncode == 0 and "1 accepted, 0 quarantined" in ingested.stdout, ingested.stdout
    ran = cli(wh, "run")
    assert ran.returncode == 0, ran.stderr
    assert f"retracted events: {published['usage_date']}" in ran.stdout, ran.stdout

    after = {
        (r["account_id"], r["usage_date"]): r for r in json_rows(cli(wh, "query", DAILY, "--format", "json"))
    }
    key = (published["account_id"], published["usage_date"])
    assert {k for k in after if after[k] != before.get(k)} == {key}
    assert Decimal(after[key]["total_cost_usd"]) == Decimal(before[key]["total_cost_usd"]) - Decimal(
        published["cost"]
    )
    assert after[key]["event_count"] == before[key]["event_count"] - 1
    assert json_rows(cli(wh, "query", event, "--format", "json")) == []
    audit = cli(wh, "audit", "verify")
    assert audit.returncode == 0 and "of 5 run(s): 0 mismatch(es)" in audit.stdout, audit.stdout
    checked = cli(wh, "validate")
    assert checked.returncode == 0 and "0 error(s)" in checked.stdout, checked.stdout
    return after


def _usage_types_arrive_next_to_events_published_by_v010(wh: Path, write_csv, before: dict) -> None:  # type: ignore[no-untyped-def]
    """`usage_type`, appended to raw and stage 1 after v0.1.0: the rows v0.1.0 wrote read it as NULL and
    every partition it published keeps its content hash (the audits above replay them); an event with a
    usage type lands on a day of theirs, and only that day changes."""
    typed = "SELECT count(*) AS n, count(usage_type) AS typed FROM {}"
    for table in ("raw_billing_events", "normalized_billing_events"):
        [old] = json_rows(cli(wh, "query", typed.format(table), "--format", "json"))
        assert old["n"] >= 300 and old["typed"] == 0, table

    header = (*NATIVE_TS_HEADER, "usage_type")
    row = ["evt-typed-1", "2025-03-12", "125820107534", "AmazonEC2", "0.5", "2025-03-28T00:00:00Z"]
    bill = write_csv("typed.csv", [[*row, "USE1-BoxUsage:m5.large"]], header)
    assert cli(wh, "ingest", str(bill)).returncode == 0
    ran = cli(wh, "run")
    assert ran.returncode == 0, ran.stderr

    after = {
        (r["account_id"], r["usage_date"]): r for r in json_rows(cli(wh, "query", DAILY, "--format", "json"))
    }
    key = ("125820107534", "2025-03-12")
    assert {k for k in after if after[k] != before.get(k)} == {key}
    assert Decimal(after[key]["total_cost_usd"]) == Decimal(before[key]["total_cost_usd"]) + Decimal("0.5")
    day = (
        "SELECT event_id, usage_type FROM normalized_billing_events "
        "WHERE usage_date = DATE '2025-03-12' AND usage_type IS NOT NULL"
    )
    assert json_rows(cli(wh, "query", day, "--format", "json")) == [
        {"event_id": "evt-typed-1", "usage_type": "USE1-BoxUsage:m5.large"}
    ]
    audit = cli(wh, "audit", "verify")
    assert audit.returncode == 0 and "of 6 run(s): 0 mismatch(es)" in audit.stdout, audit.stdout


def _billing_names_never_replace_the_tenants_names_of_v010(wh: Path, write_csv) -> None:  # type: ignore[no-untyped-def]
    """Issue 14: dim_account's `account_name_source` and `account_name_date`, dim_service's
    `product_name` and raw's `account_name` / `product_name` are appended; the names v0.1.0 loaded from
    its tenants file (source NULL: the only source then) win over a billing file's name, and an account
    no tenants file names takes the bill's. The runs above folded batches into dim_account, which recorded
    those names as the tenants file's."""
    names = "SELECT account_id, account_name, account_name_source FROM dim_account ORDER BY account_id"
    before = json_rows(cli(wh, "query", names, "--format", "json"))
    assert {r["account_name"] for r in before} == {
        "payments-staging",
        "web-prod",
        "data-dev",
        "checkout-prod",
    }
    assert {r["account_name_source"] for r in before} == {"tenants"}
    header = (*NATIVE_TS_HEADER, "account_name")
    when = "2025-03-29T00:00:00Z"
    rows = [
        ["evt-named-1", "2025-03-13", "125820107534", "AmazonEC2", "0.25", when, "billing-name"],
        ["evt-named-2", "2025-03-13", "900000000001", "AmazonEC2", "0.75", when, "from-the-bill"],
    ]
    assert cli(wh, "ingest", str(write_csv("named.csv", rows, header))).returncode == 0
    ran = cli(wh, "run")
    assert ran.returncode == 0, ran.stderr
    after = {r["account_id"]: r for r in json_rows(cli(wh, "query", names, "--format", "json"))}
    assert after["125820107534"] == {
        "account_id": "125820107534", "account_name": "payments-staging", "account_name_source": "tenants"
    }  # fmt: skip
    assert after["900000000001"]["account_name"] == "from-the-bill"
    assert after["900000000001"]["account_name_source"] == "native"
    audit = cli(wh, "audit", "verify")
    assert audit.returncode == 0 and "of 7 run(s): 0 mismatch(es)" in audit.stdout, audit.stdout


def test_v010_records_are_tagged_on_first_write_and_survive_an_outside_expiry(v010_warehouse):
    """v0.1.0 kept its batch registry in raw snapshots and did not tag its commits. The first writing
    command copies the registry into `ingest_batches` and tags the run manifests and what each run
    published; then an expiry by another engine (PyIceberg's own) leaves every run readable and
    verifiable and every batch known."""
    wh = v010_warehouse
    assert cli(wh, "run").returncode == 0
    lake = Warehouse(Settings(warehouse=str(wh)))
    registry = lake.read_rows(INGEST_BATCHES).select(["batch_id", "batch_seq", "sha256"]).to_pylist()
    assert sorted(registry, key=lambda r: r["batch_seq"]) == EXPECTED["batches"]
    for tdef in TABLES.values():
        table = lake.catalog.load_table(tdef.identifier)
        table.maintenance.expire_snapshots().older_than(dt.datetime.now(dt.UTC)).commit()
    for run_id, rows in EXPECTED["runs"].items():
        assert json_rows(cli(wh, "query", DAILY, "--as-of", run_id, "--format", "json")) == rows, run_id
    batches = "SELECT batch_id, batch_seq, sha256 FROM ingest_batches ORDER BY batch_seq"
    assert json_rows(cli(wh, "query", batches, "--format", "json")) == EXPECTED["batches"]
    audit = cli(wh, "audit", "verify")
    assert audit.returncode == 0 and "of 3 run(s): 0 mismatch(es)" in audit.stdout, audit.stdout
    assert "nothing new to publish" in cli(wh, "run").stdout
