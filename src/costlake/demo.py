"""`costlake demo` / `make demo`: the main job end to end on embedded defaults, then the result."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from costlake.generate import generate
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.ingest import ingest_files
from costlake.pipeline.run import run_pipeline
from costlake.pipeline.tenants import load_tenants
from costlake.query import run_query

TOP_ACCOUNTS = """
SELECT a.tenant_id, d.account_id, a.account_name,
       CAST(sum(d.total_cost_usd) AS DECIMAL(18,2)) AS billed_usd,
       CAST(sum(d.effective_cost_usd) AS DECIMAL(18,2)) AS effective_usd,
       sum(d.event_count) AS events
FROM daily_account_cost d LEFT JOIN dim_account a USING (account_id)
GROUP BY ALL ORDER BY billed_usd DESC LIMIT 10"""

DAILY_TOTALS = """
SELECT usage_date, count(*) AS accounts, CAST(sum(total_cost_usd) AS DECIMAL(18,2)) AS billed_usd,
       bool_and(data_complete) AS complete
FROM daily_account_cost GROUP BY usage_date ORDER BY usage_date DESC LIMIT 14"""

TENANTS = """
SELECT a.tenant_id, count(DISTINCT d.account_id) AS accounts,
       CAST(sum(d.total_cost_usd) AS DECIMAL(18,2)) AS billed_usd
FROM daily_account_cost d LEFT JOIN dim_account a USING (account_id)
GROUP BY ALL ORDER BY a.tenant_id"""


def run_demo(wh: Warehouse, data_dir: Path, events: int, console: Console) -> None:
    started = time.monotonic()
    made = generate(data_dir, events=events, days=90, tenants=3, accounts_per_tenant=4, batches=4)
    console.print(
        f"generated {made.rows:,} billing rows in {len(made.files)} delivery files under {data_dir}/"
    )
    for result in ingest_files(wh, made.files):
        verb = (
            "already ingested"
            if result.skipped
            else f"{result.accepted:,} accepted, {result.quarantined:,} quarantined"
        )
        console.print(f"  ingest {result.path.name}: {verb}")
    load_tenants(wh, made.tenants_file)
    report = run_pipeline(wh)
    for published in report.tables:
        console.print(
            f"  {published.table}: {len(published.committed)} partition(s), {published.rows:,} rows"
        )
    for title, sql in (
        ("Cost by tenant", TENANTS),
        ("Top accounts", TOP_ACCOUNTS),
        ("Daily totals, last 14 days", DAILY_TOTALS),
    ):
        result = run_query(wh, sql)
        table = Table(*result.column_names, title=title)
        for row in result.to_pylist():
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(table)
    console.print(
        f"done in {time.monotonic() - started:.1f} s. Explore with: "
        f'.venv/bin/costlake --warehouse {wh.root} query "SELECT * FROM daily_account_cost LIMIT 5"'
    )
