"""The native billing CSV: the original system's six columns plus optional enrichments.

Required: event_id, usage_date, account_id, service_name, cost_usd.
Optional: ingestion_date or ingestion_ts (default: when the batch was loaded), region, pricing_model,
currency (default: the reporting currency), charge_category (default: usage), effective_cost_usd
(default: cost_usd), billing_account_id.

Every row is validated in SQL; a row with any problem goes to quarantine with all of its reasons.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from costlake.duck import sql_string
from costlake.errors import InputError
from costlake.sources import sql_text
from costlake.sources.base import BatchContext, Source, read_header

REQUIRED = ("event_id", "usage_date", "account_id", "service_name", "cost_usd")
OPTIONAL = (
    "ingestion_date",
    "ingestion_ts",
    "region",
    "pricing_model",
    "currency",
    "charge_category",
    "effective_cost_usd",
    "billing_account_id",
)
CHARGE_CATEGORIES = ("usage", "purchase", "tax", "credit", "adjustment")


def _text(column: str, present: set[str]) -> str:
    """The trimmed text of a column, NULL when blank or absent."""
    return f"NULLIF(trim({column}), '')" if column in present else "CAST(NULL AS VARCHAR)"


class NativeSource(Source):
    format = "native"
    description = "costlake's own CSV (the original system's columns)"

    @classmethod
    def matches(cls, header: list[str]) -> bool:
        return set(REQUIRED) <= set(header)

    @classmethod
    def expected(cls) -> str:
        return "columns " + ",".join(REQUIRED) + " (optional: " + ",".join(OPTIONAL) + ")"

    def parse(self, con: duckdb.DuckDBPyConnection, path: Path, ctx: BatchContext) -> None:
        header = read_header(path)
        missing = [c for c in REQUIRED if c not in header]
        if missing:
            raise InputError(
                f"{path}: missing required column(s) {', '.join(missing)}; expected {self.expected()}"
            )
        present = set(header) & set(REQUIRED + OPTIONAL)
        sql_text.install_macros(con)
        sql_text.load_text(con, path, header)
        sql_text.split_checked(con, _checked_sql(present, ctx))


def _checked_sql(present: set[str], ctx: BatchContext) -> str:
    """One row per source row with typed values and `reason` ('' when the row is good)."""
    cost = _text("cost_usd", present)
    billed, billed_reason = f"money({cost})", f"money_reason({cost}, 'cost_usd')"
    if "effective_cost_usd" in present:
        eff = _text("effective_cost_usd", present)
        effective = f"CASE WHEN {eff} IS NULL THEN {billed} ELSE money({eff}) END"
        eff_reason = f"CASE WHEN {eff} IS NOT NULL THEN money_reason({eff}, 'effective_cost_usd') END"
    else:
        effective, eff_reason = billed, "NULL"

    loaded = sql_text.loaded_at(ctx)
    if "ingestion_ts" in present:
        ing_col = "ingestion_ts"
    elif "ingestion_date" in present:
        ing_col = "ingestion_date"
    else:
        ing_col = None
    if ing_col:
        ing_text = _text(ing_col, present)
        ingestion = f"COALESCE(TRY_CAST({ing_text} AS TIMESTAMP), {loaded})"
        ing_reason = (
            f"CASE WHEN {ing_text} IS NOT NULL AND TRY_CAST({ing_text} AS TIMESTAMP) IS NULL "
            f"THEN '{ing_col} ' || quote_text({ing_text}) || ' is not a date or timestamp' END"
        )
    else:
        ingestion, ing_reason = loaded, "NULL"

    currency = f"COALESCE(upper({_text('currency', present)}), {sql_string(ctx.currency)})"

    category_text = f"lower({_text('charge_category', present)})"
    allowed = ", ".join(sql_string(c) for c in CHARGE_CATEGORIES)
    category = f"COALESCE({category_text}, 'usage')"
    category_reason = (
        f"CASE WHEN {category_text} IS NOT NULL AND {category_text} NOT IN ({allowed}) "
        f"THEN 'charge_category ' || quote_text({_text('charge_category', present)}) "
        f"|| ' is not one of {', '.join(CHARGE_CATEGORIES)}' END"
    )

    usage_text = _text("usage_date", present)
    date_reason = f"""CASE
        WHEN {usage_text} IS NULL THEN 'missing usage_date'
        WHEN NOT regexp_full_match({usage_text}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')
             OR TRY_CAST({usage_text} AS DATE) IS NULL
            THEN 'usage_date ' || quote_text({usage_text}) || ' is not a date (YYYY-MM-DD)'
    END"""

    reasons = ", ".join(
        [
            f"CASE WHEN {_text('event_id', present)} IS NULL THEN 'missing event_id' END",
            f"CASE WHEN {_text('account_id', present)} IS NULL THEN 'missing account_id' END",
            f"CASE WHEN {_text('service_name', present)} IS NULL THEN 'missing service_name' END",
            date_reason,
            billed_reason,
            eff_reason,
            ing_reason,
            sql_text.currency_reason(_text("currency", present), "currency", ctx.currency),
            category_reason,
        ]
    )
    original = ", ".join(f"{sql_string(c)}: {c}" for c in sorted(present))
    return f"""
    SELECT
        {sql_text.batch_columns(ctx, "native", ingestion)},
        {_text("event_id", present)} AS event_id,
        {_text("billing_account_id", present)} AS billing_account_id,
        {_text("account_id", present)} AS account_id,
        service_name,  -- kept as delivered; stage 1 trims and case-folds it
        {_text("region", present)} AS region,
        {_text("pricing_model", present)} AS pricing_model,
        {category} AS charge_category,
        TRY_CAST({usage_text} AS DATE) AS usage_date,
        {billed} AS billed_cost,
        {effective} AS effective_cost,
        {currency} AS currency,
        CAST(NULL AS VARCHAR) AS invoice_id,
        CAST(NULL AS DATE) AS billing_period_start,
        CAST(NULL AS VARCHAR) AS tags,
        concat_ws('; ', {reasons}) AS reason,
        CAST(to_json({{{original}}}) AS VARCHAR) AS raw_record
    FROM text_rows
    """
