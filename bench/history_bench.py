"""What a year of daily deliveries does to the cost of everyday commands, before and after maintenance.

    make bench-history                        # 365 deliveries, checkpoints at 30, 90, 180, 365
    .venv/bin/python bench/history_bench.py --days 120 --checkpoints 30,60,120 --events 300

A fresh warehouse gets one small native CSV per day (`--events` rows of that day, a few of them
re-deliveries of the day before with a corrected cost), each ingested and published with `run`
(anomaly detection on, the default), in process. At each checkpoint, as a user would run them
(separate `costlake` processes, wall clock, median of `--repeat`):
- `run` with nothing new (idle),
- `query` of the month's totals from daily_account_cost,
- `ingest` of the next day's delivery (timed on a copy of the file that is ingested for real next),
- the metadata size: every table's `metadata/` folder, the plan cache and `catalog.db`,
- the snapshot count over all tables;
then `costlake maintain --retain-runs R --retain-days 0` (R = `--retain`, default 30: the runs of the
last 30 deliveries, since the deliveries of this bench all happen today) and the same figures again.
The ratios to the first checkpoint's figures after maintenance show whether the costs stay flat.

Prints a table and one `BENCH {json}` line. Needs only the venv.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"
PY = str(VENV_PY) if VENV_PY.exists() else sys.executable
_CLI = Path(PY).parent / "costlake"
COSTLAKE = [str(_CLI)] if _CLI.exists() else [PY, "-m", "costlake"]
START = dt.date(2025, 1, 1)
HEADER = "event_id,usage_date,account_id,service_name,region,cost_usd,ingestion_date"
ACCOUNTS = [f"{100000000000 + i}" for i in range(20)]
SERVICES = ["AmazonEC2", "AmazonS3", "AmazonRDS", "AWSLambda", "AmazonDynamoDB", "AmazonCloudFront"]
Report = dict[str, dict[str, dict[str, float]]]  # checkpoint day -> before|after -> figure -> value
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def delivery(folder: Path, day: int, events: int, rng: random.Random) -> Path:
    """The native CSV of usage day `day` (from START), invoiced the next day; 2% of its rows re-deliver
    rows of the day before with a corrected cost."""
    usage = START + dt.timedelta(days=day)
    rows = [HEADER]
    for i in range(events):
        account, service, region = rng.choice(ACCOUNTS), rng.choice(SERVICES), rng.choice(REGIONS)
        cost = f"{rng.uniform(0.5, 40):.6f}"
        rows.append(f"d{day}-e{i},{usage},{account},{service},{region},{cost},{usage + dt.timedelta(days=1)}")
    if day:
        before = usage - dt.timedelta(days=1)
        for i in range(0, events, 50):
            cost = f"{rng.uniform(1, 9):.6f}"
            rows.append(f"d{day - 1}-e{i},{before},{ACCOUNTS[i % 20]},AmazonEC2,us-east-1,{cost},{usage}")
    path = folder / f"billing_{usage}.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def timed(args: list[str], env: dict[str, str], repeat: int) -> float:
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        done = subprocess.run(args, env=env, capture_output=True, text=True)
        runs.append(time.perf_counter() - began)
        if done.returncode != 0:
            sys.exit(f"{' '.join(args[1:4])}… failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    return statistics.median(runs)


def metadata_bytes(warehouse: Path) -> int:
    total = sum(p.stat().st_size for p in warehouse.glob("**/metadata/*") if p.is_file())
    total += sum(p.stat().st_size for p in (warehouse / ".plans").glob("**/*") if p.is_file())
    return total + (warehouse / "catalog.db").stat().st_size


def snapshot_count(warehouse: Path) -> int:
    from costlake.lake.warehouse import Warehouse
    from costlake.settings import Settings
    from costlake.tables import TABLES

    wh = Warehouse(Settings(warehouse=str(warehouse)))
    return sum(len(wh.snapshots(tdef)) for tdef in TABLES.values())


def figures(warehouse: Path, env: dict[str, str], next_file: Path, repeat: int) -> dict[str, float]:
    cl = [*COSTLAKE, "--warehouse", str(warehouse)]
    month = (
        "SELECT date_trunc('month', usage_date) AS m, sum(total_cost_usd) FROM daily_account_cost GROUP BY 1"
    )
    idle = timed([*cl, "run"], env, repeat)
    query = timed([*cl, "query", month, "--format", "csv"], env, repeat)
    # The next delivery, ingested into a copy put in the lake's place (Iceberg keeps absolute
    # paths), then the lake put back: it is ingested for real by the next day of the feed.
    ingest = [ingest_once(warehouse, env, next_file) for _ in range(repeat)]
    return {
        "idle_run_s": round(idle, 3),
        "query_s": round(query, 3),
        "ingest_s": round(statistics.median(ingest), 3),
        "metadata_kib": round(metadata_bytes(warehouse) / 1024, 1),
        "snapshots": snapshot_count(warehouse),
    }


def ingest_once(warehouse: Path, env: dict[str, str], path: Path) -> float:
    aside = warehouse.with_name(warehouse.name + ".aside")
    shutil.copytree(warehouse, aside, symlinks=True)
    try:
        return timed([*COSTLAKE, "--warehouse", str(warehouse), "ingest", str(path)], env, 1)
    finally:
        shutil.rmtree(warehouse)
        aside.rename(warehouse)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--checkpoints", default="30,90,180,365")
    ap.add_argument("--events", type=int, default=400, help="rows per daily delivery")
    ap.add_argument("--retain", type=int, default=30, help="runs kept by maintain (--retain-runs)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "history")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    checkpoints = sorted({int(c) for c in args.checkpoints.split(",")})
    if not checkpoints or checkpoints[-1] > args.days or checkpoints[0] < 1:
        ap.error("--checkpoints must be between 1 and --days")

    from costlake.lake.warehouse import Warehouse
    from costlake.ops.publish import publish_and_detect
    from costlake.pipeline.ingest import ingest_files
    from costlake.settings import Settings

    out = args.out.resolve()
    shutil.rmtree(out, ignore_errors=True)
    inputs, warehouse = out / "input", out / "warehouse"
    inputs.mkdir(parents=True)
    env = {**os.environ, "COSTLAKE_DUCKDB_THREADS": os.environ.get("COSTLAKE_DUCKDB_THREADS", "2")}
    rng = random.Random(args.seed)
    files = [delivery(inputs, d, args.events, rng) for d in range(args.days + 1)]
    wh = Warehouse(Settings(warehouse=str(warehouse)))
    report: Report = {}
    began = time.perf_counter()
    for day in range(1, args.days + 1):
        ingest_files(wh, [files[day - 1]])
        publish_and_detect(wh)
        if day in checkpoints:
            before = figures(warehouse, env, files[day], args.repeat)
            maintain = [*COSTLAKE, "--warehouse", str(warehouse), "maintain", "--retain-days", "0"]
            timed([*maintain, "--retain-runs", str(args.retain), "--orphan-hours", "0"], env, 1)
            after = figures(warehouse, env, files[day], args.repeat)
            wh = Warehouse(Settings(warehouse=str(warehouse)))
            report[str(day)] = {"before": before, "after": after}
            print(f"day {day}: fed in {time.perf_counter() - began:.0f} s", file=sys.stderr)
    _print(report, checkpoints, args)
    return 0


def _print(
    report: dict[str, dict[str, dict[str, float]]], checkpoints: list[int], args: argparse.Namespace
) -> None:
    keys = ("idle_run_s", "query_s", "ingest_s", "metadata_kib", "snapshots")
    first = report[str(checkpoints[0])]["after"]
    print(f"{args.days} daily deliveries of {args.events} rows; maintain keeps the last {args.retain} runs")
    print(f"{'day':>5} {'when':<7}" + "".join(f"{k:>14}" for k in keys))
    for day in checkpoints:
        for when in ("before", "after"):
            row = report[str(day)][when]
            print(f"{day:>5} {when:<7}" + "".join(f"{row[k]:>14,}" for k in keys))
    last = report[str(checkpoints[-1])]["after"]
    ratios = {k: round(last[k] / first[k], 2) if first[k] else None for k in keys}
    print(
        f"after maintain, day {checkpoints[-1]} / day {checkpoints[0]}: "
        + ", ".join(f"{k} {v}x" for k, v in ratios.items())
    )
    print(
        "BENCH "
        + json.dumps(
            {
                "days": args.days,
                "events": args.events,
                "retain": args.retain,
                "checkpoints": report,
                "flat_ratio": ratios,
            }
        )
    )


if __name__ == "__main__":
    sys.exit(main())
