"""The SQL that every billing source shares: loading a CSV as text, exact money, UTC dates, reasons.

A source loads its file with `load_text` (temp table `text_rows`), calls `install_macros` once on the
connection, builds a query over `text_rows` with one row per source row (the raw table's columns, the
batch's own from `batch_columns`, plus `reason`, '' when the row is good), and hands it to `split_checked`.

Macros (temp, per connection):
  quote_text(x)          x cut to 60 characters, in single quotes: an offending value inside a reason
  plain_number(t)        the plain decimal text of a number, NULL if t is not one; E-notation ('1.81E-8')
                         is expanded digit by digit, never through a float (`exponent := false` refuses it)
  money(t)               t as DECIMAL(38,12), NULL when money_reason(t, ...) is not NULL
  money_reason(t, label) NULL when t is good money, else why not: missing, not a decimal number, more than
                         12 decimal places (extra digits are fine when they are zeros), too large
  utc_date(t)            the UTC date of an ISO 8601 timestamp (`T` or space, optional seconds and fraction,
                         `Z`, `+HH`, `+HHMM`, `+HH:MM`, or no zone = UTC) or of a bare YYYY-MM-DD; NULL if
                         t is neither. Plain arithmetic on TIMESTAMP: the session's TimeZone plays no part.
Macro arguments are trimmed text, NULL for a blank value.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import duckdb

from costlake.duck import sql_string
from costlake.errors import InputError
from costlake.sources.base import BatchContext
from costlake.tables import MONEY_SQL, QUARANTINE, RAW

# A number: optional sign, digits, optional fraction, optional exponent (at most three digits).
_NUMBER = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?"
_E_PARTS = r"^([+-]?)([0-9]*)\.?([0-9]*)[eE]([+-]?[0-9]+)$"  # of a number in E-notation
# An ISO 8601 timestamp: date, time, zone.
_TIMESTAMP = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[T ]([0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?))?"
    r" ?([Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?$"
)
# A macro's argument is pasted in wherever the macro names it, so a costly argument named twice would be
# computed twice: `[... FOR sql_text_v IN [costly]][1]` computes it once.
_MACROS = f"""
CREATE OR REPLACE TEMP MACRO quote_text(x) AS chr(39) || left(x, 60) || chr(39);
-- sign and digits times 10^shift, as plain decimal text
CREATE OR REPLACE TEMP MACRO sql_text_shift(sign, digits, shift) AS CASE WHEN shift >= 0
    THEN sign || digits || repeat('0', shift)
    ELSE sign || [left(sql_text_d, length(sql_text_d) + shift) || '.' || right(sql_text_d, -shift)
                  FOR sql_text_d IN [lpad(digits, CAST(greatest(length(digits), 1 - shift) AS INTEGER),
                                          '0')]][1]
    END;
CREATE OR REPLACE TEMP MACRO plain_number(t, exponent := true) AS CASE
    WHEN NOT regexp_full_match(t, '{_NUMBER}') THEN NULL
    WHEN NOT (contains(t, 'e') OR contains(t, 'E')) THEN t
    WHEN NOT exponent THEN NULL
    ELSE [sql_text_shift(sql_text_e.sign, sql_text_e.whole || sql_text_e.frac,
                         CAST(sql_text_e.exp AS INTEGER) - length(sql_text_e.frac))
          FOR sql_text_e IN [regexp_extract(t, '{_E_PARTS}', ['sign', 'whole', 'frac', 'exp'])]][1]
    END;
-- Whether a digit other than 0 follows the 12th decimal place of a plain number. When none does, the
-- cast to DECIMAL(38,12) is exact, and it fails only for more than 26 digits before the point.
CREATE OR REPLACE TEMP MACRO sql_text_extra(p) AS
    strpos(p, '.') > 0 AND rtrim(substr(p, strpos(p, '.') + 13), '0') <> '';
CREATE OR REPLACE TEMP MACRO money(t, exponent := true) AS [
    CASE WHEN NOT sql_text_extra(sql_text_p) THEN TRY_CAST(sql_text_p AS {MONEY_SQL}) END
    FOR sql_text_p IN [plain_number(t, exponent := exponent)]][1];
CREATE OR REPLACE TEMP MACRO money_reason(t, label, exponent := true) AS [CASE
    WHEN t IS NULL THEN 'missing ' || label
    WHEN sql_text_p IS NULL THEN label || ' ' || quote_text(t) || ' is not a decimal number'
    WHEN sql_text_extra(sql_text_p) THEN label || ' ' || quote_text(t) || ' has more than 12 decimal places'
    WHEN TRY_CAST(sql_text_p AS {MONEY_SQL}) IS NULL
        THEN label || ' ' || quote_text(t) || ' is too large for {MONEY_SQL}'
    END FOR sql_text_p IN [plain_number(t, exponent := exponent)]][1];
-- Minutes east of UTC of a zone: '' or Z is 0, else +HH, +HHMM or +HH:MM.
CREATE OR REPLACE TEMP MACRO sql_text_offset(z) AS CASE WHEN z IN ('', 'Z', 'z') THEN 0
    ELSE (CASE WHEN z[1] = '-' THEN -1 ELSE 1 END)
         * (CAST(z[2:3] AS INTEGER) * 60
            + CASE WHEN length(z) > 3 THEN CAST(right(z, 2) AS INTEGER) ELSE 0 END)
    END;
CREATE OR REPLACE TEMP MACRO utc_date(t) AS [CASE WHEN sql_text_ts.day <> '' THEN CAST(
        TRY_CAST(sql_text_ts.day || ' ' || COALESCE(NULLIF(sql_text_ts.clock, ''), '00:00') AS TIMESTAMP)
        - to_minutes(sql_text_offset(sql_text_ts.zone)) AS DATE) END
    FOR sql_text_ts IN [regexp_extract(t, '{_TIMESTAMP}', ['day', 'clock', 'zone'])]][1];
"""


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create the shared macros (above) on `con`; calling it again is harmless."""
    con.execute(_MACROS)


def load_text(
    con: duckdb.DuckDBPyConnection, path: Path, header: list[str], positions: Iterable[int] | None = None
) -> None:
    """Temp table `text_rows`: every field as VARCHAR and `source_row`, the row's place in the file.

    Columns are named after `header`, which must not repeat a name; with `positions` (for headers that
    may) only the columns at those indexes are kept, named c<index>. A repeated name or a malformed file
    (wrong field count, unterminated quote) is a one-line InputError.
    """
    declared = ", ".join(f"{sql_string(f'c{i}')}: 'VARCHAR'" for i in range(len(header)))
    if positions is None:
        dupes = sorted({c for c in header if header.count(c) > 1})
        if dupes:
            raise InputError(f"{path}: column(s) {', '.join(dupes)} appear more than once in the header")
        kept = ", ".join(f'c{i} AS "{name}"' for i, name in enumerate(header))
    else:
        kept = ", ".join(f"c{i}" for i in sorted(set(positions)))
    try:
        con.execute(
            f"""CREATE OR REPLACE TEMP TABLE text_rows AS
            SELECT row_number() OVER () AS source_row, {kept}
            FROM read_csv({sql_string(str(path))}, header = true, auto_detect = false,
                          columns = {{{declared}}}, delim = ',', quote = '"', escape = '"',
                          strict_mode = true)"""
        )
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{path}: malformed CSV: {first}") from None


def missing_reason(text: str, label: str) -> str:
    """`missing <label>` when the column is NULL (blank or absent), else NULL."""
    return f"CASE WHEN {text} IS NULL THEN {sql_string('missing ' + label)} END"


def money_checks(text: str, label: str, *, exponent: bool = True) -> tuple[str, str]:
    """(value, reason) of a money column: the exact amount, and why it is refused (NULL when fine).
    `exponent=False` refuses E-notation, for formats whose spec allows plain decimals only."""
    flag = "" if exponent else ", exponent := false"
    return f"money({text}{flag})", f"money_reason({text}, {sql_string(label)}{flag})"


def optional_money(text: str, label: str, default: str, *, exponent: bool = True) -> tuple[str, str]:
    """(value, reason) of a money column whose NULL means `default` (the value of another column)."""
    value, reason = money_checks(text, label, exponent=exponent)
    return (
        f"CASE WHEN {text} IS NULL THEN {default} ELSE {value} END",
        f"CASE WHEN {text} IS NOT NULL THEN {reason} END",
    )


def choice_reason(text: str, label: str, allowed: Sequence[str], *, missing: str | None = None) -> str:
    """The reason a value is refused (NULL when fine): not one of `allowed`, compared case-insensitively.
    A NULL `text` is `missing <missing>`, or fine when `missing` is None (the column has a default)."""
    blank = "NULL" if missing is None else sql_string("missing " + missing)
    lowered = ", ".join(sql_string(value.lower()) for value in allowed)
    not_one_of = sql_string(" is not one of " + ", ".join(allowed))
    return f"""CASE
        WHEN {text} IS NULL THEN {blank}
        WHEN lower({text}) NOT IN ({lowered})
            THEN {sql_string(label + " ")} || quote_text({text}) || {not_one_of}
    END"""


def date_reason(text: str, label: str, problem: str) -> str:
    """The reason a timestamp column is refused (NULL when fine): missing, or `<label> '<v>' <problem>`."""
    return f"""CASE
        WHEN {text} IS NULL THEN {sql_string("missing " + label)}
        WHEN utc_date({text}) IS NULL
            THEN {sql_string(label + " ")} || quote_text({text}) || {sql_string(" " + problem)}
    END"""


def currency_reason(text: str, label: str, reporting: str, *, missing: str | None = None) -> str:
    """The reason a currency code is refused (NULL when fine): not three letters (named `label`), or not
    the `reporting` currency, which needs FX rates. A NULL `text` is `missing <missing>`, or fine when
    `missing` is None (the column has a default)."""
    code = f"upper({text})"
    blank = "NULL" if missing is None else sql_string("missing " + missing)
    return f"""CASE
        WHEN {text} IS NULL THEN {blank}
        WHEN NOT regexp_full_match({code}, '[A-Z]{{3}}')
            THEN {sql_string(label + " ")} || quote_text({text}) || ' is not an ISO 4217 code'
        WHEN {code} <> {sql_string(reporting)} THEN 'currency ' || {code} || ', no FX rates configured'
    END"""


def loaded_at(ctx: BatchContext) -> str:
    """When the batch was loaded, as a TIMESTAMP literal."""
    return f"TIMESTAMP {sql_string(ctx.loaded_at.strftime('%Y-%m-%d %H:%M:%S.%f'))}"


def batch_columns(ctx: BatchContext, source_format: str, ingestion_ts: str | None = None) -> str:
    """The raw columns that come from the batch, batch_id to load_date, for a query over `text_rows`;
    `ingestion_ts` defaults to when the batch was loaded."""
    return f"""{sql_string(ctx.batch_id)} AS batch_id,
        CAST({ctx.batch_seq} AS BIGINT) AS batch_seq,
        {sql_string(source_format)} AS source_format,
        {sql_string(ctx.source_file)} AS source_file,
        CAST(source_row AS BIGINT) AS source_row,
        {ingestion_ts or loaded_at(ctx)} AS ingestion_ts,
        CAST({loaded_at(ctx)} AS DATE) AS load_date"""


def split_checked(con: duckdb.DuckDBPyConnection, checked_sql: str) -> None:
    """Temp tables `accepted` (raw columns, reason '') and `rejected` (quarantine columns) from the
    checked query; the intermediate tables, `text_rows` included, are dropped."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE checked AS {checked_sql}")
    for table, schema, test in (("accepted", RAW, "= ''"), ("rejected", QUARANTINE, "<> ''")):
        columns = ", ".join(schema.column_names)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {columns} FROM checked WHERE reason {test}"
        )
    con.execute("DROP TABLE checked")
    con.execute("DROP TABLE text_rows")
