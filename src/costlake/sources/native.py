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

from costlake.engines.duckdb_engine import sql_string
from costlake.errors import InputError
from costlake.lake.schemas import MONEY_SQL, QUARANTINE, RAW
from costlake.sources.base import BatchContext, Source, read_header, register_source

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

# A plain decimal: optional sign, digits, optional fraction. Scale and precision are checked apart
# so that the reason can say which limit was broken.
_DECIMAL_RE = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)"


def _text(column: str, present: set[str]) -> str:
    """The trimmed text of a column, NULL when blank or absent."""
    return f"NULLIF(trim({column}), '')" if column in present else "CAST(NULL AS VARCHAR)"


def _money_checks(column: str) -> tuple[str, str]:
    """(value expression, reason expression) for a money column holding text."""
    t = f"trim({column})"
    frac = f"length(split_part({t}, '.', 2))"
    whole = f"length(regexp_replace(split_part({t}, '.', 1), '[+-]', ''))"
    valid = f"regexp_full_match({t}, '{_DECIMAL_RE}')"
    value = f"CASE WHEN {valid} AND {frac} <= 12 AND {whole} <= 26 THEN CAST({t} AS {MONEY_SQL}) END"
    reason = f"""CASE
        WHEN {column} IS NULL OR {t} = '' THEN 'missing {column}'
        WHEN NOT {valid} THEN '{column} ' || quote_text({t}) || ' is not a decimal number'
        WHEN {frac} > 12 THEN '{column} ' || quote_text({t}) || ' has more than 12 decimal places'
        WHEN {whole} > 26 THEN '{column} ' || quote_text({t}) || ' is too large for DECIMAL(38,12)'
    END"""
    return value, reason


@register_source
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
        dupes = sorted({c for c in header if header.count(c) > 1})
        if dupes:
            raise InputError(f"{path}: column(s) {', '.join(dupes)} appear more than once in the header")
        present = set(header) & set(REQUIRED + OPTIONAL)
        # Quote a (shortened) offending value inside a reason.
        con.execute("CREATE OR REPLACE TEMP MACRO quote_text(x) AS chr(39) || left(x, 60) || chr(39)")
        _load_text(con, path, header)
        con.execute(f"CREATE OR REPLACE TEMP TABLE checked AS {_checked_sql(present, ctx)}")
        raw_cols = ", ".join(RAW.column_names)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE accepted AS SELECT {raw_cols} FROM checked WHERE reason = ''"
        )
        q_cols = ", ".join(QUARANTINE.column_names)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE rejected AS SELECT {q_cols} FROM checked WHERE reason <> ''"
        )
        con.execute("DROP TABLE checked")
        con.execute("DROP TABLE text_rows")


def _load_text(con: duckdb.DuckDBPyConnection, path: Path, header: list[str]) -> None:
    """Every field as text, numbered by its position in the file (insertion order is kept)."""
    columns = "{" + ", ".join(f"{sql_string(f'c{i}')}: 'VARCHAR'" for i in range(len(header))) + "}"
    renames = ", ".join(f'c{i} AS "{name}"' for i, name in enumerate(header))
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE text_rows AS
            SELECT row_number() OVER () AS source_row, {renames}
            FROM read_csv({sql_string(str(path))}, header = true, auto_detect = false, columns = {columns},
                          delim = ',', quote = '"', escape = '"', strict_mode = true)"""
        )
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{path}: malformed CSV: {first}") from None


def _checked_sql(present: set[str], ctx: BatchContext) -> str:
    """One row per source row with typed values and `reason` ('' when the row is good)."""
    billed, billed_reason = _money_checks("cost_usd")
    if "effective_cost_usd" in present:
        effective, eff_reason = _money_checks("effective_cost_usd")
        effective = (
            f"CASE WHEN NULLIF(trim(effective_cost_usd), '') IS NULL THEN {billed} ELSE {effective} END"
        )
        eff_reason = f"CASE WHEN NULLIF(trim(effective_cost_usd), '') IS NOT NULL THEN {eff_reason} END"
    else:
        effective, eff_reason = billed, "NULL"

    loaded = f"TIMESTAMP {sql_string(ctx.loaded_at.strftime('%Y-%m-%d %H:%M:%S.%f'))}"
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

    currency_text = f"upper({_text('currency', present)})"
    currency = f"COALESCE({currency_text}, {sql_string(ctx.currency)})"
    currency_reason = f"""CASE
        WHEN {currency_text} IS NULL THEN NULL
        WHEN NOT regexp_full_match({currency_text}, '[A-Z]{{3}}')
            THEN 'currency ' || quote_text({_text("currency", present)}) || ' is not an ISO 4217 code'
        WHEN {currency_text} <> {sql_string(ctx.currency)}
            THEN 'currency ' || {currency_text} || ', no FX rates configured'
    END"""

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
            currency_reason,
            category_reason,
        ]
    )
    original = ", ".join(f"{sql_string(c)}: {c}" for c in sorted(present))
    return f"""
    SELECT
        {sql_string(ctx.batch_id)} AS batch_id,
        CAST({ctx.batch_seq} AS BIGINT) AS batch_seq,
        'native' AS source_format,
        {sql_string(ctx.source_file)} AS source_file,
        CAST(source_row AS BIGINT) AS source_row,
        {ingestion} AS ingestion_ts,
        CAST({loaded} AS DATE) AS load_date,
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
