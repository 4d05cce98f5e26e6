"""Stage 3, the canonical published dataset: cost per (account_id, usage_date).

`data_complete` is true once the bill is final for that account and day (every event of it carries
an invoice id), or once the account's latest ingestion is at least `lag_hours` past the end of the
day (T+1). A day the quality gate holds back is never published, so a published day has passed it.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from costlake.duck import run_on_arrow
from costlake.tables import MONEY_SQL


def invoiced_sql(events: str) -> str:
    """(account_id, usage_date, invoiced): whether every stage 1 event of the account-day is invoiced."""
    return f"""
    SELECT account_id, usage_date, bool_and(invoice_id IS NOT NULL) AS invoiced
    FROM {events} GROUP BY account_id, usage_date"""


def account_ingestion_sql(raw: str) -> str:
    """(account_id, last_ingestion_ts): the latest ingestion of each account's data."""
    return f"SELECT account_id, max(ingestion_ts) AS last_ingestion_ts FROM {raw} GROUP BY account_id"


def account_day_sql(
    service_days: str, accounts: str, invoiced: str, *, lag_hours: int, run_id: str, published_at: dt.datetime
) -> str:
    """`accounts` has (account_id, last_ingestion_ts); `invoiced` is `invoiced_sql`'s shape."""
    stamp = published_at.strftime("%Y-%m-%d %H:%M:%S.%f")
    return f"""
    SELECT s.account_id, s.usage_date,
           CAST(sum(s.total_cost_usd) AS {MONEY_SQL}) AS total_cost_usd,
           CAST(sum(s.effective_cost_usd) AS {MONEY_SQL}) AS effective_cost_usd,
           CAST(sum(s.event_count) AS BIGINT) AS event_count,
           CAST(count(*) AS BIGINT) AS service_count,
           COALESCE(bool_or(i.invoiced), false)
           OR COALESCE(max(a.last_ingestion_ts)
                       >= CAST(s.usage_date AS TIMESTAMP) + INTERVAL '{24 + lag_hours}' HOUR, false)
               AS data_complete,
           CAST(TIMESTAMP '{stamp}' AS TIMESTAMP) AS published_at,
           '{run_id}' AS run_id
    FROM {service_days} AS s
    LEFT JOIN {accounts} AS a ON a.account_id = s.account_id
    LEFT JOIN {invoiced} AS i ON i.account_id = s.account_id AND i.usage_date = s.usage_date
    GROUP BY s.account_id, s.usage_date
    ORDER BY s.usage_date, s.account_id"""


def publish(
    service_days: pa.Table,
    accounts: pa.Table,
    *,
    lag_hours: int,
    run_id: str,
    published_at: dt.datetime,
    invoiced: pa.Table | None = None,
) -> pa.Table:
    """Stage 3 as a pure function: stage 2 rows and (account_id, last_ingestion_ts) in, account-day out."""
    if invoiced is None:
        invoiced = pa.table(
            {
                "account_id": pa.array([], pa.string()),
                "usage_date": pa.array([], pa.date32()),
                "invoiced": pa.array([], pa.bool_()),
            }
        )
    sql = account_day_sql(
        "service_days", "accounts", "invoiced", lag_hours=lag_hours, run_id=run_id, published_at=published_at
    )
    return run_on_arrow(sql, service_days=service_days, accounts=accounts, invoiced=invoiced)
