"""DuckDB and Spark publish the same content to the cent: a generated bill of 50,000 events, with
re-deliveries and credits, goes through both engines into two warehouses, then a correction batch
and a backfill; every published table and every publish-log content hash must be identical."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from costlake.lake.fingerprint import content_columns
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.ingest import ingest_files
from costlake.pipeline.run import run_pipeline
from costlake.settings import Settings
from costlake.synthetic.generate import generate
from costlake.tables import (
    ACCOUNT_SERVICE_DAY,
    DAILY_ACCOUNT,
    DIM_ACCOUNT,
    DIM_SERVICE,
    NORMALIZED,
    TableDef,
)
from helpers import query_rows

pytestmark = pytest.mark.spark
COMPARED = (NORMALIZED, ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, DIM_ACCOUNT, DIM_SERVICE)


def content(wh: Warehouse, tdef: TableDef) -> list[tuple]:
    cols = ", ".join(content_columns(tdef))
    return [tuple(r.values()) for r in query_rows(wh, f"SELECT {cols} FROM {tdef.name} ORDER BY ALL")]


def logged_hashes(wh: Warehouse) -> list[tuple]:
    rows = query_rows(
        wh,
        "SELECT table_name, usage_date, row_count, content_hash, gate_status FROM publish_log "
        "WHERE gate_status <> 'held_back' ORDER BY ALL",
    )
    return [tuple(r.values()) for r in rows]


def test_duckdb_and_spark_publish_identical_content(tmp_path):
    assert shutil.which("java"), "the Spark tests need Java 17+: run `make java`"
    made = generate(tmp_path / "data", events=50_000, days=60, tenants=3, batches=3, seed=17)
    correction = tmp_path / "data" / "correction.csv"
    correction.write_text(
        "event_id,usage_date,account_id,service_name,cost_usd,ingestion_date,usage_type\n"
        "evt-000000007,2025-02-01,moved-account,AmazonS3,123.456789012345,2025-06-01,USE1-Requests-Tier1\n"
    )
    lakes = {}
    for engine in ("duckdb", "spark"):
        settings = Settings(
            warehouse=str(tmp_path / engine),
            engine=engine,
            spark_master="local[2]",
            spark_shuffle_partitions=4,
        )
        wh = Warehouse(settings)
        ingest_files(wh, made.files)
        first = run_pipeline(wh)
        assert [len(t.committed) for t in first.tables] == [60, 60, 60], engine
        ingest_files(wh, [correction])
        run_pipeline(wh)
        assert not run_pipeline(wh, backfill=(dt.date(2025, 1, 1), dt.date(2025, 3, 1))).changed, engine
        lakes[engine] = wh
    duck, spark = lakes["duckdb"], lakes["spark"]
    for tdef in COMPARED:
        assert content(duck, tdef) == content(spark, tdef), tdef.name
    assert logged_hashes(duck) == logged_hashes(spark)
    total = query_rows(duck, "SELECT count(*) AS n, sum(total_cost_usd) AS s FROM daily_account_cost")[0]
    assert total["n"] == 12 * 60 + 1 and total["s"] is not None  # + the moved event's new account-day
    typed = "SELECT event_id, usage_type FROM normalized_billing_events WHERE usage_type IS NOT NULL"
    assert query_rows(duck, typed) == [{"event_id": "evt-000000007", "usage_type": "USE1-Requests-Tier1"}]
