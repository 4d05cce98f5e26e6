"""DuckDB and Spark publish byte-identical books: 200,000 generated events (re-deliveries, credits,
inconsistent service spellings), ingested once into each of two warehouses and run once on each
engine. Spark runs as in production here: code generation and adaptive execution on.

FOCUS and CUR files are left out: their rows take the load time as ingestion time, so two
ingestions differ by design. `test_engines.py` pins their rolled-up event ids on both engines."""

from __future__ import annotations

import pyarrow as pa
import pytest

from costlake.generate import generate
from costlake.lake.fingerprint import RUN_COLUMNS
from costlake.lake.schemas import PUBLISH_LOG, TABLES, TableDef
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.ingest import ingest_files
from costlake.pipeline.run import run_pipeline
from costlake.query import run_query
from costlake.settings import Settings
from helpers import SPARK_PRODUCTION_SQL, SPARK_TEST_CONF, engine_options

pytestmark = [pytest.mark.spark, pytest.mark.slow]
EVENTS = 200_000
# Columns that say which run published a row, not what it holds.
LOG_RUN_COLUMNS = RUN_COLUMNS | {"snapshot_id"}


def content(wh: Warehouse, tdef: TableDef, skip: frozenset[str] | set[str] = RUN_COLUMNS) -> pa.Table:
    cols = ", ".join(c for c in tdef.column_names if c not in skip)
    return run_query(wh, f"SELECT {cols} FROM {tdef.name} ORDER BY ALL")


def test_duckdb_and_spark_publish_the_same_tables_and_hashes(tmp_path, spark_session):
    made = generate(tmp_path / "data", events=EVENTS, days=45, batches=3, seed=29)
    spark_conf = {**SPARK_TEST_CONF, **SPARK_PRODUCTION_SQL}
    lakes = {
        "duckdb": Warehouse(Settings(warehouse=str(tmp_path / "duckdb"), **engine_options("duckdb"))),
        "spark": Warehouse(
            Settings(
                warehouse=str(tmp_path / "spark"), **{**engine_options("spark"), "spark_conf": spark_conf}
            )
        ),
    }
    for engine, wh in lakes.items():
        assert wh.settings.engine == engine
        ingested = ingest_files(wh, made.files)
        assert not any(r.quarantined for r in ingested), engine
        report = run_pipeline(wh)
        assert report.changed and not report.held_back, engine
    duck, spark = lakes["duckdb"], lakes["spark"]
    for wh in lakes.values():
        wh.refresh()

    rows = {}
    for tdef in TABLES.values():
        if tdef is PUBLISH_LOG:
            continue
        expected, got = content(duck, tdef), content(spark, tdef)
        assert got.schema == expected.schema and got.equals(expected), tdef.name  # exact decimals
        rows[tdef.name] = expected.num_rows
    assert rows["normalized_billing_events"] == EVENTS  # re-deliveries collapsed to their winners
    assert all(
        rows[t] for t in ("account_service_day_cost", "daily_account_cost", "dim_region", "dim_service")
    )

    # The publish log: the same partitions, row counts, content hashes and gate results.
    log_duck, log_spark = (
        content(duck, PUBLISH_LOG, LOG_RUN_COLUMNS),
        content(spark, PUBLISH_LOG, LOG_RUN_COLUMNS),
    )
    assert log_spark.equals(log_duck)
    per_table = run_query(
        duck, "SELECT table_name, count(*) AS days FROM publish_log GROUP BY ALL"
    ).to_pylist()
    assert len(per_table) == 3 and {r["days"] for r in per_table} == {log_duck.num_rows // 3}
    assert log_duck.num_rows == 3 * 45
