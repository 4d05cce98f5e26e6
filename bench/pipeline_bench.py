"""costlake's pipeline beside the bare-DuckDB baseline, on the same input, in one invocation.

    make bench                      # 1M events (EVENTS=1000000)
    make bench EVENTS=10000000      # or: .venv/bin/python bench/pipeline_bench.py --events 200000

The baseline lives outside the repo (`../shared/bench` from the repo root, or `--baseline-dir`). When it
is there, its gen_billing_csv.py writes the input (N rows plus a 3-day BACKFILL file) and its
pipe_duckdb.py runs `full` and then `backfill`. costlake runs twice on two fresh warehouses fed the
same input: `on` with anomaly detection at the end of `run` (anomalies_on_run = true, the default) and
`off` without it (COSTLAKE_ANOMALIES_ON_RUN=false). Each does `ingest` + `run`, then ingests the backfill
file into the same warehouse and runs again. After each phase both warehouses' stage-3 grand total (sum
of daily_account_cost.total_cost_usd) and row count must equal the baseline's, compared as decimals: the
script prints MATCH or MISMATCH and exits 1 on a mismatch (2 if a step fails). The run steps of the two
warehouses give detection's cost: the ratio of their wall times and the difference of their peak RSS.

Without the baseline (or with --skip-baseline) costlake runs alone. If the baseline's generator is
missing too, `costlake generate` writes the input and the backfill re-delivers 3 days of it verbatim,
so costlake's total must not change. Without the baseline, the `off` warehouse must equal the `on` one
after each phase (detection must not change stage 3).

The PySpark peer (the baseline folder's pipe_spark.py, the original system's three stages, through the
venv's `spark-submit --master local[2]`) runs the same two phases on the same input unless
--skip-spark is given; its totals are checked like costlake's, and the table adds the ratio
costlake / PySpark. Beside it, costlake's own Spark engine (`costlake --engine spark`, local[2],
defaults on) ingests and runs the same phases once each on a third warehouse (`--spark-engine` runs it
without the peer too); its totals are checked the same way, and the bench prints its time against
the peer's.

`--accounts-factor K` shares each generated account's events out among K accounts before anything
runs (bench/accounts.py): the same events and totals with K times the accounts and series, for how
costlake grows with accounts.

Every step is a subprocess timed on the wall clock; its peak RSS comes from os.wait4 (per child).
Both sides get 2 DuckDB threads (the baseline hard-codes threads=2). Logs go to OUT/logs.
Prints a table and one `BENCH {json}` line. Needs Linux or macOS; no dependencies beyond the venv.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

from accounts import count_accounts, spread  # bench/, beside this script

ROOT = Path(__file__).resolve().parent.parent
VENV_PY = ROOT / ".venv" / "bin" / "python"
PY = str(VENV_PY) if VENV_PY.exists() else sys.executable
_CLI = Path(PY).parent / "costlake"
COSTLAKE = [str(_CLI)] if _CLI.exists() else [PY, "-m", "costlake"]
THREADS = "2"  # pipe_duckdb.py's setting; costlake would otherwise take every core
BACKFILL_DATES = ("2024-02-10", "2024-02-11", "2024-02-12")  # the days the backfill re-delivers
CORRECTION_DAY = "2024-02-11"  # the day the one-day correction re-delivers
VARIANTS = {"on": "true", "off": "false"}  # COSTLAKE_ANOMALIES_ON_RUN of each warehouse


class Step:
    """One finished subprocess: wall seconds, peak RSS in MiB, its output."""

    def __init__(self, name: str, cmd: list[str], logs: Path, env: dict[str, str] | None = None) -> None:
        log = logs / f"{name}.log"
        with open(log, "w") as fh:
            start = time.perf_counter()
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env)
            _, status, usage = os.wait4(proc.pid, 0)  # per-child rusage, unlike RUSAGE_CHILDREN
            self.seconds = time.perf_counter() - start
        self.all_seconds = [self.seconds]  # every repetition's, when the step was repeated
        proc.returncode = os.waitstatus_to_exitcode(status)
        self.rss_mb = usage.ru_maxrss / (1024 * 1024 if sys.platform == "darwin" else 1024)
        self.output = log.read_text()
        if proc.returncode != 0:
            tail = "\n".join(self.output.splitlines()[-15:])
            print(
                f"{name} failed (exit {proc.returncode}): {' '.join(cmd)}",
                tail,
                f"(log: {log})",
                sep="\n",
                file=sys.stderr,
            )
            sys.exit(2)


def repeated_runs(
    names: dict[str, str], warehouses: dict[str, Path], logs: Path, envs: dict, repeat: int
) -> dict[str, Step]:
    """`costlake run` on each warehouse `repeat` times, the variants taking turns (so a slower minute
    of a shared machine falls on both); before every repetition but the first, each warehouse is
    put back as it was before its first run (copied in place: Iceberg keeps absolute paths). Returns
    per variant the run of median wall time, with the largest peak RSS of its repetitions."""
    saved = {v: wh.with_name(wh.name + ".before-run") for v, wh in warehouses.items()}
    if repeat > 1:
        for v, wh in warehouses.items():
            shutil.rmtree(saved[v], ignore_errors=True)
            shutil.copytree(wh, saved[v], symlinks=True)
    done: dict[str, list[Step]] = {v: [] for v in warehouses}
    for i in range(repeat):
        for v, wh in warehouses.items():
            if i:
                shutil.rmtree(wh)
                shutil.copytree(saved[v], wh, symlinks=True)
            name = names[v] if i == 0 else f"{names[v]}_{i + 1}"
            done[v].append(Step(name, [*COSTLAKE, "--warehouse", str(wh), "run"], logs, envs[v]))
    for path in saved.values():
        shutil.rmtree(path, ignore_errors=True)
    out = {}
    for v, steps in done.items():
        steps.sort(key=lambda st: st.seconds)
        middle = steps[len(steps) // 2]
        middle.rss_mb = max(st.rss_mb for st in steps)
        middle.all_seconds = sorted(st.seconds for st in steps)
        out[v] = middle
    return out


# The run's summary of detection, e.g. "anomalies: 1,701 anomalies; 3,157 series re-analysed (the
# series that changed, 454 in exact decimals); ...": the work detection did in that phase.
DETECTED = re.compile(
    r"^anomalies: .*?; ([\d,]+) series re-analysed \([^,]*, ([\d,]+) in exact decimals\)", re.MULTILINE
)


def detection_work(output: str) -> dict[str, int]:
    """Series detection re-analysed and those it analysed in exact decimals, from a run's output
    (empty when the run reported no detection).

    >>> line = "anomalies: 9 anomalies; 3,157 series re-analysed (every series, 454 in exact decimals)"
    >>> detection_work(line)
    {'detection_series': 3157, 'detection_exact': 454}
    """
    found = DETECTED.search(output)
    if found is None:
        return {}
    series, exact = (int(g.replace(",", "")) for g in found.groups())
    return {"detection_series": series, "detection_exact": exact}


def spark_engine_phase(phase: str, files: list[Path], warehouse: Path, logs: Path, env: dict) -> dict:
    """`costlake --engine spark` ingest + run of one phase (once: a JVM's start is part of its cost)."""
    steps = {
        part: Step(
            f"{phase}_spark_engine_{part}",
            [*COSTLAKE, "--engine", "spark", "--warehouse", str(warehouse), *command],
            logs,
            env,
        )
        for part, command in (("ingest", ["ingest", *map(str, files)]), ("run", ["run"]))
    }
    ingest, run = steps["ingest"], steps["run"]
    return {
        "spark_engine_ingest_s": round(ingest.seconds, 3),
        "spark_engine_run_s": round(run.seconds, 3),
        "spark_engine_s": round(ingest.seconds + run.seconds, 3),
        "spark_engine_rss_mb": round(max(ingest.rss_mb, run.rss_mb)),
    }


def spark_engine_summary(phases: dict[str, dict]) -> str:
    """One line: the Spark engine's ingest + run per phase, against the PySpark peer where it ran.

    >>> print(spark_engine_summary({"full": {"spark_engine_s": 97.1, "spark_engine_rss_mb": 1234,
    ...     "pyspark_s": 52.0, "ratio_spark_engine": 1.87}, "next_day": {}}))
    costlake --engine spark (local[2], ingest + run): full 97.10 s, 1.87x the PySpark peer, 1234 MiB
    """
    labels = {"full": "full", "correction": "correction", "backfill": "re-delivery"}
    parts = [
        f"{labels[p]} {ph['spark_engine_s']:.2f} s"
        + (f", {ph['ratio_spark_engine']:.2f}x the PySpark peer" if "ratio_spark_engine" in ph else "")
        + f", {ph['spark_engine_rss_mb']} MiB"
        for p, ph in phases.items()
        if "spark_engine_s" in ph
    ]
    return "costlake --engine spark (local[2], ingest + run): " + "; ".join(parts)


def baseline_result(step: Step) -> dict:
    line = next(ln for ln in step.output.splitlines() if ln.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def costlake_totals(warehouse: Path, logs: Path, name: str, env: dict[str, str]) -> dict:
    sql = (
        "SELECT count(*) AS n, CAST(sum(total_cost_usd) AS VARCHAR) AS total, version() AS duckdb "
        "FROM daily_account_cost"
    )
    cmd = [*COSTLAKE, "--warehouse", str(warehouse), "query", sql, "--format", "csv"]
    step = Step(name, cmd, logs, env)
    row = next(csv.DictReader(io.StringIO(step.output)))
    return {"rows": int(row["n"]), "total": row["total"], "duckdb": row["duckdb"]}


def correction_files(inputs: list[Path], backfill: Path, data: Path) -> tuple[Path, Path]:
    """(costlake's, the baselines') files of a one-day correction: the re-delivery of CORRECTION_DAY
    alone, as the 3-day BACKFILL file has it (every event of the day, about 2% with a new cost). The
    baselines can only replace the three days they know whole, so theirs also holds the two other
    days' rows of the full load, unchanged: the same content, with one day corrected."""
    import duckdb  # the bench runs on the venv, which has it

    ours, theirs = data / "CORRECTION.csv", data / "CORRECTION_baselines.csv"
    others = [d for d in BACKFILL_DATES if d != CORRECTION_DAY]
    con = duckdb.connect()
    try:
        con.execute("SET threads = 2")
        read = "read_csv({}, all_varchar = true, header = true)"  # text in, text out: no value reformatted
        day = f"SELECT * FROM {read.format(_sql(backfill))} WHERE usage_date = {_sql(CORRECTION_DAY)}"
        con.execute(f"COPY ({day}) TO {_sql(ours)} (HEADER, DELIMITER ',')")
        if len(inputs) == 1:
            days = ", ".join(map(_sql, others))
            rest = f"SELECT * FROM {read.format(_sql(inputs[0]))} WHERE usage_date IN ({days})"
            con.execute(f"COPY ({rest} UNION ALL {day}) TO {_sql(theirs)} (HEADER, DELIMITER ',')")
    finally:
        con.close()
    return ours, theirs


def next_day_file(inputs: list[Path], data: Path) -> Path:
    """A daily delivery, the change a lake gets most often: the day after the input's last day, made
    of that last day's rows with new event ids (`next-` before each), the date and the ingestion
    time a day later. The baselines have no mode for a new day, so only costlake runs this phase."""
    import duckdb

    out = data / "NEXT_DAY.csv"
    con = duckdb.connect()
    try:
        con.execute("SET threads = 2")
        files = "[" + ", ".join(_sql(p) for p in inputs) + "]"
        rows = f"read_csv({files}, all_varchar = true, header = true, union_by_name = true)"
        later = """* REPLACE (
        'next-' || event_id AS event_id,
        strftime(CAST(usage_date AS DATE) + 1, '%Y-%m-%d') AS usage_date,
        strftime(CAST(ingestion_ts AS TIMESTAMP) + INTERVAL 1 DAY, '%Y-%m-%d %H:%M:%S') AS ingestion_ts)"""
        last = f"(SELECT max(usage_date) FROM {rows})"
        con.execute(f"COPY (SELECT {later} FROM {rows} WHERE usage_date = {last}) TO {_sql(out)} (HEADER)")
    finally:
        con.close()
    return out


def _sql(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def verbatim_backfill(files: list[Path], out: Path) -> None:
    """Every row of BACKFILL_DATES' days, re-delivered unchanged (costlake's generator writes no quotes)."""
    with open(out, "w") as dst:
        for i, path in enumerate(files):
            with open(path) as src:
                header = src.readline()
                col = header.rstrip("\n").split(",").index("usage_date")
                if i == 0:
                    dst.write(header)
                dst.writelines(ln for ln in src if ln.split(",")[col] in BACKFILL_DATES)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1_000_000, help="billing rows to generate")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "out", help="work folder (wiped parts)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--baseline-dir", type=Path, default=ROOT.parent / "shared" / "bench")
    ap.add_argument("--skip-baseline", action="store_true", help="run costlake alone")
    ap.add_argument(
        "--skip-spark",
        action="store_true",
        help="leave out the PySpark peer and the Spark engine (quick runs)",
    )
    ap.add_argument(
        "--spark-engine",
        action="store_true",
        help="time `costlake --engine spark` even without the PySpark peer (it runs with the peer anyway)",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="times each `costlake run` is repeated, with and without detection in turn (median reported)",
    )
    ap.add_argument(
        "--accounts-factor",
        type=int,
        default=1,
        metavar="K",
        help="share each account's events out among K accounts (bench/accounts.py): the same events, "
        "K times the accounts and series",
    )
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error("--repeat must be at least 1")
    if args.accounts_factor < 1:
        ap.error("--accounts-factor must be at least 1")

    out = args.out.resolve()
    data, base_out, logs = out / "input", out / "baseline", out / "logs"
    warehouses = {v: out / f"warehouse_{v}" for v in VARIANTS}
    spark_wh = out / "warehouse_spark"
    for d in (data, base_out, logs, spark_wh, *warehouses.values()):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    bdir = args.baseline_dir.resolve()
    have_gen = (bdir / "gen_billing_csv.py").is_file()
    run_base = have_gen and (bdir / "pipe_duckdb.py").is_file() and not args.skip_baseline
    why = "skipped (--skip-baseline)" if args.skip_baseline else f"not available (no {bdir}/pipe_duckdb.py)"
    print(f"baseline: {bdir if run_base else why}")
    spark_submit = Path(PY).parent / "spark-submit"
    run_spark = run_base and not args.skip_spark and (bdir / "pipe_spark.py").is_file()
    if run_base and not args.skip_spark and not run_spark:
        print(f"PySpark peer: not available (no {bdir}/pipe_spark.py)")
    elif run_spark and not spark_submit.exists():
        print(f"PySpark peer: not available (no {spark_submit}; install the spark extra)")
        run_spark = False
    # spark-submit finds its Spark home through the `python` on PATH: the venv's, which has pyspark
    path = f"{Path(PY).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    spark_env = {**os.environ, "PATH": path, "PYSPARK_PYTHON": PY, "PYSPARK_DRIVER_PYTHON": PY}
    env = {**os.environ, "COSTLAKE_DUCKDB_THREADS": os.environ.get("COSTLAKE_DUCKDB_THREADS", THREADS)}
    # set explicitly for both, so neither the caller's environment nor a costlake.toml can flip `on`
    envs = {v: {**env, "COSTLAKE_ANOMALIES_ON_RUN": flag} for v, flag in VARIANTS.items()}
    engine = (run_spark or args.spark_engine) and not args.skip_spark
    # the peer's two cores; defaults on otherwise (detection included)
    engine_env = {**envs["on"], **spark_env, "COSTLAKE_SPARK_MASTER": "local[2]"}
    engine_env.update({k: envs["on"][k] for k in ("COSTLAKE_DUCKDB_THREADS", "COSTLAKE_ANOMALIES_ON_RUN")})

    # 1. the input, once, shared by both sides
    backfill = data / "BACKFILL.csv"
    if have_gen:
        inputs = [data / "billing.csv"]
        gen = Step(
            "generate",
            [
                PY,
                str(bdir / "gen_billing_csv.py"),
                str(args.events),
                str(inputs[0]),
                str(backfill),
                str(args.seed),
            ],
            logs,
        )
        for path in (*inputs, backfill):  # its backfill re-delivers events of the input: spread alike
            spread(path, args.accounts_factor)
    else:
        gen = Step(
            "generate",
            [
                *COSTLAKE,
                "generate",
                str(data),
                "--events",
                str(args.events),
                "--start",
                BACKFILL_DATES[0][:4] + "-01-01",
                "--seed",
                str(args.seed),
            ],
            logs,
        )
        inputs = sorted(data.glob("billing_batch_*.csv"))
        for path in inputs:
            spread(path, args.accounts_factor)
        verbatim_backfill(inputs, backfill)  # of the spread inputs
    accounts = count_accounts(inputs)
    size_mb = sum(p.stat().st_size for p in inputs) / 2**20
    print(f"input: {', '.join(p.name for p in inputs)} ({size_mb:.0f} MiB, generated in {gen.seconds:.1f} s)")
    print(f"accounts: {accounts:,} (each generated account's events shared out among {args.accounts_factor})")

    phases: dict[str, dict] = {}
    checks: dict[str, dict] = {}
    versions: dict[str, str | None] = {"baseline": None, "costlake": None}
    correction, correction_base = correction_files(inputs, backfill, data)
    plan: list[tuple[str, list[Path], str | None, Path | None]] = [
        ("full", inputs, "full", inputs[0]),
        ("correction", [correction], "backfill", correction_base),
        ("backfill", [backfill], "backfill", backfill),
        ("next_day", [next_day_file(inputs, data)], None, None),  # costlake alone
    ]
    for phase, files, mode, base_csv in plan:
        ph: dict = {}
        base = None
        if run_base and mode is not None:
            print(f"{phase}: baseline ...", flush=True)
            cmd = [PY, str(bdir / "pipe_duckdb.py"), mode, str(base_csv), str(base_out)]
            b = Step(f"{phase}_baseline", cmd, logs)
            base = baseline_result(b)
            versions["baseline"] = base.get("version")
            ph.update(baseline_s=round(b.seconds, 3), baseline_rss_mb=round(b.rss_mb))
        if run_spark and mode is not None:
            print(f"{phase}: PySpark peer ...", flush=True)
            cmd = [
                str(spark_submit),
                "--master",
                "local[2]",
                str(bdir / "pipe_spark.py"),
                mode,
                str(base_csv),
            ]
            sp = Step(f"{phase}_pyspark", [*cmd, str(out / "pyspark")], logs, spark_env)
            peer = baseline_result(sp)
            ph.update(pyspark_s=round(sp.seconds, 3), pyspark_rss_mb=round(sp.rss_mb))
            ph.update(pyspark_rows=int(peer["stage3_rows"]), pyspark_total=str(peer["stage3_total_cost"]))
        if engine and mode is not None:
            print(f"{phase}: costlake --engine spark ...", flush=True)
            ph.update(spark_engine_phase(phase, files, spark_wh, logs, engine_env))
            if "pyspark_s" in ph:
                ph["ratio_spark_engine"] = round(ph["spark_engine_s"] / ph["pyspark_s"], 2)
        ingests: dict[str, Step] = {}
        for v, wh in warehouses.items():
            print(f"{phase}: costlake ingest, detection {v} ...", flush=True)
            ingests[v] = Step(
                f"{phase}_costlake_{v}_ingest",
                [*COSTLAKE, "--warehouse", str(wh), "ingest", *map(str, files)],
                logs,
                envs[v],
            )
        times = f" x{args.repeat}, in turn" if args.repeat > 1 else ""
        print(f"{phase}: costlake run with and without detection{times} ...", flush=True)
        names = {v: f"{phase}_costlake_{v}_run" for v in warehouses}
        runs_done = repeated_runs(names, warehouses, logs, envs, args.repeat)
        runs: dict[str, tuple[Step, Step]] = {}
        for v in warehouses:
            ing, run = ingests[v], runs_done[v]
            detected = any(ln.startswith("anomalies:") for ln in run.output.splitlines())
            if v == "off" and detected:
                print(f"{phase}: COSTLAKE_ANOMALIES_ON_RUN=false did not turn detection off", file=sys.stderr)
                return 2
            if v == "on" and not detected:
                print(f"{phase}: warning: the run with detection on reported no detection", file=sys.stderr)
            runs[v] = (ing, run)
            key = "costlake" if v == "on" else "costlake_off"  # costlake_* stays the default config
            ph.update(
                {
                    f"{key}_ingest_s": round(ing.seconds, 3),
                    f"{key}_run_s": round(run.seconds, 3),
                    f"{key}_run_all_s": [round(x, 3) for x in run.all_seconds],
                    f"{key}_s": round(ing.seconds + run.seconds, 3),
                    f"{key}_ingest_rss_mb": round(ing.rss_mb),
                    f"{key}_run_rss_mb": round(run.rss_mb),
                    f"{key}_rss_mb": round(max(ing.rss_mb, run.rss_mb)),
                }
            )
            if base:
                ph["ratio" if v == "on" else "ratio_off"] = round(ph[f"{key}_s"] / ph["baseline_s"], 2)
            if "pyspark_s" in ph:
                ph["ratio_pyspark" if v == "on" else "ratio_pyspark_off"] = round(
                    ph[f"{key}_s"] / ph["pyspark_s"], 2
                )
        run_on, run_off = runs["on"][1], runs["off"][1]
        ph.update(
            run_on_s=round(run_on.seconds, 3),
            run_off_s=round(run_off.seconds, 3),
            detection_ratio=round(run_on.seconds / run_off.seconds, 2),
            detection_rss_mb=round(run_on.rss_mb - run_off.rss_mb),
            **detection_work(run_on.output),
        )
        phases[phase] = ph
        checks[phase] = {}
        for v, wh in warehouses.items():
            got = costlake_totals(wh, logs, f"{phase}_costlake_{v}_query", envs[v])
            versions["costlake"] = got["duckdb"].lstrip("v")
            if base:
                want = {"rows": int(base["stage3_rows"]), "total": base["stage3_total_cost"]}
            elif phase in ("correction", "backfill") and not have_gen:  # verbatim: nothing may change
                prev = checks["full"][v]
                want = {"rows": prev["costlake_rows"], "total": prev["costlake_total"]}
            elif v == "off":  # detection must not change stage 3
                on = checks[phase]["on"]
                want = {"rows": on["costlake_rows"], "total": on["costlake_total"]}
            else:
                want = None
            check = {"costlake_rows": got["rows"], "costlake_total": got["total"]}
            if "pyspark_rows" in ph and want:
                check["pyspark_match"] = want["rows"] == ph["pyspark_rows"] and Decimal(
                    want["total"]
                ) == Decimal(ph["pyspark_total"])
            if want:
                ok = want["rows"] == got["rows"] and Decimal(want["total"]) == Decimal(got["total"])
                check.update(expected_rows=want["rows"], expected_total=want["total"], match=ok)
            checks[phase][v] = check
        if "spark_engine_s" in ph:  # against what the baseline (or else costlake's DuckDB run) published
            got = costlake_totals(spark_wh, logs, f"{phase}_spark_engine_query", engine_env)
            on = checks[phase]["on"]
            want = {"rows": on.get("expected_rows", on["costlake_rows"])}
            want["total"] = on.get("expected_total", on["costlake_total"])
            ok = want["rows"] == got["rows"] and Decimal(want["total"]) == Decimal(got["total"])
            checks[phase]["spark_engine"] = {
                "costlake_rows": got["rows"], "costlake_total": got["total"], "expected_rows": want["rows"],
                "expected_total": want["total"], "match": ok,
            }  # fmt: skip

    def row(*cells: object) -> None:
        text = [f"{c:.2f}" if isinstance(c, float) else "-" if c is None else str(c) for c in cells]
        widths = (9, 11, 7, 15, 11, 11, 7, 11)
        print(text[0].ljust(24) + "".join(t.rjust(w) for t, w in zip(text[1:], widths, strict=True)))

    print()
    row(
        "phase",
        "floor s",
        "costlake s",
        "ratio",
        "floor RSS MiB",
        "cl RSS MiB",
        "PySpark s",
        "ratio",
        "Spark MiB",
    )
    for phase, ph in phases.items():
        for v in VARIANTS:
            key = "costlake" if v == "on" else "costlake_off"
            row(
                f"{phase}, detection {v}",
                ph.get("baseline_s"),
                ph[f"{key}_s"],
                ph.get("ratio" if v == "on" else "ratio_off"),
                ph.get("baseline_rss_mb"),
                ph[f"{key}_rss_mb"],
                ph.get("pyspark_s"),
                ph.get("ratio_pyspark" if v == "on" else "ratio_pyspark_off"),
                ph.get("pyspark_rss_mb"),
            )
            for part in ("ingest", "run"):
                row(
                    f"  costlake {part}",
                    "",
                    ph[f"{key}_{part}_s"],
                    "",
                    "",
                    ph[f"{key}_{part}_rss_mb"],
                    "",
                    "",
                    "",
                )
    if engine:
        print(spark_engine_summary(phases))
    full, redo, daily = phases["full"], phases["backfill"], phases["next_day"]
    print(
        f"detection overhead: run with detection / run without = {full['detection_ratio']:.2f} (full), "
        f"{redo['detection_ratio']:.2f} (re-delivery), {daily['detection_ratio']:.2f} (next day)"
        + (f", medians of {args.repeat} runs each" if args.repeat > 1 else "")
    )
    print(
        f"detection adds {full['detection_rss_mb']} MiB peak RSS (full), "
        f"{redo['detection_rss_mb']} MiB (re-delivery), {daily['detection_rss_mb']} MiB (next day)"
    )
    labels = {"full": "full", "correction": "correction", "backfill": "re-delivery", "next_day": "next day"}
    work = (
        f"{phases[p]['detection_series']:,} ({phases[p]['detection_exact']:,}) {label}"
        if "detection_series" in phases[p]
        else f"not reported {label}"  # the run printed no `anomalies:` line (the bench warned above)
        for p, label in labels.items()
    )
    print("detection re-analysed, series (in exact decimals): " + ", ".join(work))
    fix = phases["correction"]
    share = fix["costlake_s"] / full["costlake_s"]
    print(
        f"one-day correction ({CORRECTION_DAY}): costlake ingest + run {fix['costlake_s']:.2f} s, "
        f"1/{1 / share:.0f} of the full load's {full['costlake_s']:.2f} s (detection on)"
    )
    print(f"duckdb: baseline {versions['baseline'] or 'not run'}, costlake {versions['costlake']}")
    bad = []
    for phase, by_variant in checks.items():
        for v, c in by_variant.items():
            label = f"{phase}, costlake --engine spark" if v == "spark_engine" else f"{phase}, detection {v}"
            if "match" not in c:
                print(
                    f"{label}: costlake total {c['costlake_total']} over {c['costlake_rows']} rows "
                    f"(not checked: no baseline)"
                )
                continue
            verdict = "MATCH" if c["match"] else "MISMATCH"
            print(
                f"{label}: {verdict} costlake {c['costlake_total']} ({c['costlake_rows']} rows) vs "
                f"expected {c['expected_total']} ({c['expected_rows']} rows)"
            )
            bad += [] if c["match"] else [label]
            if "pyspark_match" in c and v == "on":
                peer = phases[phase]
                verdict = "MATCH" if c["pyspark_match"] else "MISMATCH"
                print(
                    f"{phase}, PySpark peer: {verdict} {peer['pyspark_total']} ({peer['pyspark_rows']} rows)"
                )
                bad += [] if c["pyspark_match"] else [f"{phase}, PySpark peer"]
    summary = {
        "events": args.events,
        "accounts": accounts,
        "accounts_factor": args.accounts_factor,
        "input_mib": round(size_mb, 1),
        "generator": "baseline" if have_gen else "costlake",
        "baseline": run_base,
        "pyspark": run_spark,
        "spark_engine": engine,
        "threads": env["COSTLAKE_DUCKDB_THREADS"],
        "repeat": args.repeat,
        "duckdb": versions,
        "phases": phases,
        "checks": checks,
        "ok": not bad,
    }
    print("BENCH " + json.dumps(summary), flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
