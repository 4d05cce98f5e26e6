"""How well the anomaly methods find injected anomalies: precision, recall, F1 and root causes.

    make bench-anomalies            # or: .venv/bin/python bench/anomaly_eval.py --datasets 5

Each dataset is a generated bill (`costlake generate --anomalies N`: spikes, step ups, new services,
drops and region shifts in turn, on services spending over $60/day) run through the real pipeline
into a fresh warehouse. Both methods then run on the same published data with the default settings;
a detection counts when its account, service and first day match an injected anomaly. Everything
else it reports (natural noise in the generated data) is a false positive. Prints one table row per
dataset and method, the totals, and one `BENCH {json}` line.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from costlake.anomalies.analyse import analyse_all
from costlake.anomalies.detect import Params
from costlake.anomalies.evaluate import Scores, score
from costlake.anomalies.job import load_series
from costlake.lake.warehouse import Warehouse
from costlake.ops.publish import publish_and_detect
from costlake.pipeline.ingest import ingest_files
from costlake.settings import Settings
from costlake.synthetic.generate import generate
from costlake.synthetic.injection import read_truth

METHODS = ("baseline", "day_over_day")


def evaluate_dataset(folder: Path, seed: int, args: argparse.Namespace) -> dict[str, Scores]:
    made = generate(
        folder / "data",
        events=args.events,
        days=args.days,
        tenants=args.tenants,
        accounts_per_tenant=args.accounts_per_tenant,
        seed=seed,
        anomalies=args.anomalies,
    )
    assert made.truth_file is not None
    truth = read_truth(made.truth_file)
    wh = Warehouse(Settings(warehouse=str(folder / "warehouse")))
    ingest_files(wh, made.files)
    publish_and_detect(wh)
    series = load_series(wh)
    out = {}
    for method in METHODS:
        rows = analyse_all(series, Params.from_settings(wh.settings, method=method))
        out[method] = score(rows, truth)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=5, help="generated datasets (seeds S..S+N-1)")
    parser.add_argument("--first-seed", type=int, default=1, help="seed S of the first dataset")
    parser.add_argument("--anomalies", type=int, default=10, help="injected anomalies per dataset")
    parser.add_argument("--events", type=int, default=150_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--tenants", type=int, default=2)
    parser.add_argument("--accounts-per-tenant", type=int, default=3)
    args = parser.parse_args(argv)
    totals = dict.fromkeys(METHODS, Scores(0, 0, 0, 0))
    print(
        f"{'dataset':>7} {'method':<13} {'TP':>4} {'FP':>4} {'FN':>4} "
        f"{'prec':>6} {'recall':>6} {'F1':>6} {'cause':>6}"
    )
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="costlake-anomaly-eval-") as tmp:
        for seed in range(args.first_seed, args.first_seed + args.datasets):
            for method, s in evaluate_dataset(Path(tmp) / f"d{seed}", seed, args).items():
                totals[method] = totals[method] + s
                _row(str(seed), method, s)
    for method, s in totals.items():
        _row("all", method, s)
    print(f"{time.monotonic() - started:.1f} s")
    summary = {
        m: {
            "precision": round(s.precision, 4),
            "recall": round(s.recall, 4),
            "f1": round(s.f1, 4),
            "cause_share": round(s.cause_share, 4),
            "tp": s.true_positives,
            "fp": s.false_positives,
            "fn": s.false_negatives,
        }
        for m, s in totals.items()
    }
    print("BENCH " + json.dumps({"datasets": args.datasets, "anomalies": args.anomalies, **summary}))
    return 0


def _row(dataset: str, method: str, s: Scores) -> None:
    print(
        f"{dataset:>7} {method:<13} {s.true_positives:>4} {s.false_positives:>4} {s.false_negatives:>4} "
        f"{s.precision:>6.3f} {s.recall:>6.3f} {s.f1:>6.3f} {s.cause_share:>6.3f}"
    )


if __name__ == "__main__":
    sys.exit(main())
