"""A Spark job that fails ends the command with costlake's one line, not the JVM's stacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def costlake(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costlake", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, COSTLAKE_ANOMALIES_ON_RUN="false", **env),
        timeout=300,
    )


@pytest.mark.spark
def test_a_spark_run_out_of_memory_ends_with_one_line_that_names_the_setting(tmp_path: Path) -> None:
    """At 10M events a 2g driver once ran out of execution memory in the gate (1 run in 4): the command
    ended with Spark's stack traces and `internal error (Py4JJavaError: An error occurred while calling
    o250.getResult.)`, exit 3. A memory fraction too small for any sort makes the same failure here."""
    lake = str(tmp_path / "wh")
    made = costlake("generate", str(tmp_path / "in"), "--events", "400", "--batches", "1")
    assert made.returncode == 0, made.stderr
    took = costlake("--warehouse", lake, "ingest", *map(str, sorted((tmp_path / "in").glob("billing_*.csv"))))
    assert took.returncode == 0, took.stderr

    starved = json.dumps({"spark.memory.fraction": "0.0001"})
    run = costlake(
        "--warehouse", lake, "--engine", "spark", "run",
        COSTLAKE_SPARK_CONF=starved, COSTLAKE_SPARK_MASTER="local[2]",
    )  # fmt: skip

    assert run.returncode == 1, run.stderr[-3000:]
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert lines[-1].startswith(
        "error: the Spark engine ran out of memory (UNABLE_TO_ACQUIRE_MEMORY) with a 2g driver: give it more"
        " with spark_driver_memory"
    ), lines[-1]
    # Nothing of the JVM but its own start-up notice (the incubator module Spark adds).
    assert all(line.startswith("WARNING: ") for line in lines[:-1]), lines
    published = costlake(
        "--warehouse", lake, "query", "SELECT count(*) AS n FROM daily_account_cost", "--format", "csv"
    )
    assert published.returncode == 0, published.stderr
    assert published.stdout.split() == ["n", "0"]  # nothing was committed
