"""Stage 2: cost per (account_id, service_name, usage_date) from stage 1's events.

Sums stay DECIMAL(38,12): a total is the exact sum of its events, credits included.
"""

from __future__ import annotations

import pyarrow as pa

from costlake.duck import run_on_arrow
from costlake.tables import MONEY_SQL


def account_service_day_sql(events: str) -> str:
    return f"""
    SELECT account_id, service_name, usage_date,
           CAST(sum(billed_cost) AS {MONEY_SQL}) AS total_cost_usd,
           CAST(sum(effective_cost) AS {MONEY_SQL}) AS effective_cost_usd,
           CAST(count(*) AS BIGINT) AS event_count
    FROM {events}
    GROUP BY account_id, service_name, usage_date
    ORDER BY usage_date, account_id, service_name"""


def aggregate(events: pa.Table) -> pa.Table:
    """Stage 2 as a pure function: stage-1 events in, account-service-day rows out."""
    return run_on_arrow(account_service_day_sql("events"), events=events)
