"""Dimensions built from what was seen: the new raw rows merged with the current dimension rows.

Merges are order-independent (min, max, and a fixed preference for a service's display spelling),
so the same inputs give the same dimensions whatever order the files came in.
"""

from __future__ import annotations

from costlake.tables import UNASSIGNED_TENANT


def dim_account_sql(new_raw: str, current: str) -> str:
    return f"""
    WITH seen AS (
        SELECT account_id, min(billing_account_id) AS billing_account_id,
               min(usage_date) AS first_usage_date, max(usage_date) AS last_usage_date,
               max(ingestion_ts) AS last_ingestion_ts
        FROM {new_raw} GROUP BY account_id
    )
    SELECT COALESCE(d.account_id, s.account_id) AS account_id,
           d.account_name,
           -- An owner from a tenants file wins; else the billing account (FOCUS, CUR) owns it.
           COALESCE(NULLIF(d.tenant_id, '{UNASSIGNED_TENANT}'), s.billing_account_id, '{UNASSIGNED_TENANT}')
               AS tenant_id,
           least(d.billing_account_id, s.billing_account_id) AS billing_account_id,
           least(d.first_usage_date, s.first_usage_date) AS first_usage_date,
           greatest(d.last_usage_date, s.last_usage_date) AS last_usage_date,
           greatest(d.last_ingestion_ts, s.last_ingestion_ts) AS last_ingestion_ts
    FROM {current} AS d FULL OUTER JOIN seen AS s ON d.account_id = s.account_id
    ORDER BY account_id"""


def dim_service_sql(new_raw: str, current: str) -> str:
    """Key: trimmed, lower-cased name. Display: a mixed-case spelling if any was seen, else the
    smallest spelling, so `AmazonEC2` wins over `AMAZONEC2` and ` amazonec2 `."""
    return f"""
    WITH spellings AS (
        SELECT lower(trim(service_name)) AS service_name, trim(service_name) AS display_name,
               min(usage_date) AS first_usage_date, max(usage_date) AS last_usage_date
        FROM {new_raw} GROUP BY 1, 2
        UNION ALL
        SELECT service_name, display_name, first_usage_date, last_usage_date FROM {current}
    ), ranked AS (
        SELECT service_name, display_name,
               min(first_usage_date) OVER (PARTITION BY service_name) AS first_usage_date,
               max(last_usage_date) OVER (PARTITION BY service_name) AS last_usage_date,
               row_number() OVER (
                   PARTITION BY service_name
                   ORDER BY CASE WHEN display_name <> upper(display_name)
                                  AND display_name <> lower(display_name) THEN 0 ELSE 1 END,
                            display_name
               ) AS preference
        FROM spellings
    )
    SELECT service_name, display_name, first_usage_date, last_usage_date
    FROM ranked WHERE preference = 1 ORDER BY service_name"""


def dim_seen_sql(column: str, new_raw: str, current: str) -> str:
    """A plain dimension of the distinct non-null values of `column` (region, pricing model)."""
    return f"""
    SELECT {column}, min(first_usage_date) AS first_usage_date, max(last_usage_date) AS last_usage_date
    FROM (
        SELECT {column}, usage_date AS first_usage_date, usage_date AS last_usage_date
        FROM {new_raw} WHERE {column} IS NOT NULL
        UNION ALL
        SELECT {column}, first_usage_date, last_usage_date FROM {current}
    ) AS seen
    GROUP BY {column} ORDER BY {column}"""
