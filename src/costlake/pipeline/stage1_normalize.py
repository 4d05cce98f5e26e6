"""Stage 1: canonical events, with the two replacement rules of the design.

Per-event formats (the native CSV; rows without a billing period): one event per `event_id`, the
winner being the row with the greatest (ingestion_ts, delivery_seq, source_row): a total order, so no
two rows tie and the result never depends on the engine or on file order. A row with `op = delete`
is a tombstone: when it wins, the event is retracted and no day holds it; a later upsert revives it,
an older one cannot.

Readings: `ingest --reparse` reads a delivered file again with the current parser, as a new batch
whose rows carry the first reading's batch_seq as `delivery_seq`. Only the latest reading of each
delivery counts (`readings_sql`), at the delivery's place in the total order: it replaces the earlier
reading's rows whatever their (possibly wrong) ingestion_ts. Without re-reads, delivery_seq is
batch_seq and every batch counts.

Period formats (FOCUS, CUR; rows with a `billing_period_start`): a delivery restates whole billing
periods, so the rows of the latest delivery (its counted reading) of each (source_format,
billing_account_id, billing_period_start) replace every earlier row of that period. A delivery that
came in parts (`ingest --parts`: a batch per file, one `delivery_group`) is one delivery here, every
part counted; a re-read part stays in its group. Correction rows
are ordinary rows of the delivery they arrive in and keep their own (possibly older) usage date.
Their rows (often hourly) are rolled up to one event per account, service, region, pricing model,
charge category, currency, invoice, usage type and day, with a stable id. A row without a usage type
(FOCUS, a CUR line item without one, a raw row written before the column existed) keeps the id it had
before usage types were read.

A run rebuilds a set of days from raw. For those days it takes every event that has a raw row dated
on one of them, finds each event's winner among *all* of its raw versions, and keeps the winners
dated on the rebuilt days. An event whose winner moved to another day leaves the rebuilt day; the
day it moved to is rebuilt too, because the planner adds the days of new rows (`touched_days_sql`).
The versions are ranked on a few columns only (`ranked_sql`); whole rows are read for the rebuilt
days alone, less the versions outranked (`latest_sql`). `steps` lists the relations in order.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pyarrow as pa

from costlake.duck import run_on_arrow
from costlake.tables import MONEY_SQL, NORMALIZED, RAW

ORDER = "ingestion_ts DESC, delivery_seq DESC, source_row DESC"
# A raw row that is not a retraction (NULL: a FOCUS/CUR row, or one written before `op` existed).
LIVE = "COALESCE(op, 'upsert') <> 'delete'"
# NULL inside a rolled-up event's key. No backslash: DuckDB reads '\N' as two characters, Spark as 'N'.
NULL_KEY = "'(null)'"
COLUMNS = ", ".join(NORMALIZED.column_names)
# The delivery a raw row belongs to: its delivery in parts, else the delivery its batch reads.
DELIVERY_KEY = "COALESCE(delivery_group, delivery_seq, batch_seq)"


def canonical_sql(raw: str) -> str:
    """Raw rows as canonical events: service names trimmed and case-folded to one key per service."""
    return f"""
    SELECT event_id, billing_account_id, account_id, lower(trim(service_name)) AS service_name,
           region, pricing_model, charge_category, usage_date, billed_cost, effective_cost, currency,
           invoice_id, billing_period_start, source_format, ingestion_ts, batch_id, batch_seq, source_row,
           usage_type, op, COALESCE(delivery_seq, batch_seq) AS delivery_seq,
           {DELIVERY_KEY} AS delivery_group
    FROM {raw}"""


def readings_sql(raw: str, incomplete: Sequence[int] = ()) -> str:
    """(batch_seq) of the batches whose rows count: the latest reading of each delivery, but none of
    the parts of a delivery still short of the parts it declared (`incomplete`, their batch_seq:
    `lake.batches.incomplete_deliveries`), so that the delivery before it still counts."""
    short = f"WHERE batch_seq NOT IN ({', '.join(str(int(s)) for s in incomplete)}) " if incomplete else ""
    return f"SELECT max(batch_seq) AS batch_seq FROM {raw} {short}GROUP BY COALESCE(delivery_seq, batch_seq)"


def counted_sql(raw: str, readings: str) -> str:
    """The raw rows of the counted readings (`readings_sql`), as a relation for the builders below."""
    return f"(SELECT * FROM {raw} WHERE batch_seq IN (SELECT batch_seq FROM {readings}))"


def touched_days_sql(new_raw: str, current: str) -> str:
    """Days whose content can change when `new_raw` arrives: the days of the new rows, the days where
    the current winners of the same events live (a correction can move an event away, a retraction
    removes it: a delete row has no day of its own), and the days of every billing period the new
    rows restate."""
    return f"""
    SELECT DISTINCT usage_date, reason FROM (
        SELECT usage_date, 'new rows' AS reason FROM {new_raw} WHERE usage_date IS NOT NULL
        UNION ALL
        SELECT usage_date, 'superseded rows' AS reason FROM {current}
        WHERE billing_period_start IS NULL AND event_id IN (SELECT event_id FROM {new_raw} WHERE {LIVE})
        UNION ALL
        SELECT usage_date, 'retracted events' AS reason FROM {current}
        WHERE billing_period_start IS NULL
          AND event_id IN (SELECT event_id FROM {new_raw} WHERE NOT ({LIVE}))
        UNION ALL
        SELECT c.usage_date, 'restated billing period' AS reason
        FROM {current} AS c
        JOIN (SELECT DISTINCT source_format, billing_account_id, billing_period_start FROM {new_raw}
              WHERE billing_period_start IS NOT NULL) AS p
          ON c.source_format = p.source_format AND c.billing_account_id = p.billing_account_id
         AND c.billing_period_start = p.billing_period_start
    ) AS days
    ORDER BY usage_date, reason"""


def replaced_days_sql(current: str, replaced: str, raw: str) -> str:
    """Days a re-read delivery can change beyond those of its new rows: where rows of the replaced
    reading (`replaced`: its raw rows) win now, and every day of an event it retracted (the re-read may
    no longer retract it, or retract it later than a version that then wins)."""
    return f"""
    SELECT DISTINCT usage_date, 'reparsed batch' AS reason FROM (
        SELECT usage_date FROM {current} WHERE batch_id IN (SELECT batch_id FROM {replaced})
        UNION ALL
        SELECT usage_date FROM {raw}
        WHERE usage_date IS NOT NULL AND billing_period_start IS NULL
          AND event_id IN (SELECT event_id FROM {replaced} WHERE NOT ({LIVE}))
    ) AS days
    ORDER BY usage_date"""


def day_events_sql(raw: str, days: str) -> str:
    """(event_id) of every event with a per-event raw row dated on one of `days`, once each."""
    return f"""
    SELECT DISTINCT event_id FROM {raw}
    WHERE billing_period_start IS NULL AND usage_date IN (SELECT usage_date FROM {days})"""


def event_ids_sql(ranked: str, days: str) -> str:
    """(usage_date, event_id) of every per-event raw row dated on one of `days`, from their events'
    `ranked_sql` (a pair once per such row)."""
    return f"SELECT usage_date, event_id FROM {ranked} WHERE usage_date IN (SELECT usage_date FROM {days})"


def ranked_sql(raw: str, events: str | None) -> str:
    """Every raw row of the events in `events` (None: of every event), whatever its day, ranked
    within its event by the total order (`outranked`: all but the winner), with only what tells
    winners and losers apart: the event, the row's day, its `op` and its place in raw (`batch_seq`,
    `source_row`: the raw table's grain). Ranking these few columns instead of whole rows is most of
    what a full rebuild at 10M events saves (docs/performance.md)."""
    # Every event with an id: the list of events (a DISTINCT of ids) never let a NULL one through either.
    wanted = (
        " AND event_id IS NOT NULL" if events is None else f" AND event_id IN (SELECT event_id FROM {events})"
    )
    return f"""
    SELECT event_id, usage_date, op, batch_seq, source_row,
           row_number() OVER (PARTITION BY event_id ORDER BY {ORDER}) > 1 AS outranked
    FROM ({canonical_sql(raw)}) AS events
    WHERE billing_period_start IS NULL{wanted}"""


def outside_days_sql(raw: str, days: str) -> str:
    """One row if some per-event raw row of `raw` is dated outside `days` (or not dated), none if
    `days` holds the day of every one: then every event has a row on those days, and `steps` ranks
    them all without first listing them (`every_day`)."""
    return f"""
    SELECT 1 AS outside FROM {raw}
    WHERE billing_period_start IS NULL
      AND (usage_date IS NULL OR usage_date NOT IN (SELECT usage_date FROM {days}))
    LIMIT 1"""


def winners_sql(ranked: str) -> str:
    """(event_id, usage_date, op) of each ranked event's winner (`ranked_sql`): a winning delete row
    is the event's tombstone (no day, no cost)."""
    return f"SELECT event_id, usage_date, op FROM {ranked} WHERE NOT outranked"


def latest_sql(raw: str, days: str, ranked: str) -> str:
    """Whole rows of the winners dated on one of `days`: the per-event raw rows of those days that
    no later row of their event outranks (`ranked_sql` of at least the events of those days), told
    by their place in raw: two integers (with the event id too, the anti-join took 2.7 times as long
    and 3 GiB more at 10M events). Raw damaged outside costlake, with a place in raw held twice,
    loses every row at that place here, which the gate's `events_accounted` reports."""
    return f"""
    SELECT {COLUMNS}, op FROM ({canonical_sql(raw)}) AS e
    WHERE billing_period_start IS NULL AND usage_date IN (SELECT usage_date FROM {days})
      AND NOT EXISTS (
          SELECT 1 FROM {ranked} AS r
          WHERE r.outranked AND r.batch_seq IS NOT DISTINCT FROM e.batch_seq
            AND r.source_row IS NOT DISTINCT FROM e.source_row
      )"""


def period_rows_sql(raw: str, days: str) -> str:
    """Rows of the latest delivery of every billing period with a raw row on one of `days`, rolled up
    per day, on those days. A delivery in parts (`delivery_group`) counts every part: rows of one key
    in several parts add up to one event, which names the earliest part's batch and row."""
    unit = "source_format, billing_account_id, billing_period_start"
    f = _key_field
    # concat_ws skips a NULL: an event without a usage type keeps the id it had before the column existed.
    key = (
        f"concat_ws('|', {f('billing_account_id')}, CAST(billing_period_start AS STRING), {f('account_id')}, "
        f"{f('service_name')}, COALESCE({f('region')}, {NULL_KEY}), "
        f"COALESCE({f('pricing_model')}, {NULL_KEY}), {f('charge_category')}, CAST(usage_date AS STRING), "
        f"{f('currency')}, COALESCE({f('invoice_id')}, {NULL_KEY}), {f('usage_type')})"
    )
    event = (
        "source_format, billing_account_id, billing_period_start, account_id, service_name, region, "
        "pricing_model, charge_category, usage_date, currency, invoice_id, usage_type"
    )
    return f"""
    WITH units AS (
        SELECT DISTINCT {unit} FROM {raw}
        WHERE billing_period_start IS NOT NULL AND usage_date IN (SELECT usage_date FROM {days})
    ), latest AS (
        SELECT r.source_format, r.billing_account_id, r.billing_period_start,
               max(COALESCE(r.delivery_group, r.delivery_seq, r.batch_seq)) AS delivery_group
        FROM {raw} AS r
        JOIN units AS u ON r.source_format = u.source_format AND r.billing_account_id = u.billing_account_id
                       AND r.billing_period_start = u.billing_period_start
        GROUP BY r.source_format, r.billing_account_id, r.billing_period_start
    ), delivered AS (
        SELECT e.* FROM ({canonical_sql(raw)}) AS e
        JOIN latest AS l ON e.source_format = l.source_format AND e.billing_account_id = l.billing_account_id
                        AND e.billing_period_start = l.billing_period_start
                        AND e.delivery_group = l.delivery_group
        WHERE e.usage_date IN (SELECT usage_date FROM {days})
    ), parts AS (
        SELECT {event}, batch_id AS part_batch, batch_seq AS part_seq, sum(billed_cost) AS part_billed,
               sum(effective_cost) AS part_effective, max(ingestion_ts) AS part_ts,
               min(source_row) AS part_row
        FROM delivered
        GROUP BY {event}, batch_id, batch_seq
    )
    SELECT source_format || ':' || md5({key}) AS event_id, billing_account_id, account_id, service_name,
           region, pricing_model, charge_category, usage_date,
           CAST(sum(part_billed) AS {MONEY_SQL}) AS billed_cost,
           CAST(sum(part_effective) AS {MONEY_SQL}) AS effective_cost,
           currency, invoice_id, billing_period_start, source_format,
           max(part_ts) AS ingestion_ts, min_by(part_batch, part_seq) AS batch_id,
           min(part_seq) AS batch_seq, min_by(part_row, part_seq) AS source_row, usage_type
    FROM parts
    GROUP BY {event}"""


def _key_field(column: str) -> str:
    """A text field of a rolled-up event's key (`period_rows_sql`), written so that no two events
    share a key: a value that holds the separator `|`, begins with `#` or is spelt as `NULL_KEY` is
    written as `#<its length>:<itself>` (service `a|b` in region `c` and service `a` in region `b|c`,
    or a region named `(null)` and no region, had one id, and the gate held their days back). Any
    other value, so every real provider's name, is written as it is and keeps the id it had."""
    return (
        f"CASE WHEN instr({column}, '|') > 0 OR substr({column}, 1, 1) = '#' OR {column} = {NULL_KEY} "
        f"THEN '#' || CAST(length({column}) AS STRING) || ':' || {column} ELSE {column} END"
    )


def on_days_sql(latest: str, days: str, period_rows: str | None = None) -> str:
    """The stage 1 content of the rebuilt days: live event winners dated there (`latest_sql`), plus
    period rows."""
    events = f"SELECT {COLUMNS} FROM {latest} WHERE usage_date IN (SELECT usage_date FROM {days}) AND {LIVE}"
    return (
        events if period_rows is None else f"{events}\n    UNION ALL\n    SELECT {COLUMNS} FROM {period_rows}"
    )


def steps(raw: str, days: str, *, every_day: bool = False) -> tuple[tuple[str, str], ...]:
    """(name, SQL) of each relation stage 1 of `days` is made of, in order, from the counted raw rows
    `raw` (`counted_sql`); the last, `s1`, is the stage's content. `winners` is what the gate checks
    every raw event of those days against (pipeline/gate.py). `every_day`: `days` holds the day of
    every per-event raw row (`outside_days_sql` finds none), so every event is ranked, and the list
    of the events of those days is not made (at a 10M-event full load, a DISTINCT of 10M ids and a
    semi-join with them)."""
    listed = () if every_day else (("day_events", day_events_sql(raw, days)),)
    return (
        *listed,
        ("ranked", ranked_sql(raw, None if every_day else "day_events")),
        ("raw_ids", event_ids_sql("ranked", days)),
        ("winners", winners_sql("ranked")),
        ("latest", latest_sql(raw, days, "ranked")),
        ("period_rows", period_rows_sql(raw, days)),
        ("s1", on_days_sql("latest", days, "period_rows")),
    )


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
    readings = run_on_arrow(readings_sql("raw"), raw=raw)
    raw = run_on_arrow(f"SELECT * FROM {counted_sql('raw', 'readings')}", raw=raw, readings=readings)
    tables = {"raw": raw, "days": wanted}
    for name, sql in steps("raw", "days"):
        tables[name] = run_on_arrow(sql, **tables)
    return tables["s1"]
