"""Stage 3, the canonical published dataset: cost per (account_id, usage_date).

`data_complete` follows the T+1 rule: a day is complete once the account's latest ingestion is at
least `lag_hours` past the end of that day.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from costlake.engines.duckdb_engine import run_on_arrow
from costlake.lake.schemas import MONEY_SQL


def account_day_sql(
    service_days: str, accounts: str, *, lag_hours: int, run_id: str, published_at: dt.datetime
) -> str:
    """`accounts` has (account_id, last_ingestion_ts)."""
    stamp = published_at.strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"""
    SELECT s.account_id, s.usage_date,
           CAST(sum(s.total_cost_usd) AS {MONEY_SQL}) AS total_cost_usd,
           CAST(sum(s.effective_cost_usd) AS {MONEY_SQL}) AS effective_cost_usd,
           CAST(sum(s.event_count) AS BIGINT) AS event_count,
           CAST(count(*) AS BIGINT) AS service_count,
           COALESCE(max(a.last_ingestion_ts)
                    >= CAST(s.usage_date AS TIMESTAMP) + INTERVAL '{24 + lag_hours}' HOUR, false)
               AS data_complete,
           CAST(TIMESTAMP '{stamp}' AS TIMESTAMP) AS published_at,
           '{run_id}' AS run_id
    FROM {service_days} AS s LEFT JOIN {accounts} AS a ON a.account_id = s.account_id
    GROUP BY s.account_id, s.usage_date
    ORDER BY s.usage_date, s.account_id"""


def publish(
    service_days: pa.Table, accounts: pa.Table, *, lag_hours: int, run_id: str, published_at: dt.datetime
) -> pa.Table:
    """Stage 3 as a pure function: stage-2 rows and (account_id, last_ingestion_ts) in, account-day out."""
    sql = account_day_sql(
        "service_days", "accounts", lag_hours=lag_hours, run_id=run_id, published_at=published_at
    )
    return run_on_arrow(sql, service_days=service_days, accounts=accounts)
