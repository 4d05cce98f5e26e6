"""Helpers the tests import: read the lake with SQL, run the CLI as a real process."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pty
import shutil
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from costlake.catalog.views import run_query
from costlake.lake.warehouse import Warehouse
from costlake.ops.publish import PublishReport, publish_and_detect
from costlake.pipeline.ingest import IngestResult, ingest_files
from costlake.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
SEED = FIXTURES / "seed" / "raw_billing_events.csv"
NATIVE_HEADER = ("event_id", "usage_date", "account_id", "service_name", "cost_usd", "ingestion_date")
NATIVE_TS_HEADER = (*NATIVE_HEADER[:-1], "ingestion_ts")  # with a delivery time instead of a date
CUR_HEADER = (  # the columns a CUR 2.0 file cannot do without
    "bill_payer_account_id",
    "bill_billing_period_start_date",
    "line_item_usage_account_id",
    "line_item_line_item_type",
    "line_item_usage_start_date",
    "line_item_product_code",
    "line_item_unblended_cost",
    "line_item_currency_code",
)

ENGINES = ("duckdb", "spark")
# Spark in the tests: two local cores and two shuffle partitions, as on CI. The data is tiny, so
# what costs is per query: Janino compiling generated code (which also fills a C1 JVM's code
# cache) and adaptive re-planning. Interpreted evaluation, no AQE and a C1-only JVM make a run
# about twice as fast; the parity test switches code generation and AQE back on.
SPARK_TEST_CONF = {
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m "
    "-XX:+UseSerialGC",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.adaptive.enabled": "false",
}
SPARK_TEST_OPTIONS: dict[str, Any] = {
    "spark_master": "local[2]",
    "spark_shuffle_partitions": 2,
    "spark_driver_memory": "2g",
    "spark_conf": SPARK_TEST_CONF,
}
# What production runs with (the settings' defaults), for the parity test.
SPARK_PRODUCTION_SQL = {
    "spark.sql.codegen.wholeStage": "true",
    "spark.sql.codegen.factoryMode": "FALLBACK",
    "spark.sql.adaptive.enabled": "true",
}


def engine_options(engine: str) -> dict[str, Any]:
    """Settings keywords that select `engine` for a test."""
    return {"engine": engine, **(SPARK_TEST_OPTIONS if engine == "spark" else {})}


def ingest_and_run(wh: Warehouse, *paths: Path) -> tuple[list[IngestResult], PublishReport]:
    results = ingest_files(wh, list(paths))
    return results, publish_and_detect(wh)


def query_rows(wh: Warehouse, sql: str) -> list[dict[str, object]]:
    wh.refresh()
    return run_query(wh, sql).to_pylist()


def empty_warehouse(path: Path) -> Path:
    """A warehouse with its tables and nothing in them: the commands that only read or publish refuse
    a folder without one (only `ingest`, `tenants load` and `demo` create it)."""
    Warehouse(Settings(warehouse=str(path))).ensure_tables()
    return path


def cli(warehouse: Path | str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a separate process, the way a user does."""
    return subprocess.run(
        [sys.executable, "-m", "costlake", "--warehouse", str(warehouse), *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def cli_on_terminal(warehouse: Path | str, *args: str, cwd: Path | None = None) -> tuple[int, bytes]:
    """Run the CLI with a terminal (a pseudo-terminal) as its stdout and stderr, the way it draws for a
    user at a shell: (exit code, the bytes it wrote, escape sequences included)."""
    main, child = pty.openpty()
    env = {**os.environ, "COLUMNS": "200", "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "costlake", "--warehouse", str(warehouse), *args],
        stdin=subprocess.DEVNULL, stdout=child, stderr=child, cwd=cwd, env=env,
    )  # fmt: skip
    os.close(child)
    chunks = []
    while True:  # read as it writes (a pseudo-terminal buffers little) until its side is closed
        try:
            chunk = os.read(main, 65536)
        except OSError:  # EIO: every process holding the terminal has ended
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    return proc.wait(timeout=300), b"".join(chunks)


def changed_row(header: tuple[str, ...], good: list[str], **change: str) -> list[str]:
    """A copy of the `good` row (in `header` order) with some columns changed."""
    row = dict(zip(header, good, strict=True)) | change
    return [row[c] for c in header]


@contextlib.contextmanager
def unpacked_warehouse(fixture: Path, root: Path) -> Iterator[Path]:
    """A fixture warehouse (`fixture`/warehouse.tar.gz) unpacked at `root`, the folder it was written
    in (Iceberg metadata holds absolute paths), one user at a time (a lock file beside it); removed
    after use."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with (root.parent.parent / f"{root.parent.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        shutil.rmtree(root, ignore_errors=True)
        with tarfile.open(fixture / "warehouse.tar.gz") as archive:
            archive.extractall(root.parent, filter="data")
        try:
            yield root
        finally:
            shutil.rmtree(root, ignore_errors=True)


def json_rows(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The rows a `costlake query --format json` process printed (it must have succeeded)."""
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout)
    return rows
