"""The quality gate: per-partition checks over a run's stage outputs, before anything is committed.

Every check is SQL over named relations and returns rows (usage_date, check_name, severity, detail).
An `error` row holds its day back in every stage table; a `warning` is recorded and published.
The same checks run on demand over the published tables (`costlake validate`).

Inputs:
- `s1`, `s2`, `s3`: the stage outputs for the days being checked;
- `raw_ids`: (usage_date, event_id) of every raw row dated on those days (a pair may repeat);
- `raw_days`: the days of `raw_ids`, once each (`RAW_DAYS_SQL`, made into a table by the caller: with
  its true size known, DuckDB's joins with it build on its 90 rows of a 90-day load rather than on
  the 10M winners, which took 1.8 s of the gate's 3.9 s at 10M events);
- `winners`: (event_id, usage_date, op) of the winning version of each of those events, whatever its
  day (`op` 'delete': a tombstone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from costlake.engines.dialect import DUCKDB, Dialect

Severity = Literal["error", "warning"]
RAW_DAYS_SQL = "SELECT DISTINCT usage_date FROM raw_ids"


@dataclass(frozen=True)
class Finding:
    usage_date: object
    check: str
    severity: str
    detail: str


def _not_null(table: str, keys: Sequence[str]) -> str:
    nulls = " OR ".join(f"{k} IS NULL" for k in keys)
    return f"""
    SELECT usage_date, 'keys_not_null' AS check_name, 'error' AS severity,
           '{table}: ' || CAST(count(*) AS STRING) || ' row(s) with a null key ({", ".join(keys)})' AS detail
    FROM {table} WHERE {nulls} GROUP BY usage_date"""


def _unique(table: str, keys: Sequence[str]) -> str:
    cols = ", ".join(keys)
    return f"""
    SELECT usage_date, 'grain_unique' AS check_name, 'error' AS severity,
           '{table}: ' || CAST(count(*) AS STRING) || ' duplicated key(s) ({cols})' AS detail
    FROM (SELECT min(usage_date) AS usage_date FROM {table} GROUP BY {cols} HAVING count(*) > 1) AS dupes
    GROUP BY usage_date"""


def _reconcile() -> str:
    """Stage 1 = stage 2 = stage 3 per day, for billed cost, effective cost and event counts."""
    return """
    SELECT usage_date, 'reconciliation' AS check_name, 'error' AS severity,
           concat_ws(' / ', b1, b2, b3) || ' billed, ' || concat_ws(' / ', f1, f2, f3) || ' effective, '
           || concat_ws(' / ', n1, n2, n3) || ' events (stage 1 / 2 / 3)' AS detail
    FROM (
        SELECT usage_date,
               COALESCE(max(b1), 0) AS b1, COALESCE(max(b2), 0) AS b2, COALESCE(max(b3), 0) AS b3,
               COALESCE(max(f1), 0) AS f1, COALESCE(max(f2), 0) AS f2, COALESCE(max(f3), 0) AS f3,
               COALESCE(max(n1), 0) AS n1, COALESCE(max(n2), 0) AS n2, COALESCE(max(n3), 0) AS n3
        FROM (
            SELECT usage_date, sum(billed_cost) AS b1, sum(effective_cost) AS f1, count(*) AS n1,
                   NULL AS b2, NULL AS f2, NULL AS n2, NULL AS b3, NULL AS f3, NULL AS n3
            FROM s1 GROUP BY usage_date
            UNION ALL
            SELECT usage_date, NULL, NULL, NULL,
                   sum(total_cost_usd), sum(effective_cost_usd), sum(event_count), NULL, NULL, NULL
            FROM s2 GROUP BY usage_date
            UNION ALL
            SELECT usage_date, NULL, NULL, NULL, NULL, NULL, NULL,
                   sum(total_cost_usd), sum(effective_cost_usd), sum(event_count)
            FROM s3 GROUP BY usage_date
        ) AS per_stage
        GROUP BY usage_date
    ) AS sums
    WHERE NOT (b1 = b2 AND b2 = b3 AND f1 = f2 AND f2 = f3 AND n1 = n2 AND n2 = n3)"""


def _accounted() -> str:
    """Every raw event dated on a day has a winner, stage 1 holds each live winner of the day once,
    and a day whose raw events win there is not empty."""
    return """
    SELECT r.usage_date, 'events_accounted' AS check_name, 'error' AS severity,
           CAST(count(DISTINCT r.event_id) AS STRING) || ' raw event(s) of this day have no published version'
           AS detail
    FROM raw_ids AS r LEFT JOIN winners AS w ON w.event_id = r.event_id
    WHERE w.event_id IS NULL GROUP BY r.usage_date
    UNION ALL
    SELECT w.usage_date, 'events_accounted', 'error',
           CAST(w.won AS STRING) || ' winning event(s) of this day, '
           || CAST(s.held AS STRING) || ' in stage 1'
    FROM (
        SELECT usage_date, count(*) AS won FROM winners
        WHERE COALESCE(op, 'upsert') <> 'delete' AND usage_date IN (SELECT usage_date FROM raw_days)
        GROUP BY usage_date
    ) AS w
    JOIN (  -- the days of stage 1 (an empty one is `not_empty`'s), each with its per-event rows
        SELECT usage_date, sum(CASE WHEN billing_period_start IS NULL THEN 1 ELSE 0 END) AS held
        FROM s1 GROUP BY usage_date
    ) AS s ON s.usage_date = w.usage_date
    WHERE s.held <> w.won
    UNION ALL
    SELECT w.usage_date, 'not_empty', 'error',
           CAST(count(*) AS STRING) || ' winning event(s) but the stage 1 partition is empty'
    FROM winners AS w  -- DISTINCT: Spark would otherwise build its (null-aware) anti join on every row
    WHERE w.usage_date IN (SELECT usage_date FROM raw_days)
      AND w.usage_date NOT IN (SELECT DISTINCT usage_date FROM s1)
    GROUP BY w.usage_date"""


def _currency(currency: str, dialect: Dialect) -> str:
    return f"""
    SELECT usage_date, 'single_currency' AS check_name, 'error' AS severity,
           'currencies ' || {dialect.sorted_distinct_join("currency", ", ")}
           || {dialect.literal(f", expected {currency}")} AS detail
    FROM s1 GROUP BY usage_date
    HAVING count(DISTINCT currency) > 1 OR min(currency) <> {dialect.literal(currency)}"""


def _negative(severity: Severity, dialect: Dialect) -> str:
    entry = "account_id || ' ' || CAST(total_cost_usd AS STRING)"
    listing = dialect.join_ordered_by(entry, "account_id", ", ")
    return f"""
    SELECT usage_date, 'negative_daily_total' AS check_name, '{severity}' AS severity, {listing} AS detail
    FROM s3 WHERE total_cost_usd < 0 GROUP BY usage_date"""


def gate_sql(*, currency: str, negative_total: Severity, dialect: Dialect = DUCKDB) -> str:
    """All checks as one query: one row per failing (day, check), in the engine's `dialect`."""
    checks = [
        _not_null("s1", ["event_id", "account_id", "service_name", "usage_date"]),
        _unique("s1", ["event_id"]),
        _not_null("s2", ["account_id", "service_name", "usage_date"]),
        _unique("s2", ["account_id", "service_name", "usage_date"]),
        _not_null("s3", ["account_id", "usage_date"]),
        _unique("s3", ["account_id", "usage_date"]),
        _reconcile(),
        _accounted(),
        _currency(currency, dialect),
        _negative(negative_total, dialect),
    ]
    body = "\nUNION ALL\n".join(f"SELECT * FROM ({c}) AS c{i}" for i, c in enumerate(checks))
    # NULLS LAST spelled out: DuckDB sorts NULLs last by default, Spark first.
    return f"SELECT * FROM ({body}) AS findings ORDER BY usage_date NULLS LAST, check_name, detail"
