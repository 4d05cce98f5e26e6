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

    def text(column: str) -> str:
        return _text(column, present)

    billed, billed_reason = sql_text.money_checks(text("cost_usd"), "cost_usd")
    effective, eff_reason = _effective_cost(present, billed)
    ingestion, ing_reason = _ingestion(present, ctx)
    reasons = [
        *(sql_text.missing_reason(text(c), c) for c in ("event_id", "account_id", "service_name")),
        _usage_date_reason(text("usage_date")),
        billed_reason,
        eff_reason,
        ing_reason,
        sql_text.currency_reason(text("currency"), "currency", ctx.currency),
        sql_text.choice_reason(text("charge_category"), "charge_category", CHARGE_CATEGORIES),
    ]
    original = ", ".join(f"{sql_string(c)}: {c}" for c in sorted(present))
    return f"""
    SELECT
        {sql_text.batch_columns(ctx, "native", ingestion)},
        {text("event_id")} AS event_id,
        {text("billing_account_id")} AS billing_account_id,
        {text("account_id")} AS account_id,
        service_name,  -- kept as delivered; stage 1 trims and case-folds it
        {text("region")} AS region,
        {text("pricing_model")} AS pricing_model,
        COALESCE(lower({text("charge_category")}), 'usage') AS charge_category,
        TRY_CAST({text("usage_date")} AS DATE) AS usage_date,
        {billed} AS billed_cost,
        {effective} AS effective_cost,
        COALESCE(upper({text("currency")}), {sql_string(ctx.currency)}) AS currency,
        CAST(NULL AS VARCHAR) AS invoice_id,
        CAST(NULL AS DATE) AS billing_period_start,
        CAST(NULL AS VARCHAR) AS tags,
        concat_ws('; ', {", ".join(reasons)}) AS reason,
        CAST(to_json({{{original}}}) AS VARCHAR) AS raw_record
    FROM text_rows
    """


def _effective_cost(present: set[str], billed: str) -> tuple[str, str]:
    """(value, reason) of the effective cost: effective_cost_usd, or the billed cost where it is blank."""
    if "effective_cost_usd" not in present:
        return billed, "NULL"
    return sql_text.optional_money(_text("effective_cost_usd", present), "effective_cost_usd", billed)


def _ingestion(present: set[str], ctx: BatchContext) -> tuple[str, str]:
    """(value, reason) of ingestion_ts: the ingestion_ts column, else ingestion_date, else (and where
    blank) when the batch was loaded."""
    loaded = sql_text.loaded_at(ctx)
    column = next((c for c in ("ingestion_ts", "ingestion_date") if c in present), None)
    if column is None:
        return loaded, "NULL"
    value = _text(column, present)
    reason = (
        f"CASE WHEN {value} IS NOT NULL AND TRY_CAST({value} AS TIMESTAMP) IS NULL "
        f"THEN '{column} ' || quote_text({value}) || ' is not a date or timestamp' END"
    )
    return f"COALESCE(TRY_CAST({value} AS TIMESTAMP), {loaded})", reason


def _usage_date_reason(usage: str) -> str:
    """The reason usage_date is refused (NULL when fine): missing, or not a YYYY-MM-DD date."""
    return f"""CASE
        WHEN {usage} IS NULL THEN 'missing usage_date'
        WHEN NOT regexp_full_match({usage}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')
             OR TRY_CAST({usage} AS DATE) IS NULL
            THEN 'usage_date ' || quote_text({usage}) || ' is not a date (YYYY-MM-DD)'
    END"""
