"""`make bench` without the shared baselines (as on a user's machine): costlake generates the input,
runs the full load, the one-day correction and the re-delivery with and without detection, and each
verbatim re-delivery leaves the published totals as they were."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "pipeline_bench.py"


def test_the_bench_runs_every_phase_and_checks_its_totals(tmp_path: Path) -> None:
    args = [
        "--events",
        "3000",
        "--repeat",
        "1",
        "--out",
        str(tmp_path),
        "--baseline-dir",
        str(tmp_path / "none"),
    ]
    shown = subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600)
    assert shown.returncode == 0, shown.stdout[-3000:] + shown.stderr[-3000:]
    assert "baseline: not available" in shown.stdout and "one-day correction (2024-02-11)" in shown.stdout
    summary = json.loads(next(ln for ln in shown.stdout.splitlines() if ln.startswith("BENCH "))[6:])
    assert list(summary["phases"]) == ["full", "correction", "backfill"] and summary["ok"]
    totals = {c["costlake_total"] for by_variant in summary["checks"].values() for c in by_variant.values()}
    assert len(totals) == 1  # re-delivering days verbatim changes nothing, with detection or without
    correction = (tmp_path / "input" / "CORRECTION.csv").read_text().splitlines()
    assert len(correction) > 1 and all(",2024-02-11," in line for line in correction[1:])
