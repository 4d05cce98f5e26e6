"""Stage 1: canonical events, one per `event_id`, the latest version winning.

The winner of an event is the row with the greatest (ingestion_ts, batch_seq, source_row): a total
order, so no two rows tie and the result never depends on the engine or on file order.

A run rebuilds a set of days from raw. For those days it takes every event that has a raw row dated
on one of them, finds each event's winner among *all* of its raw versions, and keeps the winners
dated on the rebuilt days. An event whose winner moved to another day leaves the rebuilt day; the
day it moved to is rebuilt too, because the planner adds the days of new rows (`touched_days_sql`).
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from costlake.engines.duckdb_engine import run_on_arrow
from costlake.lake.schemas import NORMALIZED, RAW

ORDER = "ingestion_ts DESC, batch_seq DESC, source_row DESC"
COLUMNS = ", ".join(NORMALIZED.column_names)


def canonical_sql(raw: str) -> str:
    """Raw rows as canonical events: service names trimmed and case-folded to one key per service."""
    return f"""
    SELECT event_id, billing_account_id, account_id, lower(trim(service_name)) AS service_name,
           region, pricing_model, charge_category, usage_date, billed_cost, effective_cost, currency,
           invoice_id, ingestion_ts, batch_id, batch_seq, source_row
    FROM {raw}"""


def touched_days_sql(new_raw: str, current: str) -> str:
    """Days whose content can change when `new_raw` arrives: the days of the new rows, and the days
    where the current winners of the same events live (a correction can move an event away)."""
    return f"""
    SELECT DISTINCT usage_date, reason FROM (
        SELECT usage_date, 'new rows' AS reason FROM {new_raw}
        UNION ALL
        SELECT usage_date, 'superseded rows' AS reason FROM {current}
        WHERE event_id IN (SELECT event_id FROM {new_raw})
    ) AS days
    ORDER BY usage_date, reason"""


def event_ids_sql(raw: str, days: str) -> str:
    """Every event with a raw row dated on one of `days`."""
    return f"SELECT DISTINCT event_id FROM {raw} WHERE usage_date IN (SELECT usage_date FROM {days})"


def winners_sql(raw: str, event_ids: str) -> str:
    """The winning version of each event in `event_ids`, among all of its raw rows."""
    return f"""
    SELECT {COLUMNS} FROM (
        SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY {ORDER}) AS rank_in_event
        FROM ({canonical_sql(raw)}) AS events
        WHERE event_id IN (SELECT event_id FROM {event_ids})
    ) AS ranked
    WHERE rank_in_event = 1"""


def on_days_sql(winners: str, days: str) -> str:
    """The stage 1 content of the rebuilt days."""
    return f"SELECT {COLUMNS} FROM {winners} WHERE usage_date IN (SELECT usage_date FROM {days})"


def normalize(raw: pa.Table, days: list[dt.date] | None = None) -> pa.Table:
    """Stage 1 as a pure function: raw rows in, the stage 1 content of `days` (default: every day
    of the raw rows) out.

    >>> import datetime as dt, decimal
    >>> raw = pa.Table.from_pylist([
    ...     {"event_id": "e1", "account_id": "A1", "service_name": " EC2", "usage_date": dt.date(2025, 1, 1),
    ...      "billed_cost": decimal.Decimal("10"), "ingestion_ts": dt.datetime(2025, 1, 2), "batch_seq": 1,
    ...      "source_row": 1},
    ...     {"event_id": "e1", "account_id": "A1", "service_name": "ec2", "usage_date": dt.date(2025, 1, 1),
    ...      "billed_cost": decimal.Decimal("12"), "ingestion_ts": dt.datetime(2025, 1, 3), "batch_seq": 1,
    ...      "source_row": 2},
    ... ], schema=RAW.arrow_schema())
    >>> [(r["event_id"], r["service_name"], str(r["billed_cost"])) for r in normalize(raw).to_pylist()]
    [('e1', 'ec2', '12.000000000000')]
    """
    raw = raw.cast(RAW.arrow_schema())
    wanted = pa.table({"usage_date": pa.array(days if days is not None else [], pa.date32())})
    if days is None:
        wanted = run_on_arrow("SELECT DISTINCT usage_date FROM raw", raw=raw)
    ids = run_on_arrow(event_ids_sql("raw", "days"), raw=raw, days=wanted)
    winners = run_on_arrow(winners_sql("raw", "ids"), raw=raw, ids=ids)
    return run_on_arrow(on_days_sql("winners", "days"), winners=winners, days=wanted)
