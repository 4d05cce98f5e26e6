"""The original system's one-job-per-stage flow: stage 1, 2 and 3 jobs in turn give the same lake as
one run, and readers see the new days only once the stage 3 job has finished the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from costlake.lake.warehouse import Warehouse
from costlake.pipeline.audit import verify
from costlake.pipeline.ingest import ingest_files
from costlake.settings import Settings
from helpers import SEED, ingest_and_run, query_rows

JOBS = Path(__file__).resolve().parents[2] / "jobs"
TOTALS = "SELECT account_id, usage_date, total_cost_usd FROM daily_account_cost ORDER BY ALL"


def job(name: str, warehouse: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(JOBS / name), "--warehouse", str(warehouse), "--engine", "duckdb", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def test_stage_jobs_in_turn_equal_one_run(tmp_path, write_csv):
    reference = Warehouse(Settings(warehouse=str(tmp_path / "reference")))
    correction = write_csv("fix.csv", [["e1", "2025-01-02", "A2", "EC2", "11", "2025-01-05"]])
    ingest_and_run(reference, SEED, correction)

    wh = Warehouse(Settings(warehouse=str(tmp_path / "jobs")))
    ingest_files(wh, [SEED, correction])
    first = job("stage1_normalize.py", wh.root)
    assert first.returncode == 0, first.stderr
    assert query_rows(wh, TOTALS) == []  # nothing is visible until stage 3 finishes the run
    assert job("stage2_aggregate_daily_cost.py", wh.root).returncode == 0
    assert query_rows(wh, TOTALS) == []
    third = job("stage3_publish_daily_account_cost.py", wh.root)
    assert third.returncode == 0, third.stderr
    assert query_rows(wh, TOTALS) == query_rows(reference, TOTALS)
    assert verify(wh).mismatches == []
    whole = job("run_pipeline.py", wh.root, "--from", "2025-01-01", "--to", "2025-01-02")
    assert whole.returncode == 0 and "committed" in whole.stdout
    bad = job("run_pipeline.py", wh.root, "--from", "2025-01-01")
    assert bad.returncode == 2 and "--from and --to go together" in bad.stderr
