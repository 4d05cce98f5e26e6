"""What the spark-submit entry points share: arguments, settings, and the run."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Collection

from costlake.errors import CostlakeError
from costlake.lake.warehouse import Warehouse
from costlake.ops.console import stdout_console
from costlake.ops.publish import publish_and_detect
from costlake.ops.report import print_run
from costlake.settings import load_settings


def main(description: str, stages: Collection[str] | None) -> None:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--warehouse", help="warehouse folder or s3:// URI (default: settings)")
    parser.add_argument("--engine", default="spark", choices=["spark", "duckdb"], help="default: spark")
    parser.add_argument("--from", dest="first", type=dt.date.fromisoformat, help="backfill window start")
    parser.add_argument("--to", dest="last", type=dt.date.fromisoformat, help="backfill window end")
    args = parser.parse_args()
    if (args.first is None) != (args.last is None):
        parser.error("--from and --to go together")
    try:
        wh = Warehouse(load_settings(warehouse=args.warehouse, engine=args.engine))
        window = (args.first, args.last) if args.first else None
        report = publish_and_detect(wh, backfill=window, stages=stages)
    except CostlakeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(exc.exit_code)
    print_run(report, stdout_console())
    if report.held_back:
        sys.exit(2)
