"""The native billing CSV: the original system's six columns plus optional enrichments.

Required: event_id, usage_date, account_id, service_name, cost_usd.
Optional: ingestion_date or ingestion_ts (default: when the batch was loaded), region, pricing_model,
usage_type, currency (default: the reporting currency), charge_category (default: usage), effective_cost_usd
(default: cost_usd), billing_account_id, account_name (the account's display name; a tenants file's name
wins over it), op (`upsert`, the default, or `delete`: a retraction of the event, which needs only
event_id and its ingestion_ts or ingestion_date; its other fields are not read).

Every row is validated in SQL; a row with any problem goes to quarantine with all of its reasons. Beyond
the values themselves: event, account and billing account ids follow the identifier rule, every date and
time lies in the batch's date window, and no field is larger than the batch's limit (sources/sql_text.py;
docs/data_product.md lists every reason). Names are never refused for what they say.
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
    "op",
    "usage_type",
    "account_name",
)
CHARGE_CATEGORIES = ("usage", "purchase", "tax", "credit", "adjustment")
OPS = ("upsert", "delete")
# What a delete row keeps besides the batch columns: its event_id and ingestion_ts (the total order).
# Its other fields are not read: they may be empty, and are NULL in raw.
DELETE_CLEARS = (
    "billing_account_id",
    "account_id",
    "service_name",
    "region",
    "pricing_model",
    "charge_category",
    "usage_date",
    "billed_cost",
    "effective_cost",
    "currency",
    "usage_type",
    "account_name",
)


def _text(column: str, present: set[str]) -> str:
    """The trimmed text of a column, NULL when blank or absent."""
    return f"field_text({column})" if column in present else "CAST(NULL AS VARCHAR)"


class NativeSource(Source):
    format = "native"
    description = "costlake's own CSV (the original system's columns)"
    key_columns = ",".join(REQUIRED)

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
        sql_text.split_checked(con, _deletes_keep_keys(_checked_sql(present, header, ctx)))


def _checked_sql(present: set[str], header: list[str], ctx: BatchContext) -> str:
    """One row per source row with typed values and `reason` ('' when the row is good)."""

    def text(column: str) -> str:
        return _text(column, present)

    billed, _ = sql_text.money_checks(text("cost_usd"), "cost_usd")
    effective, _ = _effective_cost(present, billed)
    ingestion, _ = _ingestion(present, ctx)
    limit = ctx.limits.max_field_bytes
    original = ", ".join(f"{sql_string(c)}: {sql_text.kept_text(c, limit)}" for c in sorted(present))
    return f"""
    SELECT
        {sql_text.batch_columns(ctx, "native", ingestion, _op(present))},
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
        {text("usage_type")} AS usage_type,
        {text("account_name")} AS account_name,
        CAST(NULL AS VARCHAR) AS product_name,
        {_row_reason(present, header, ctx)} AS reason,
        CAST(to_json({{{original}}}) AS VARCHAR) AS raw_record
    FROM text_rows
    """


def _reasons(present: set[str], header: list[str], ctx: BatchContext) -> list[str]:
    """Why a row is refused, one expression per check (NULL when it passes), in the documented order."""

    def text(column: str) -> str:
        return _text(column, present)

    fields = {sql_text.sql_ident(name): name for name in header}
    return [
        sql_text.id_checks(text("event_id"), "event_id", required=True),
        _reserved_reason(text("event_id")),
        sql_text.id_checks(text("account_id"), "account_id", required=True),
        sql_text.missing_reason(text("service_name"), "service_name"),
        sql_text.id_checks(text("billing_account_id"), "billing_account_id", required=False),
        _usage_date_reason(text("usage_date"), ctx),
        sql_text.money_checks(text("cost_usd"), "cost_usd")[1],
        _effective_cost(present, "NULL")[1],
        _ingestion(present, ctx)[1],
        sql_text.currency_reason(text("currency"), "currency", ctx.currency),
        sql_text.choice_reason(text("charge_category"), "charge_category", CHARGE_CATEGORIES),
        sql_text.size_reason(fields, ctx.limits.max_field_bytes),
    ]


# Stage 1 names the events of period formats `<format>:<digest>`: a native id of that shape would count
# beside the FOCUS or CUR event of the same id, and be one id with two versions in stage 1.
RESERVED_PREFIXES = ("focus:", "cur:")


def _reserved_reason(event_id: str) -> str:
    """The reason a native event_id is refused for starting like a FOCUS or CUR event's (NULL if not)."""
    starts = " OR ".join(f"starts_with(lower({event_id}), {sql_string(p)})" for p in RESERVED_PREFIXES)
    shown = " or ".join(RESERVED_PREFIXES)
    return f"""CASE WHEN {starts} THEN 'event_id ' || quote_text({event_id})
        || {sql_string(f" starts with {shown}, which name the events of FOCUS and CUR files")} END"""


def _effective_cost(present: set[str], billed: str) -> tuple[str, str]:
    """(value, reason) of the effective cost: effective_cost_usd, or the billed cost where it is blank."""
    if "effective_cost_usd" not in present:
        return billed, "NULL"
    return sql_text.optional_money(_text("effective_cost_usd", present), "effective_cost_usd", billed)


def _ingestion(present: set[str], ctx: BatchContext) -> tuple[str, str]:
    """(value, reason) of ingestion_ts, row by row: the row's ingestion_ts, else its ingestion_date
    (midnight), else when the batch was loaded. A row whose ingestion_ts is blank keeps the date it
    gives: the load time would put an old version after every correction made before the load. A column
    is read, and checked, only where the one before it is blank. Both are read by the one timestamp
    parser of every source (sql_text.utc_timestamp): an offset is converted to UTC, no zone is UTC."""
    values: list[str] = []
    reasons: list[str] = []
    blank: list[str] = []  # the columns before this one, blank
    for column in (c for c in _TIME_COLUMNS if c in present):
        text = _text(column, present)
        value, reason = sql_text.timestamp_checks(text, column, ctx, required=False)
        values.append(value)
        reasons.append(f"CASE WHEN {' AND '.join(blank)} THEN {reason} END" if blank else reason)
        blank.append(f"{text} IS NULL")
    if not values:
        return sql_text.loaded_at(ctx), "NULL"
    joined = ", ".join(reasons)
    return (
        f"COALESCE({', '.join(values)}, {sql_text.loaded_at(ctx)})",
        f"NULLIF(concat_ws('; ', {joined}), '')",
    )


_TIME_COLUMNS = ("ingestion_ts", "ingestion_date")  # the ordering time's columns, the first given wins


def _usage_date_reason(usage: str, ctx: BatchContext) -> str:
    """The reason usage_date is refused (NULL when fine): missing, not a YYYY-MM-DD date, or outside the
    batch's date window."""
    return f"""CASE
        WHEN {usage} IS NULL THEN 'missing usage_date'
        WHEN NOT regexp_full_match({usage}, '[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}')
             OR TRY_CAST({usage} AS DATE) IS NULL
            THEN 'usage_date ' || quote_text({usage}) || ' is not a date (YYYY-MM-DD)'
        ELSE {sql_text.window_reason(f"TRY_CAST({usage} AS DATE)", usage, "usage_date", ctx)}
    END"""


def _op(present: set[str]) -> str:
    """The row's op, trimmed and lower-cased; `upsert` when blank or absent."""
    return f"COALESCE(lower({_text('op', present)}), 'upsert')"


def _row_reason(present: set[str], header: list[str], ctx: BatchContext) -> str:
    """Why a row is refused ('' when it is good). A delete row is checked for what it carries (event_id,
    its ordering time, field sizes); any other row for everything, and for a known `op`."""
    op = _text("op", present)
    upsert = [*_reasons(present, header, ctx), sql_text.choice_reason(op, "op", OPS)]
    delete = _delete_reasons(present, header, ctx)
    return f"""CASE WHEN lower({op}) = 'delete' THEN concat_ws('; ', {", ".join(delete)})
        ELSE concat_ws('; ', {", ".join(upsert)}) END"""


def _delete_reasons(present: set[str], header: list[str], ctx: BatchContext) -> list[str]:
    """Why a delete row is refused: a bad event_id, no ordering time (a delete without one could not be
    placed in the total order), a bad one, or a field over the size limit."""
    columns = [c for c in _TIME_COLUMNS if c in present]
    needs_time = sql_string("a delete row needs an ingestion_ts or ingestion_date column")
    if columns:
        missing = sql_string(f"missing {' and '.join(columns)} (a delete row needs its ordering time)")
        blank = " AND ".join(f"{_text(c, present)} IS NULL" for c in columns)
        needs_time = f"CASE WHEN {blank} THEN {missing} END"
    fields = {sql_text.sql_ident(name): name for name in header}
    return [
        sql_text.id_checks(_text("event_id", present), "event_id", required=True),
        _reserved_reason(_text("event_id", present)),
        needs_time,
        _ingestion(present, ctx)[1],
        sql_text.size_reason(fields, ctx.limits.max_field_bytes),
    ]


def _deletes_keep_keys(checked: str) -> str:
    """The checked rows with the fields of delete rows other than their keys set to NULL."""
    cleared = ", ".join(f"CASE WHEN op = 'delete' THEN NULL ELSE {c} END AS {c}" for c in DELETE_CLEARS)
    return f"SELECT * REPLACE ({cleared}) FROM ({checked}) AS checked_rows"
