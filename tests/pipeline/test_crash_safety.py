"""A run killed at every step of a publish leaves the last committed state readable, and the next
run converges to exactly what an uninterrupted run publishes. Each crash is a real process exit."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from costlake.lake.faults import ENV, EXIT_CODE
from costlake.lake.fingerprint import content_columns
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.audit import verify
from costlake.pipeline.ingest import ingest_files
from costlake.pipeline.validate import validate
from costlake.settings import Settings
from costlake.tables import (
    ACCOUNT_SERVICE_DAY,
    DAILY_ACCOUNT,
    DIM_ACCOUNT,
    DIM_SERVICE,
    NORMALIZED,
    PUBLISH_LOG,
    TableDef,
)
from helpers import SEED, ingest_and_run, query_rows

CRASH_POINTS = [
    "computed",
    "files_written",
    *(
        f"{when}_commit:{t.name}"
        for t in (NORMALIZED, ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT)
        for when in ("before", "after")
    ),
    "before_commit:dim_account",
    "before_commit:dim_service",
    "before_commit:dim_region",
    "before_commit:dim_pricing_model",
    "before_commit:publish_log",
    "after_commit:publish_log",
]
CHECKED = (NORMALIZED, ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, DIM_ACCOUNT, DIM_SERVICE)
CORRECTION = [
    ["e1", "2025-01-02", "A2", "EC2", "11", "2025-01-05"],  # moves day and account
    ["e5", "2025-01-04", "A3", "S3", "2.5", "2025-01-05"],
    ["e3", "2025-01-01", "A2", "EC2", "7.25", "2025-01-05"],
]
BEFORE = {
    ("A1", "2025-01-01"): Decimal(17),
    ("A2", "2025-01-01"): Decimal(7),
    ("A1", "2025-01-02"): Decimal(8),
}


def content(wh: Warehouse, tdef: TableDef) -> list[tuple]:
    cols = ", ".join(content_columns(tdef))
    return [tuple(r.values()) for r in query_rows(wh, f"SELECT {cols} FROM {tdef.name} ORDER BY ALL")]


def totals(wh: Warehouse) -> dict[tuple[str, str], Decimal]:
    rows = query_rows(
        wh, "SELECT account_id, CAST(usage_date AS VARCHAR) AS d, total_cost_usd FROM daily_account_cost"
    )
    return {(r["account_id"], r["d"]): r["total_cost_usd"] for r in rows}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[dict[str, list[tuple]], dict, Path]:
    base = tmp_path_factory.mktemp("reference")
    correction = write_correction(base)
    wh = Warehouse(Settings(warehouse=str(base / "wh")))
    ingest_and_run(wh, SEED)
    ingest_and_run(wh, correction)
    return {t.name: content(wh, t) for t in CHECKED}, totals(wh), correction


def write_correction(folder: Path) -> Path:
    path = folder / "correction.csv"
    lines = ["event_id,usage_date,account_id,service_name,cost_usd,ingestion_date"]
    lines += [",".join(row) for row in CORRECTION]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_crash_at_every_step_converges(point, tmp_path, uninterrupted):
    expected, after_totals, correction = uninterrupted
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    ingest_and_run(wh, SEED)
    ingest_files(wh, [correction])

    command = [sys.executable, "-m", "costlake", "--warehouse", str(wh.root), "run"]
    crashed = subprocess.run(command, env=dict(os.environ, **{ENV: point}), capture_output=True, text=True)
    assert crashed.returncode == EXIT_CODE, crashed.stdout + crashed.stderr

    # Readers see one finished run: the previous one, or this one if its manifest made it.
    seen = totals(wh)
    assert seen == (after_totals if point == "after_commit:publish_log" else BEFORE)
    # validate checks what readers see: it checked the tables as the crash left them, one ahead of
    # another, and failed the reconciliation of days no reader sees.
    assert validate(wh)[1] == [], point

    rerun = subprocess.run(command, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    wh.refresh()
    for tdef in CHECKED:
        assert content(wh, tdef) == expected[tdef.name], tdef.name
    assert totals(wh) == after_totals
    assert verify(wh).mismatches == []
    # Files a crashed run wrote are removed or never referenced.
    for tdef in (NORMALIZED, ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT):
        runs = {s.properties.get("run_id") for s in wh.snapshots(tdef)}
        folders = {p.name.removeprefix("run_id=") for p in wh.staging_root(tdef).glob("run_id=*")}
        assert folders <= runs, tdef.name
    assert query_rows(wh, f"SELECT count(DISTINCT run_id) AS n FROM {PUBLISH_LOG.name}")[0]["n"] >= 2
    # Once finished, the interrupted run is settled: another run has nothing to do.
    counts = {t.name: len(wh.table(t).snapshots()) for t in (*CHECKED, PUBLISH_LOG)}
    idle = subprocess.run(command, capture_output=True, text=True)
    assert idle.returncode == 0 and "nothing new to publish" in idle.stdout, idle.stdout
    wh.refresh()
    assert {t.name: len(wh.table(t).snapshots()) for t in (*CHECKED, PUBLISH_LOG)} == counts


def test_a_crashed_first_run_shows_nothing_until_it_is_finished(tmp_path, uninterrupted):
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    ingest_files(wh, [SEED])
    command = [sys.executable, "-m", "costlake", "--warehouse", str(wh.root), "run"]
    crashed = subprocess.run(
        command, env=dict(os.environ, **{ENV: "after_commit:normalized_billing_events"}), capture_output=True
    )
    assert crashed.returncode == EXIT_CODE
    assert query_rows(wh, "SELECT count(*) AS n FROM normalized_billing_events") == [{"n": 0}]
    assert totals(wh) == {}
    assert subprocess.run(command, capture_output=True).returncode == 0
    assert totals(wh) == BEFORE
