"""`costlake demo` / `make demo`: the main job end to end on embedded defaults, then the result."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from costlake.catalog.views import run_query
from costlake.lake.warehouse import Warehouse
from costlake.ops.publish import publish_and_detect
from costlake.pipeline.ingest import ingest_files
from costlake.pipeline.tenants import load_tenants
from costlake.synthetic.generate import generate
from costlake.text.names import shown_rows, shown_value

TOP_ACCOUNTS = """
SELECT a.tenant_id, d.account_id, a.account_name,
       CAST(sum(d.total_cost_usd) AS DECIMAL(38,2)) AS billed_usd,
       CAST(sum(d.effective_cost_usd) AS DECIMAL(38,2)) AS effective_usd,
       sum(d.event_count) AS events
FROM daily_account_cost d LEFT JOIN dim_account a USING (account_id)
GROUP BY ALL ORDER BY billed_usd DESC LIMIT 10"""

DAILY_TOTALS = """
SELECT usage_date, count(*) AS accounts, CAST(sum(total_cost_usd) AS DECIMAL(38,2)) AS billed_usd,
       bool_and(data_complete) AS complete
FROM daily_account_cost GROUP BY usage_date ORDER BY usage_date DESC LIMIT 14"""

TENANTS = """
SELECT a.tenant_id, count(DISTINCT d.account_id) AS accounts,
       CAST(sum(d.total_cost_usd) AS DECIMAL(38,2)) AS billed_usd
FROM daily_account_cost d LEFT JOIN dim_account a USING (account_id)
GROUP BY ALL ORDER BY a.tenant_id"""

ANOMALIES = """
SELECT c.usage_date, a.account_name, c.service_name, c.kind,
       CAST(c.actual_usd AS DECIMAL(38,2)) AS actual_usd,
       CAST(c.expected_usd AS DECIMAL(38,2)) AS expected_usd,
       CAST(c.impact_usd AS DECIMAL(38,2)) AS impact_usd, c.duration_days,
       c.top_dimension, c.top_value
FROM cost_anomalies c LEFT JOIN dim_account a USING (account_id)
ORDER BY abs(c.impact_usd) DESC, c.usage_date LIMIT 10"""

#: the columns of the tables above that hold names, and the column that says each one's kind
NAME_COLUMNS = {
    "account_name": "account_name",
    "account_id": "account_id",
    "service_name": "service_name",
    "top_value": "top_dimension",
}


def run_demo(wh: Warehouse, data_dir: Path, events: int, console: Console) -> None:
    started = time.monotonic()
    made = generate(
        data_dir, events=events, days=90, tenants=3, accounts_per_tenant=4, batches=4, anomalies=8
    )
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
    report = publish_and_detect(wh)
    for published in report.tables:
        console.print(
            f"  {published.table}: {len(published.committed)} partition(s), {published.rows:,} rows"
        )
    for title, sql in (
        ("Cost by tenant", TENANTS),
        ("Top accounts", TOP_ACCOUNTS),
        ("Daily totals, last 14 days", DAILY_TOTALS),
        ("Largest cost anomalies", ANOMALIES),
    ):
        result = run_query(wh, sql)
        table = Table(*result.column_names, title=title)
        for row in shown_rows(result.to_pylist(), NAME_COLUMNS):
            table.add_row(*(Text("" if v is None else str(v)) for v in row.values()))
        console.print(table)
    _explain_the_largest(wh, console)
    console.print(
        f"done in {time.monotonic() - started:.1f} s. Explore with: "
        f'.venv/bin/costlake --warehouse {wh.root} query "SELECT * FROM daily_account_cost LIMIT 5"'
    )


def _explain_the_largest(wh: Warehouse, console: Console) -> None:
    """Index the anomalies and ask about the largest one, as its tenant would."""
    from costlake.rag.explain import Explainer
    from costlake.rag.indexer import build_index

    top = run_query(
        wh,
        """SELECT c.usage_date, c.service_name, a.account_name, a.tenant_id FROM cost_anomalies c
           JOIN dim_account a USING (account_id) ORDER BY abs(c.impact_usd) DESC, c.usage_date LIMIT 1""",
    ).to_pylist()
    if not top:
        return
    report = build_index(wh)
    console.print(f"indexed {report.chunks} anomalies ({report.embedder_id}) in {report.seconds:.1f} s")
    day, service, account, tenant = top[0].values()
    # The question is text a model reads: names through the policy, like everything else it reads.
    who = shown_value("account_name", account) if account else "the account"
    question = f"Why did {shown_value('service_name', service)} spend change for {who} on {day.isoformat()}?"
    answer = Explainer(wh).explain(question, tenant=tenant)
    console.print(f"\n[bold]costlake explain[/bold] {escape(repr(question))} --tenant {escape(str(tenant))}")
    console.print(answer.explanation, markup=False, highlight=False)
    console.print(f"({answer.provider}, grounded: {answer.grounded}, {answer.latency_ms:.0f} ms)\n")
