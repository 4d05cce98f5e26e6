"""A Spark job that fails or is interrupted ends the command with costlake's one line, not JVM stacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from costlake.engines.spark_memory import default_driver_memory


def costlake(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costlake", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, COSTLAKE_ANOMALIES_ON_RUN="false", **env),
        timeout=300,
    )


def ingested(tmp_path: Path) -> str:
    """A warehouse with 400 generated events ingested (not run)."""
    lake = str(tmp_path / "wh")
    made = costlake("generate", str(tmp_path / "in"), "--events", "400", "--batches", "1")
    assert made.returncode == 0, made.stderr
    took = costlake("--warehouse", lake, "ingest", *map(str, sorted((tmp_path / "in").glob("billing_*.csv"))))
    assert took.returncode == 0, took.stderr
    return lake


def one_line(stderr: str) -> str:
    """The command's line; besides it, nothing of the JVM but its own start-up notice (the incubator
    module Spark adds)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert all(line.startswith("WARNING: ") for line in lines[:-1]), lines
    return lines[-1]


def nothing_published(lake: str) -> bool:
    published = costlake(
        "--warehouse", lake, "query", "SELECT count(*) AS n FROM daily_account_cost", "--format", "csv"
    )
    assert published.returncode == 0, published.stderr
    return published.stdout.split() == ["n", "0"]


@pytest.mark.spark
def test_a_spark_run_out_of_memory_ends_with_one_line_that_names_the_setting(tmp_path: Path) -> None:
    """At 10M events a 2g driver once ran out of execution memory in the gate (1 run in 5): the command
    ended with Spark's stack traces and `internal error (Py4JJavaError: An error occurred while calling
    o250.getResult.)`, exit 3. A memory fraction too small for any sort makes the same failure here."""
    lake = ingested(tmp_path)
    # Spark's own test knob sizes the memory manager as on a 450 MB heap whatever the real one, so
    # the failure does not depend on the machine's default heap.
    starved = json.dumps({"spark.memory.fraction": "0.0001", "spark.testing.memory": str(450 << 20)})
    run = costlake(
        "--warehouse", lake, "--engine", "spark", "run",
        COSTLAKE_SPARK_CONF=starved, COSTLAKE_SPARK_MASTER="local[2]",
    )  # fmt: skip

    assert run.returncode == 1, run.stderr[-3000:]
    # The driver got the default heap, sized from this machine (spark_memory.py): the line reads it
    # back from the running context.
    assert one_line(run.stderr) == (
        "error: the Spark engine ran out of memory (UNABLE_TO_ACQUIRE_MEMORY) with a"
        f" {default_driver_memory()} driver: give it more with spark_driver_memory"
        " (COSTLAKE_SPARK_DRIVER_MEMORY), or run it on a cluster"
    )
    assert nothing_published(lake)


@pytest.mark.spark
def test_a_task_that_fails_otherwise_ends_with_the_jvms_own_first_line(tmp_path: Path) -> None:
    """A raw file damaged outside costlake: Spark's executor logged the reason inside a stack trace,
    and the command's line said only `Py4JJavaError: An error occurred while calling
    o178.localCheckpoint.`"""
    lake = ingested(tmp_path)
    (raw,) = (Path(lake) / "costlake" / "raw_billing_events" / "data").rglob("*.parquet")
    damaged = bytearray(raw.read_bytes())
    damaged[64:2000] = bytes(len(damaged[64:2000]))
    raw.write_bytes(bytes(damaged))

    run = costlake("--warehouse", lake, "--engine", "spark", "run", COSTLAKE_SPARK_MASTER="local[1]")

    assert run.returncode == 3, run.stderr[-3000:]
    line = one_line(run.stderr)
    assert line.startswith(("error: the Spark engine failed: ", "error: the Spark engine's job failed: ")), (
        line
    )
    assert "[FAILED_READ_FILE" in line, line
    assert raw.name in line and line.endswith("(--debug: the JVM's stack)"), line
    assert nothing_published(lake)


@pytest.mark.spark
def test_an_interrupt_during_a_spark_run_is_costlakes_not_the_spark_contexts(tmp_path: Path) -> None:
    """A SparkContext installs its own SIGINT handler (cancel every job, raise KeyboardInterrupt
    wherever the main thread is). With it, a Ctrl-C inside a Py4J call printed py4j's tracebacks and
    the command could end with exit 0, and a Ctrl-C with a SIGTERM beside it ended as SIGTERM's 143.
    costlake keeps its own handler: the first signal decides, as on the DuckDB engine."""
    lake = ingested(tmp_path)
    run = costlake(
        "--warehouse", lake, "--engine", "spark", "run",
        COSTLAKE_SIGNAL_AT="computed:INT+TERM", COSTLAKE_SPARK_MASTER="local[1]",
    )  # fmt: skip
    assert run.returncode == 130, run.stderr[-3000:]
    assert one_line(run.stderr) == "interrupted"
    assert nothing_published(lake)
    again = costlake("--warehouse", lake, "--engine", "spark", "run", COSTLAKE_SPARK_MASTER="local[1]")
    assert again.returncode == 0, again.stderr[-3000:]  # the lock went with the interrupted command
    assert not nothing_published(lake)
