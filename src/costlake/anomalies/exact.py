"""Exact decimals of whole series straight from the lake: the reference input of the evaluation,
the tests and `costlake plot` (`job.load_series`). Detection itself reads its exact decimals from
the scans of its batches (frame.py)."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa

from costlake.anomalies.frame import NONE_VALUE, blank, detection_keys
from costlake.duck import to_arrow

Key = tuple[str, str]
Exact = tuple[list[Decimal], dict[tuple[str, str], list[Decimal]]]


def exact_series(con: duckdb.DuckDBPyConnection, keys: pa.Table) -> dict[Key, Exact]:
    """Exact daily totals and parts (every dimension) of the series `keys` (rows of
    `frame.series_keys`), index 0 at each series' first day, None before the day it was loaded from."""
    with detection_keys(con, keys, np.ones(keys.num_rows, dtype=bool)):
        totals = to_arrow(con, _EXACT_TOTALS)
        parts = to_arrow(con, _EXACT_PARTS.format(none=NONE_VALUE))
    out: dict[Key, Exact] = {}
    series: list[Exact] = []
    shape: list[tuple[int, range]] = []
    for k in keys.to_pylist():
        length = (k["last_day"] - k["first_day"]).days + 1
        days = range((k["from_day"] - k["first_day"]).days, length)
        shape.append((length, days))
        series.append((blank(length, days), {}))
        out[(k["account_id"], k["service_name"])] = series[-1]
    for row, day, cost in zip(*(totals.column(c).to_pylist() for c in ("row", "day", "cost")), strict=True):
        series[row][0][day] = cost
    columns = (parts.column(c).to_pylist() for c in ("row", "day", "dimension", "value", "cost"))
    for row, day, dimension, value, cost in zip(*columns, strict=True):
        found = series[row][1]
        if (dimension, value) not in found:
            found[(dimension, value)] = blank(*shape[row])
        found[(dimension, value)][day] = cost
    return out


_EXACT_TOTALS = """
    SELECT k.row, CAST(date_diff('day', k.first_day, t.usage_date) AS BIGINT) AS day, t.total_cost_usd AS cost
    FROM account_service_day_cost t JOIN detection_keys k USING (account_id, service_name)
    WHERE t.usage_date BETWEEN k.from_day AND k.last_day"""

# One scan for every dimension, grouped as frame._PARTS_SQL groups them.
_EXACT_PARTS = """
    SELECT row, day, dimension, value, cost FROM (
        SELECT row, day,
               CASE WHEN GROUPING(region) = 0 THEN 'region'
                    WHEN GROUPING(pricing_model) = 0 THEN 'pricing_model'
                    WHEN GROUPING(charge_category) = 0 THEN 'charge_category'
                    ELSE 'usage_type' END AS dimension,
               COALESCE(region, pricing_model, charge_category, CAST(usage_type AS VARCHAR)) AS value,
               sum(billed_cost) AS cost
        FROM (
            SELECT k.row, CAST(date_diff('day', k.first_day, e.usage_date) AS BIGINT) AS day,
                   e.billed_cost, e.usage_type,
                   COALESCE(e.region, '{none}') AS region,
                   COALESCE(e.pricing_model, '{none}') AS pricing_model,
                   COALESCE(e.charge_category, '{none}') AS charge_category
            FROM normalized_billing_events e JOIN detection_keys k USING (account_id, service_name)
            WHERE e.usage_date BETWEEN k.from_day AND k.last_day
        ) AS e
        GROUP BY GROUPING SETS (
            (row, day, region), (row, day, pricing_model), (row, day, charge_category), (row, day, usage_type)
        )
    ) WHERE dimension <> 'usage_type' OR value IS NOT NULL"""
