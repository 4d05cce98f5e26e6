"""Dimensions built from what was seen: the new raw rows merged with the current dimension rows.

Merges are order-independent (min, max, and fixed preferences), so the same inputs give the same
dimensions whatever order the files came in:

- a service's display spelling: a mixed-case spelling if any was seen, else the smallest;
- a name a billing file gives (an account's FOCUS SubAccountName or CUR account name, a service's CUR
  product name): the name billed on the latest usage date; on a tie the smallest name (then source
  format). Each dimension row keeps that date next to the name, so a later batch compares with it and
  the result is the same whichever batch came first (a name is never forgotten: dimensions only grow);
- an account's name from a tenants file (`account_name_source = 'tenants'`, or a name on a row written
  before the column existed, when a tenants file was the only source) wins over every billing name.

Names are stored as delivered; the name policy (costlake.text.names) decides where they may be shown.
"""

from __future__ import annotations

from costlake.tables import UNASSIGNED_TENANT

# An account row whose name came from a tenants file.
_TENANTS_NAMED = "d.account_name IS NOT NULL AND COALESCE(d.account_name_source, 'tenants') = 'tenants'"


def _latest_name(names: str, key: str, name: str, extra: str = "") -> str:
    """The preferred row of `names` per `key`: latest `<name>_date`, then smallest name (and `extra`)."""
    return f"""SELECT * FROM (
        SELECT *, row_number() OVER (
            PARTITION BY {key} ORDER BY {name}_date DESC NULLS LAST, {name}{extra}) AS preference
        FROM ({names}) AS names
    ) AS ranked_names WHERE preference = 1"""


def dim_account_sql(new_raw: str, current: str) -> str:
    billed_names = f"""
        SELECT account_id, account_name, source_format AS account_name_source,
               max(usage_date) AS account_name_date
        FROM {new_raw} WHERE account_name IS NOT NULL GROUP BY account_id, account_name, source_format
        UNION ALL
        SELECT account_id, account_name, account_name_source, account_name_date FROM {current} AS d
        WHERE d.account_name IS NOT NULL AND NOT ({_TENANTS_NAMED})"""
    best = _latest_name(billed_names, "account_id", "account_name", ", account_name_source")
    return f"""
    WITH seen AS (
        SELECT account_id, min(billing_account_id) AS billing_account_id,
               min(usage_date) AS first_usage_date, max(usage_date) AS last_usage_date,
               max(ingestion_ts) AS last_ingestion_ts
        FROM {new_raw} GROUP BY account_id
    ), merged AS (
        SELECT COALESCE(d.account_id, s.account_id) AS account_id, d.account_name, d.account_name_source,
               d.account_name_date, d.tenant_id, d.billing_account_id AS d_billing_account_id,
               s.billing_account_id AS s_billing_account_id,
               least(d.first_usage_date, s.first_usage_date) AS first_usage_date,
               greatest(d.last_usage_date, s.last_usage_date) AS last_usage_date,
               greatest(d.last_ingestion_ts, s.last_ingestion_ts) AS last_ingestion_ts
        FROM {current} AS d FULL OUTER JOIN seen AS s ON d.account_id = s.account_id
    )
    SELECT d.account_id,
           CASE WHEN {_TENANTS_NAMED} THEN d.account_name ELSE b.account_name END AS account_name,
           -- An owner from a tenants file wins; else the billing account (FOCUS, CUR) owns it.
           COALESCE(NULLIF(d.tenant_id, '{UNASSIGNED_TENANT}'), d.s_billing_account_id, '{UNASSIGNED_TENANT}')
               AS tenant_id,
           least(d.d_billing_account_id, d.s_billing_account_id) AS billing_account_id,
           d.first_usage_date, d.last_usage_date, d.last_ingestion_ts,
           CASE WHEN {_TENANTS_NAMED} THEN 'tenants' ELSE b.account_name_source END AS account_name_source,
           CASE WHEN {_TENANTS_NAMED} THEN NULL ELSE b.account_name_date END AS account_name_date
    FROM merged AS d LEFT JOIN ({best}) AS b ON b.account_id = d.account_id
    ORDER BY account_id"""


def dim_service_sql(new_raw: str, current: str) -> str:
    """Key: trimmed, lower-cased name. Display: a mixed-case spelling if any was seen, else the
    smallest spelling, so `AmazonEC2` wins over `AMAZONEC2` and ` amazonec2 `. Product name: the
    latest billed one (module docstring)."""
    products = f"""
        SELECT lower(trim(service_name)) AS service_name, product_name,
               max(usage_date) AS product_name_date
        FROM {new_raw} WHERE product_name IS NOT NULL GROUP BY 1, 2
        UNION ALL
        SELECT service_name, product_name, product_name_date FROM {current} WHERE product_name IS NOT NULL"""
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
    SELECT r.service_name, r.display_name, r.first_usage_date, r.last_usage_date,
           p.product_name, p.product_name_date
    FROM ranked AS r LEFT JOIN ({_latest_name(products, "service_name", "product_name")}) AS p
      ON p.service_name = r.service_name
    WHERE r.preference = 1 ORDER BY r.service_name"""


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
