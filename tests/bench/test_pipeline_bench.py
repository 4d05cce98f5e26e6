"""`make bench` without the shared baselines (as on a user's machine): costlake generates the input,
runs the full load, the one-day correction and the re-delivery with and without detection (and on its
Spark engine), and each verbatim re-delivery leaves the published totals as they were;
bench/invocations.py, which `make bench` runs, reports the median of each figure over the invocations."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

INVOCATIONS = Path(__file__).resolve().parents[2] / "bench" / "invocations.py"


@pytest.mark.spark
def test_the_bench_runs_every_phase_and_checks_its_totals(tmp_path: Path) -> None:
    args = [
        "1",
        "--events",
        "3000",
        "--repeat",
        "1",
        "--spark-engine",
        "--accounts-factor",
        "2",
        "--out",
        str(tmp_path / "out"),
        "--baseline-dir",
        str(tmp_path / "none"),
    ]
    shown = subprocess.run(
        [sys.executable, str(INVOCATIONS), *args], capture_output=True, text=True, timeout=600
    )
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-3000:]
    assert "baseline: not available" in shown.stdout and "one-day correction (2024-02-11)" in shown.stdout
    summary = json.loads(next(ln for ln in shown.stdout.splitlines() if ln.startswith("BENCH "))[6:])
    assert list(summary["phases"]) == ["full", "correction", "backfill", "next_day"] and summary["ok"]
    # `costlake generate`'s 12 accounts, each shared out among 2 (bench/accounts.py)
    assert (summary["accounts"], summary["accounts_factor"]) == (24, 2)
    assert "accounts: 24 (each generated account's events shared out among 2)" in shown.stdout
    checks = summary["checks"]
    redone = ("full", "correction", "backfill")
    totals = {c["costlake_total"] for phase in redone for c in checks[phase].values()}
    assert len(totals) == 1  # re-delivering days verbatim changes nothing, with detection or without
    daily = checks["next_day"]
    assert daily["off"]["match"] and daily["on"]["costlake_rows"] > checks["full"]["on"]["costlake_rows"]
    inputs = tmp_path / "out" / "invocation_1" / "input"
    correction = (inputs / "CORRECTION.csv").read_text().splitlines()
    assert len(correction) > 1 and all(",2024-02-11," in line for line in correction[1:])
    next_day = (inputs / "NEXT_DAY.csv").read_text().splitlines()
    assert len(next_day) > 1 and all(line.startswith("next-") for line in next_day[1:])
    assert "medians of 1 invocations (3,000 events, 24 accounts;" in shown.stdout
    # What detection did in each phase: every series on the full load, those of the accounts billed on
    # the new day on the next day, fewer on the correction (none here: this small input's correction
    # moves no sum).
    phases = summary["phases"]
    assert phases["full"]["detection_series"] >= phases["next_day"]["detection_series"] > 0
    assert phases["correction"]["detection_series"] < phases["next_day"]["detection_series"]
    assert all(0 <= phases[p]["detection_exact"] <= phases[p]["detection_series"] for p in phases)
    assert "detection re-analysed, series (in exact decimals): " in shown.stdout
    # `--spark-engine`: costlake's Spark engine ingests and runs the phases the PySpark peer has (not
    # the next day) on its own warehouse, and publishes what the DuckDB engine publishes.
    assert summary["spark_engine"]
    for phase in redone:
        assert phases[phase]["spark_engine_s"] > 0 and checks[phase]["spark_engine"]["match"]
        assert f"{phase}, costlake --engine spark: MATCH" in shown.stdout
    assert "spark_engine_s" not in phases["next_day"]
    assert "costlake --engine spark (local[2], ingest + run): full " in shown.stdout

    # Three invocations' output, the full load 1x, 3x and 2x as slow: the median is the 2x one's.
    logs = []
    for n, factor in enumerate((1, 3, 2)):
        slower = json.loads(json.dumps(summary))
        slower["phases"]["full"]["costlake_s"] *= factor
        logs.append(tmp_path / f"invocation_{n}.log")
        logs[-1].write_text("... output ...\nBENCH " + json.dumps(slower) + "\n")
    done = subprocess.run(
        [sys.executable, str(INVOCATIONS), "--from-logs", *map(str, logs)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    medians = json.loads(next(ln for ln in done.stdout.splitlines() if ln.startswith("BENCH_MEDIANS "))[14:])
    assert medians["invocations"] == 3
    assert medians["full"]["costlake_s"] == round(2 * summary["phases"]["full"]["costlake_s"], 3)
    assert medians["correction"]["costlake_s"] == round(summary["phases"]["correction"]["costlake_s"], 3)
