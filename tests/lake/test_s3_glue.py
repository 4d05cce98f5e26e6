"""The whole pipeline on an S3 warehouse with the Glue catalog, against a real HTTP endpoint:
moto's server on 127.0.0.1, started here. Credentials come from the environment, as from the
standard AWS chain; nothing is configured in code."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import boto3
import pytest

from anomaly_rows import replace_and_check
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.audit import verify
from costlake.pipeline.run import run_pipeline
from costlake.settings import Settings
from costlake.tables import COST_ANOMALIES, DAILY_ACCOUNT, TABLES
from helpers import SEED, cli, ingest_and_run, query_rows
from moto_s3 import moto_endpoint, s3_with_bucket

BUCKET = "costlake-test"


def glue_settings(warehouse: str, endpoint: str, local: Path, region: str = "us-east-1") -> Settings:
    """An S3 warehouse with the Glue catalog, both at moto's endpoint. Glue has one `costlake`
    database per region: two warehouses in one test module need two regions."""
    return Settings(
        warehouse=warehouse,
        catalog="glue",
        s3_endpoint=endpoint,
        glue_endpoint=endpoint,
        aws_region=region,
        local_dir=str(local),
    )


@pytest.fixture(scope="module")
def endpoint():
    with moto_endpoint() as url:
        yield url


@pytest.fixture
def aws_env(monkeypatch, endpoint):
    s3_with_bucket(monkeypatch, endpoint, BUCKET)
    return endpoint


def test_ingest_run_backfill_query_on_s3_with_glue(aws_env, tmp_path, write_csv, monkeypatch):
    endpoint = aws_env
    prefix = f"s3://{BUCKET}/{tmp_path.name}"
    settings = glue_settings(prefix, endpoint, tmp_path / "local")
    wh = Warehouse(settings)
    ingest_and_run(wh, SEED)
    fix = write_csv("fix.csv", [["e1", "2025-01-02", "A2", "EC2", "11.000000000001", "2025-01-05"]])
    ingest_and_run(wh, fix)
    report = run_pipeline(wh, backfill=(dt.date(2025, 1, 1), dt.date(2025, 1, 3)))
    assert not report.changed

    totals = {
        (r["account_id"], str(r["usage_date"])): r["total_cost_usd"]
        for r in query_rows(wh, "SELECT account_id, usage_date, total_cost_usd FROM daily_account_cost")
    }
    assert totals == {
        ("A1", "2025-01-01"): Decimal(5),
        ("A2", "2025-01-01"): Decimal(7),
        ("A1", "2025-01-02"): Decimal(8),
        ("A2", "2025-01-02"): Decimal("11.000000000001"),
    }
    assert verify(wh).mismatches == []

    # Every table is registered in Glue, with the metadata location Athena follows, and its data
    # files live in the bucket.
    glue = boto3.client("glue", endpoint_url=endpoint, region_name="us-east-1")
    for name in TABLES:
        table = glue.get_table(DatabaseName="costlake", Name=name)["Table"]
        assert table["Parameters"]["table_type"].upper() == "ICEBERG"
        assert table["Parameters"]["metadata_location"].startswith(prefix)
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{tmp_path.name}/")["Contents"]]
    daily = [k for k in keys if "/daily_account_cost/data/" in k and k.endswith(".parquet")]
    assert daily, keys[:20]
    assert wh.table(DAILY_ACCOUNT).location().startswith(prefix)

    # A second process with the same settings (from the environment) sees the same lake.
    for key, value in {
        "COSTLAKE_CATALOG": "glue",
        "COSTLAKE_S3_ENDPOINT": endpoint,
        "COSTLAKE_GLUE_ENDPOINT": endpoint,
        "COSTLAKE_AWS_REGION": "us-east-1",
        "COSTLAKE_LOCAL_DIR": str(tmp_path / "other-local"),
    }.items():
        monkeypatch.setenv(key, value)
    done = cli(prefix, "query", "SELECT sum(total_cost_usd) AS s FROM daily_account_cost", "--format", "csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["s", "31.000000000001"]


def test_small_table_rows_replace_their_days_on_s3(aws_env, tmp_path):
    """The anomalies' commit on S3: the rows' files are uploaded under the table, one per day."""
    prefix = f"s3://{BUCKET}/{tmp_path.name}"
    wh = Warehouse(glue_settings(prefix, aws_env, tmp_path / "local", region="ap-south-1"))
    replace_and_check(wh)
    assert all(f.startswith(f"{prefix}/") for f in wh.data_files(COST_ANOMALIES, fetch=False))
    # The staged copies went to the cache; a commit clears the staging folders left before it.
    (staged,) = wh.staging_root(COST_ANOMALIES).glob("rows=*")
    assert not any(staged.iterdir())


def test_an_s3_warehouse_needs_a_catalog_it_can_reach(tmp_path):
    from costlake.errors import ConfigError

    with pytest.raises(ConfigError, match="needs catalog = 'glue' or a catalog_uri"):
        Warehouse(Settings(warehouse="s3://bucket/prefix", local_dir=str(tmp_path)))


def test_maintain_on_s3_expires_removes_unused_objects_and_trims_the_cache(aws_env, tmp_path, write_csv):
    """On an S3 warehouse with Glue, maintain keeps the retained run readable and verifiable, deletes
    the bucket's objects that only expired snapshots used, and the local cache copies of them."""
    from costlake.lake.manifest import manifests
    from costlake.ops.maintain import Policy, maintain

    warehouse = f"s3://{BUCKET}/{tmp_path.name}-maintain"
    settings = glue_settings(warehouse, aws_env, tmp_path / "local", region="eu-west-1")
    wh = Warehouse(settings)
    ingest_and_run(wh, SEED)
    ingest_and_run(wh, write_csv("fix.csv", [["e1", "2025-01-02", "A2", "EC2", "11.5", "2025-01-05"]]))
    totals = query_rows(
        wh, "SELECT account_id, usage_date, total_cost_usd FROM daily_account_cost ORDER BY 1, 2"
    )
    bucket = boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")
    listed = bucket.list_objects_v2(Bucket=BUCKET, Prefix=f"{tmp_path.name}-maintain/")
    objects = {o["Key"] for o in listed.get("Contents", [])}
    cached = set((tmp_path / "local" / "cache").rglob("*.parquet"))
    report = maintain(wh, Policy(retain_days=0, retain_runs=1, orphan_hours=0))
    assert report.expired_runs and report.orphans.files > 0 and report.cache.files > 0
    listed = bucket.list_objects_v2(Bucket=BUCKET, Prefix=f"{tmp_path.name}-maintain/")
    left = {o["Key"] for o in listed.get("Contents", [])}
    removed = {p.split("/", 3)[3] for p in report.orphans.paths}
    assert removed and not removed & left
    # Besides objects of expired snapshots, only metadata versions that maintenance's own commits
    # wrote and its trim of the metadata log left unreferenced (S3 dates objects to the second).
    assert all(key.endswith(".metadata.json") for key in removed - objects), removed - objects
    assert len(set((tmp_path / "local" / "cache").rglob("*.parquet"))) == len(cached) - report.cache.files
    again = Warehouse(settings)
    assert [m.run_id for m in manifests(again)] == report.retained
    ran = query_rows(
        again, "SELECT account_id, usage_date, total_cost_usd FROM daily_account_cost ORDER BY 1, 2"
    )
    assert ran == totals
    assert not verify(again).mismatches
