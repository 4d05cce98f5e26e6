"""`make bench` as several whole invocations of pipeline_bench.py, and the median of each figure.

    make bench                                  # INVOCATIONS=3 by default, EVENTS=1000000
    make bench EVENTS=10000000 INVOCATIONS=3
    .venv/bin/python bench/invocations.py 3 --events 200000 --skip-spark
    .venv/bin/python bench/invocations.py --from-logs a.log b.log c.log   # earlier invocations' output

The machine is shared, so one invocation's ratio can be off by more than what is measured: each
invocation runs the whole comparison (input, floor, PySpark peer, costlake; full load, one-day
correction, 3-day re-delivery) in its own folder OUT/invocation_N, its output streams through, and at
the end one table gives, per phase, the median over the invocations of each time, peak RSS and ratio
(each invocation's ratio, then the median of those), beside the lowest and highest. An invocation
whose totals do not match fails the whole (exit 1); a step that fails stops it (exit 2).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIGURES = (  # (label, key in a phase of the BENCH line)
    ("floor s", "baseline_s"),
    ("costlake s", "costlake_s"),
    ("costlake / floor", "ratio"),
    ("PySpark s", "pyspark_s"),
    ("costlake / PySpark", "ratio_pyspark"),
    ("costlake, detection off s", "costlake_off_s"),
    ("run with / without detection", "detection_ratio"),
    ("floor RSS MiB", "baseline_rss_mb"),
    ("costlake RSS MiB", "costlake_rss_mb"),
    ("PySpark RSS MiB", "pyspark_rss_mb"),
    ("costlake --engine spark s", "spark_engine_s"),
    ("Spark engine / PySpark", "ratio_spark_engine"),
    ("Spark engine RSS MiB", "spark_engine_rss_mb"),
)


def bench_line(text: str) -> dict:
    """The `BENCH {json}` line of one invocation's output."""
    for line in reversed(text.splitlines()):
        if line.startswith("BENCH "):
            return json.loads(line[len("BENCH ") :])
    raise SystemExit("error: an invocation printed no BENCH line (it failed before the end; see above)")


def invoke(n: int, args: list[str], out: Path) -> tuple[int, dict]:
    """One whole invocation in OUT/invocation_N, its output streamed and kept."""
    folder = out / f"invocation_{n}"
    command = [sys.executable, str(HERE / "pipeline_bench.py"), *args, "--out", str(folder)]
    print(f"==== invocation {n}: {' '.join(command[1:])}", flush=True)
    lines = []
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, bufsize=1) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
    if proc.returncode == 2:
        raise SystemExit(2)
    return proc.returncode, bench_line("".join(lines))


def medians(runs: list[dict]) -> None:
    """The table: per phase and figure, the median over the invocations, and the range."""
    accounts = runs[0].get("accounts")  # not in the output of invocations before the figure was added
    billed = f", {accounts:,} accounts" if accounts else ""
    print(f"\nmedians of {len(runs)} invocations ({runs[0]['events']:,} events{billed}; lowest - highest)")
    for phase in runs[0]["phases"]:
        print(f"{phase}:")
        for label, key in FIGURES:
            values = [r["phases"][phase][key] for r in runs if r["phases"][phase].get(key) is not None]
            if len(values) == len(runs):
                low, high = min(values), max(values)
                print(f"  {label:<30}{statistics.median(values):>10.2f}   ({low:.2f} - {high:.2f})")
    shares = [r["phases"]["correction"]["costlake_s"] / r["phases"]["full"]["costlake_s"] for r in runs]
    print(f"one-day correction / full load (costlake): 1/{1 / statistics.median(shares):.0f} (median)")
    summary = {key: _median_phase(runs, key) for key in runs[0]["phases"]}
    head = {"invocations": len(runs), "events": runs[0]["events"], "accounts": accounts}
    print("BENCH_MEDIANS " + json.dumps({**head, **summary}))


def _median_phase(runs: list[dict], phase: str) -> dict:
    keys = {k for r in runs for k, v in r["phases"][phase].items() if isinstance(v, int | float)}
    return {
        k: round(statistics.median(r["phases"][phase][k] for r in runs), 3)
        for k in sorted(keys)
        if all(k in r["phases"][phase] for r in runs)
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("invocations", type=int, nargs="?", default=3, help="whole invocations to run")
    ap.add_argument("--out", type=Path, default=HERE / "out", help="work folder; one sub-folder each")
    ap.add_argument("--from-logs", type=Path, nargs="+", help="summarise earlier invocations' output")
    args, rest = ap.parse_known_args()
    if args.from_logs:
        runs = [bench_line(p.read_text()) for p in args.from_logs]
        failed = [str(p) for p, r in zip(args.from_logs, runs, strict=True) if not r["ok"]]
    else:
        if args.invocations < 1:
            ap.error("invocations must be at least 1")
        done = [invoke(n, rest, args.out) for n in range(1, args.invocations + 1)]
        runs = [r for _, r in done]
        failed = [f"invocation {n}" for n, (rc, r) in enumerate(done, 1) if rc or not r["ok"]]
    medians(runs)
    if failed:
        print(f"error: totals did not match in {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
