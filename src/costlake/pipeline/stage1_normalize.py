"""Stage 1: canonical events, one per `event_id`, the latest version winning.

The winner of an event is the row with the greatest (ingestion_ts, batch_seq, source_row): a total
order, so no two rows tie and the result never depends on the engine or on file order.

The stage is incremental and exact. The current winners already beat every older row, so the new
winner of an event is simply the best of its current winner and its new rows. The days that change
are the days of the new winners plus the days of the winners they displace (a correction can move an
event to another day or account: both days are rebuilt).
"""

from __future__ import annotations

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


def winners_sql(new_raw: str, current: str) -> str:
    """Events whose winner changes: the best of each event's new rows and its current winner,
    kept only when a new row wins."""
    return f"""
    SELECT {COLUMNS} FROM (
        SELECT *, row_number() OVER (PARTITION BY event_id ORDER BY {ORDER}) AS rank_in_event
        FROM (
            SELECT *, 1 AS is_new FROM ({canonical_sql(new_raw)}) AS fresh
            UNION ALL
            SELECT {COLUMNS}, 0 AS is_new FROM {current}
            WHERE event_id IN (SELECT event_id FROM {new_raw})
        ) AS candidates
    ) AS ranked
    WHERE rank_in_event = 1 AND is_new = 1"""


def affected_dates_sql(winners: str, current: str) -> str:
    """The days whose content changes: new winners' days and the days of the winners they displace."""
    return f"""
    SELECT DISTINCT usage_date FROM (
        SELECT usage_date FROM {winners}
        UNION ALL
        SELECT usage_date FROM {current} WHERE event_id IN (SELECT event_id FROM {winners})
    ) AS days
    ORDER BY usage_date"""


def output_sql(winners: str, current_partitions: str) -> str:
    """The affected days rebuilt: their current events minus the displaced ones, plus the winners."""
    return f"""
    SELECT {COLUMNS} FROM {current_partitions}
    WHERE event_id NOT IN (SELECT event_id FROM {winners})
    UNION ALL
    SELECT {COLUMNS} FROM {winners}"""


def normalize(new_raw: pa.Table, current: pa.Table | None = None) -> pa.Table:
    """Stage 1 as a pure function: new raw rows and the current stage-1 rows in, the rebuilt
    affected days out.

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
    current = NORMALIZED.arrow_schema().empty_table() if current is None else current
    inputs = {"new_raw": new_raw.cast(RAW.arrow_schema()), "current": current}
    winners = run_on_arrow(winners_sql("new_raw", "current"), **inputs)
    days = run_on_arrow(affected_dates_sql("winners", "current"), winners=winners, current=current)
    rebuilt = f"""
    SELECT * FROM ({output_sql("winners", "current")}) AS rebuilt
    WHERE usage_date IN (SELECT usage_date FROM days)"""
    return run_on_arrow(rebuilt, winners=winners, current=current, days=days)
