"""`spark-submit jobs/run_pipeline.py` works as in the original system, on the Spark engine."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from costlake.lake.warehouse import Warehouse
from costlake.pipeline.ingest import ingest_files
from costlake.settings import Settings
from helpers import SEED, ingest_and_run, query_rows

pytestmark = pytest.mark.spark
JOBS = Path(__file__).resolve().parents[2] / "jobs"
TOTALS = "SELECT account_id, usage_date, total_cost_usd, event_count FROM daily_account_cost ORDER BY ALL"


def test_spark_submit_run_pipeline(tmp_path):
    assert shutil.which("java"), "the Spark tests need Java 17+: run `make java`"
    spark_submit = Path(sys.executable).parent / "spark-submit"
    assert spark_submit.exists(), "pyspark's spark-submit is missing from the environment"
    reference = Warehouse(Settings(warehouse=str(tmp_path / "reference")))
    ingest_and_run(reference, SEED)

    wh = Warehouse(Settings(warehouse=str(tmp_path / "spark")))
    ingest_files(wh, [SEED])
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable)
    command = [str(spark_submit), "--master", "local[1]", str(JOBS / "run_pipeline.py")]
    done = subprocess.run(
        [*command, "--warehouse", str(wh.root)], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "daily_account_cost" in done.stdout
    assert query_rows(wh, TOTALS) == query_rows(reference, TOTALS)
