"""The SQL that every billing source shares: loading a CSV as text, exact money, UTC dates, reasons.

A source loads its file with `load_text` (temp view `text_rows`), calls `install_macros` once on the
connection, builds a query over `text_rows` with one row per source row (the raw table's columns, the
batch's own from `batch_columns`, plus `reason`, '' when the row is good), and hands it to `split_checked`.

Macros (temp, per connection):
  field_text(x)          x without the spaces trim() removes, NULL when blank: every source reads its
                         fields through it
  quote_text(x)          x cut to 60 characters, in single quotes (a quote inside doubled, control and
                         format characters as '?'): an offending value inside a reason
  plain_number(t)        the plain decimal text of a number, NULL if t is not one; E-notation ('1.81E-8')
                         is expanded digit by digit, never through a float (`exponent := false` refuses it)
  money(t)               t as DECIMAL(38,12), NULL when money_reason(t, ...) is not NULL (a plain amount
                         is cast directly, anything else goes through sql_text_any_money: the same value)
  money_reason(t, label) NULL when t is good money, else why not: missing, not a decimal number, more than
                         12 decimal places (extra digits are fine when they are zeros), too large
                         (not below 1e18 in absolute value: sums must fit DECIMAL(38,12))
  utc_timestamp(t)       the one timestamp parser of every source: an ISO 8601 timestamp converted to UTC
                         (a naive TIMESTAMP), NULL if t is not one. Accepted: YYYY-MM-DD, optionally
                         followed by `T` (or `t`, or a space) and HH:MM, HH:MM:SS or HH:MM:SS.fraction,
                         optionally followed by a zone: `Z`, `+HH`, `+HHMM` or `+HH:MM` (`-` too; hours
                         00-14, minutes 00-59). No zone means UTC. Plain arithmetic on TIMESTAMP: the
                         session's TimeZone plays no part. 'YYYY-MM-DD HH:MM:SS' (T for the space, Z
                         after it) is cast directly, anything else goes through sql_text_any_timestamp.
  utc_date(t)            the UTC date of utc_timestamp(t)
  id_reason(t, label)    NULL when t is a machine identifier (ID_RULE below), else why not
Macro arguments are trimmed text, NULL for a blank value.

The Python builders return (value, reason) SQL pairs; the limits of a batch (a plausible date window, the
size of a field) come from its BatchContext.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import duckdb

from costlake.duck import interruptible, sql_ident, sql_string
from costlake.errors import InputError
from costlake.sources import input_files
from costlake.sources.base import BatchContext
from costlake.sources.identifiers import ID_CHARS, ID_RULE, MAX_ID_CHARS
from costlake.tables import MONEY_SQL, QUARANTINE, RAW
from costlake.text.terminal import shortened

# A number: optional sign, digits, optional fraction, optional exponent (at most three digits).
_NUMBER = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,3})?"
_E_PARTS = r"^([+-]?)([0-9]*)\.?([0-9]*)[eE]([+-]?[0-9]+)$"  # of a number in E-notation
# An ISO 8601 timestamp: a date, then optionally a time and then optionally a zone.
_TIMESTAMP = (
    r"^([0-9]{4}-[0-9]{2}-[0-9]{2})(?:[Tt ]([0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]+)?)?)"
    r" ?([Zz]|[+-](?:0[0-9]|1[0-4])(?::?[0-5][0-9])?)?)?$"
)
TIMESTAMP_FORM = "YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM]"
# Shapes the macros take a short way for (see money and utc_timestamp below); anything else goes the
# general way, which gives these the same result.
_PLAIN_AMOUNT = r"[+-]?[0-9]{1,17}(\.[0-9]{0,12})?"
_SECONDS_UTC = r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}[Zz]?"
# A macro's argument is pasted in wherever the macro names it, so a costly argument named twice would be
# computed twice: `[... FOR sql_text_v IN [costly]][1]` computes it once.
MONEY_LIMIT = 10**18  # the largest |amount| of one row, exclusive (see the macro sql_text_money)
MONEY_LIMIT_TEXT = "1e18"
# What a quoted value in a reason may not hold: control, format and line or paragraph separator characters.
_NOT_TEXT = r"[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]"
_MACROS = f"""
-- A field's text without the spaces trim() removes (U+0020 and the other Unicode space separators),
-- NULL when blank. A field that begins and ends with a printable ASCII character, which trim() never
-- removes, is passed as it is, without the copy trim() makes (10M ids: 0.37 s -> 0.20 s).
CREATE OR REPLACE TEMP MACRO field_text(x) AS CASE
    WHEN ord(x) BETWEEN 33 AND 126 AND ord(right(x, 1)) BETWEEN 33 AND 126 THEN x
    ELSE NULLIF(trim(x), '')
    END;
-- Control and format characters (newlines, terminal escapes, bidirectional overrides) become '?': a
-- reason is one line of plain text. A quote inside is doubled, as SQL writes it, so that whoever reads
-- the reason (ingest's summary of them) knows where the value ends.
CREATE OR REPLACE TEMP MACRO quote_text(x) AS
    chr(39) || replace(regexp_replace(left(x, 60), '{_NOT_TEXT}', '?', 'g'), chr(39), chr(39) || chr(39))
    || chr(39);
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
-- A single amount is at most {MONEY_LIMIT_TEXT} in absolute value, far above any bill, so that sums of a
-- hundred million of them still fit DECIMAL(38,12) (26 digits before the point).
CREATE OR REPLACE TEMP MACRO sql_text_money(p) AS [
    CASE WHEN abs(sql_text_m) < {MONEY_LIMIT} THEN sql_text_m END
    FOR sql_text_m IN [TRY_CAST(p AS {MONEY_SQL})]][1];
-- Any text as money (the general way).
CREATE OR REPLACE TEMP MACRO sql_text_any_money(t, exponent := true) AS [
    CASE WHEN NOT sql_text_extra(sql_text_p) THEN sql_text_money(sql_text_p) END
    FOR sql_text_p IN [plain_number(t, exponent := exponent)]][1];
-- A plain amount with at most 17 digits before the point and 12 after it (nearly every amount) is
-- cast as it is: the general way would find it a number without extra digits, below the limit, and
-- cast the same text (10M amounts: 1.41 s -> 0.62 s).
CREATE OR REPLACE TEMP MACRO money(t, exponent := true) AS CASE
    WHEN regexp_full_match(t, '{_PLAIN_AMOUNT}') THEN TRY_CAST(t AS {MONEY_SQL})
    ELSE sql_text_any_money(t, exponent := exponent)
    END;
CREATE OR REPLACE TEMP MACRO money_reason(t, label, exponent := true) AS [CASE
    WHEN t IS NULL THEN 'missing ' || label
    WHEN sql_text_p IS NULL THEN label || ' ' || quote_text(t) || ' is not a decimal number'
    WHEN sql_text_extra(sql_text_p) THEN label || ' ' || quote_text(t) || ' has more than 12 decimal places'
    WHEN TRY_CAST(sql_text_p AS {MONEY_SQL}) IS NULL
        THEN label || ' ' || quote_text(t) || ' is too large for {MONEY_SQL}'
    WHEN sql_text_money(sql_text_p) IS NULL
        THEN label || ' ' || quote_text(t)
             || ' is not below {MONEY_LIMIT_TEXT} in absolute value (no bill is)'
    END FOR sql_text_p IN [plain_number(t, exponent := exponent)]][1];
-- Minutes east of UTC of a zone: '' or Z is 0, else +HH, +HHMM or +HH:MM.
CREATE OR REPLACE TEMP MACRO sql_text_offset(z) AS CASE WHEN z IN ('', 'Z', 'z') THEN 0
    ELSE (CASE WHEN z[1] = '-' THEN -1 ELSE 1 END)
         * (CAST(z[2:3] AS INTEGER) * 60
            + CASE WHEN length(z) > 3 THEN CAST(right(z, 2) AS INTEGER) ELSE 0 END)
    END;
-- Any text as a UTC timestamp (the general way).
CREATE OR REPLACE TEMP MACRO sql_text_any_timestamp(t) AS [CASE WHEN sql_text_ts.day <> '' THEN
        TRY_CAST(sql_text_ts.day || ' ' || COALESCE(NULLIF(sql_text_ts.clock, ''), '00:00') AS TIMESTAMP)
        - to_minutes(sql_text_offset(sql_text_ts.zone)) END
    FOR sql_text_ts IN [regexp_extract(t, '{_TIMESTAMP}', ['day', 'clock', 'zone'])]][1];
-- The commonest form, a date and a time to the second in UTC ('2024-03-26 17:51:32', or with T and Z),
-- is cast without taking it apart with a regular expression: the same day and clock, the same cast, no
-- offset (10M timestamps: 1.35 s -> 0.77 s, or 1.03 s with T and Z).
CREATE OR REPLACE TEMP MACRO utc_timestamp(t) AS CASE
    WHEN regexp_full_match(t, '{_SECONDS_UTC}') THEN TRY_CAST(CASE
        WHEN strlen(t) = 19 AND substr(t, 11, 1) = ' ' THEN t
        ELSE left(t, 10) || ' ' || substr(t, 12, 8) END AS TIMESTAMP)
    ELSE sql_text_any_timestamp(t)
    END;
CREATE OR REPLACE TEMP MACRO utc_date(t) AS CAST(utc_timestamp(t) AS DATE);
CREATE OR REPLACE TEMP MACRO id_reason(t, label) AS CASE
    WHEN NOT regexp_full_match(t, '[{ID_CHARS}]+') OR left(t, 1) IN ('=', '+', '-', '@')
        THEN label || ' ' || quote_text(t) || ' is not an identifier ({ID_RULE})'
    WHEN length(t) > {MAX_ID_CHARS}
        THEN label || ' is ' || length(t) || ' characters long, over the {MAX_ID_CHARS} of an identifier'
    END;
"""


def install_macros(con: duckdb.DuckDBPyConnection) -> None:
    """Create the shared macros (above) on `con`; calling it again is harmless."""
    con.execute(_MACROS)


ROW_COLUMN = "source_row"  # `load_text`'s column of each row's place in the file


def load_text(
    con: duckdb.DuckDBPyConnection, path: Path, header: list[str], positions: Iterable[int] | None = None
) -> None:
    """Temp view `text_rows` (over the table `text_fields`): every field as VARCHAR and `source_row`,
    the row's place in the file.

    Columns are named after `header`, which must not repeat a name; with `positions` (for headers that
    may) only the columns at those indexes are kept, named c<index>. A repeated name or a malformed file
    (wrong field count, unterminated quote) is a one-line InputError. The file may be gzip or zstd CSV,
    or Parquet (its values as text): sources/input_files.py reads it.
    """
    if positions is None:
        dupes = sorted({c for c in header if header.count(c) > 1})
        if dupes:
            shown = ", ".join(shortened(name) for name in dupes[:10])
            more = f" and {len(dupes) - 10} more" if len(dupes) > 10 else ""
            raise InputError(f"{path}: column(s) {shown}{more} appear more than once in the header")
        if ROW_COLUMN in header:  # it would shadow each row's place in the file, which the checks read
            raise InputError(
                f"{path}: a column is named {ROW_COLUMN}, which costlake keeps for each row's place in the "
                "file; rename or remove it"
            )
        columns = list(range(len(header)))
        kept = ", ".join(f"c{i} AS {sql_ident(name)}" for i, name in enumerate(header))
    else:
        columns = sorted(set(positions))
        kept = ", ".join(f"c{i}" for i in columns)
    if con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0] is not True:
        raise ValueError(
            "load_text needs a connection that keeps insertion order (duck.connect(ordered=True))"
        )
    source = input_files.readable(path)
    install_macros(con)  # Parquet floats become text through plain_number
    # The fields are stored in file order under their positional names (c<i>: a column of the file named
    # `rowid` must not hide DuckDB's), and a CSV row's place in the file is its rowid. Numbering rows in
    # the query (row_number() OVER ()) read the file on one thread: 6.2 s against 3.1 s for 10M rows.
    stored = ", ".join(["source_row"] * source.parquet + [f"c{i}" for i in columns])
    number = "source_row" if source.parquet else "rowid + 1 AS source_row"
    fields = source.text_sql(con, len(header))
    try:
        # In a worker thread, so that Ctrl-C stops the read at once (duck.interruptible)
        read = f"CREATE OR REPLACE TEMP TABLE text_fields AS SELECT {stored} FROM ({fields})"
        interruptible(con, lambda: con.execute(read))
    except duckdb.Error as exc:
        mixed = _INVALID_STATE in str(exc) and input_files.mixed_line_endings(source)
        if mixed:
            raise InputError(
                f"{path}: malformed {source.label}: mixed line endings ({mixed}); costlake reads a CSV "
                "whose lines all end alike: convert it (dos2unix or unix2dos) and ingest it again"
            ) from None
        raise InputError(f"{path}: malformed {source.label}: {_read_error(exc)}") from None
    con.execute(f"CREATE OR REPLACE TEMP VIEW text_rows AS SELECT {number}, {kept} FROM text_fields")


# What DuckDB's strict CSV reader says, without a line number, of a file whose lines end in both LF and CRLF
_INVALID_STATE = "CSV Parser state machine reached an invalid state"
# What DuckDB's CSV reader says went wrong, after the line number and the (possibly huge) original line.
_CSV_PROBLEM = re.compile(
    r"Expected Number of Columns: \d+ Found: \d+|Value with unterminated quote found\."
    r"|Maximum line size of \d+ bytes exceeded\. Actual Size: ?\d+ bytes\.|Invalid unicode[^\n]*"
)


def _read_error(exc: duckdb.Error) -> str:
    """DuckDB's error in one short line: its first line and, for a CSV error, what was wrong (never the
    offending line's text, which may be megabytes of anything)."""
    text = str(exc).strip()
    first = text.splitlines()[0].removeprefix("Invalid Input Error: ")
    problem = _CSV_PROBLEM.search(text)
    return f"{first}: {problem.group(0)}" if problem else first


def missing_reason(text: str, label: str) -> str:
    """`missing <label>` when the column is NULL (blank or absent), else NULL."""
    return f"CASE WHEN {text} IS NULL THEN {sql_string('missing ' + label)} END"


def money_checks(text: str, label: str, *, exponent: bool = True) -> tuple[str, str]:
    """(value, reason) of a money column: the exact amount, and why it is refused (NULL when fine).
    `exponent=False` refuses E-notation, for formats whose spec allows plain decimals only."""
    flag = "" if exponent else ", exponent := false"
    value = f"money({text}{flag})"
    # The reason is NULL exactly where the value is not: asked only then, a good amount is parsed once
    # (DuckDB computes the value once for both), which took the checks of the 10M-event file's costs
    # from 3.5 s to 1.6 s.
    return value, f"CASE WHEN {value} IS NULL THEN money_reason({text}, {sql_string(label)}{flag}) END"


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


def timestamp_checks(text: str, label: str, ctx: BatchContext, *, required: bool) -> tuple[str, str]:
    """(value, reason) of a date or timestamp column, for every source: its UTC TIMESTAMP (utc_timestamp),
    and why it is refused (NULL when fine): missing (when `required`), not ISO 8601, or outside the
    batch's date window."""
    blank = sql_string("missing " + label) if required else "NULL"
    not_iso = sql_string(f" is not an ISO 8601 timestamp ({TIMESTAMP_FORM})")
    value = f"utc_timestamp({text})"
    # The value itself, not a list comprehension's copy of it: DuckDB then parses the text once for the
    # value and the reason (3.5 s -> 2.1 s for a column of 10M timestamps).
    reason = f"""CASE
        WHEN {text} IS NULL THEN {blank}
        WHEN {value} IS NULL THEN {sql_string(label + " ")} || quote_text({text}) || {not_iso}
        ELSE {window_reason(f"CAST({value} AS DATE)", text, label, ctx)}
    END"""
    return value, reason


def window_reason(day: str, text: str, label: str, ctx: BatchContext) -> str:
    """The reason a row's date `day` (parsed from `text`) is refused (NULL when fine): before the
    setting usage_date_min, or more than usage_date_max_days_ahead days after the batch was loaded."""
    first, last = ctx.date_window
    value = f"{sql_string(label + ' ')} || quote_text({text})"
    too_late = f" is more than {ctx.limits.usage_date_max_days_ahead} days after the load date"
    return f"""CASE
        WHEN {day} < DATE {sql_string(first.isoformat())}
            THEN {value} || {sql_string(f" is before {first.isoformat()} (setting usage_date_min)")}
        WHEN {day} > DATE {sql_string(last.isoformat())}
            THEN {value} || {sql_string(too_late + " (setting usage_date_max_days_ahead)")}
    END"""


def id_checks(text: str, label: str, *, required: bool) -> str:
    """The reason a machine identifier is refused (NULL when fine): missing (when `required`), characters
    outside ID_CHARS, a leading = + - @, or more than MAX_ID_CHARS characters."""
    blank = sql_string("missing " + label) if required else "NULL"
    return f"CASE WHEN {text} IS NULL THEN {blank} ELSE id_reason({text}, {sql_string(label)}) END"


def size_reason(fields: Mapping[str, str], limit: int) -> str:
    """One reason (NULL when fine) naming each field over `limit` bytes; `fields` maps the SQL of each
    field (as delivered) to its name in the file."""
    over = sql_string(f" bytes, over the {limit}-byte limit (setting max_field_bytes)")
    checks = [
        f"CASE WHEN strlen({sql}) > {limit} THEN {sql_string(name + ' is ')} || strlen({sql}) || {over} END"
        for sql, name in fields.items()
    ]
    return f"NULLIF(concat_ws('; ', {', '.join(checks) or 'NULL'}), '')"


def kept_text(sql: str, limit: int) -> str:
    """A field as quarantine's raw_record keeps it: as delivered, or its first 200 characters and `…`
    when it is over `limit` bytes (the reason gives its size)."""
    return f"CASE WHEN strlen({sql}) > {limit} THEN left({sql}, 200) || '…' ELSE {sql} END"


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


def batch_columns(
    ctx: BatchContext, source_format: str, ingestion_ts: str | None = None, op: str = "CAST(NULL AS VARCHAR)"
) -> str:
    """The raw columns that come from the batch, batch_id to load_date plus `delivery_seq` and
    `delivery_group`, and the row's `op`, for a query over `text_rows`; `ingestion_ts` defaults to when
    the batch was loaded, `op` to NULL (formats without retractions)."""
    delivery = ctx.batch_seq if ctx.delivery_seq is None else ctx.delivery_seq
    group = "NULL" if ctx.delivery_group is None else int(ctx.delivery_group)
    return f"""{sql_string(ctx.batch_id)} AS batch_id,
        CAST({ctx.batch_seq} AS BIGINT) AS batch_seq,
        {sql_string(source_format)} AS source_format,
        {sql_string(ctx.source_file)} AS source_file,
        CAST(source_row AS BIGINT) AS source_row,
        {ingestion_ts or loaded_at(ctx)} AS ingestion_ts,
        CAST({loaded_at(ctx)} AS DATE) AS load_date,
        {op} AS op,
        CAST({delivery} AS BIGINT) AS delivery_seq,
        CAST({group} AS BIGINT) AS delivery_group"""


def split_checked(con: duckdb.DuckDBPyConnection, checked_sql: str) -> None:
    """Views `accepted` (raw columns, reason '') and `rejected` (quarantine columns) over the temp
    table `checked`, the checked query's rows; `text_rows`, which that query read, is dropped (with the
    table `text_fields` behind it).

    The rows are held once: views, not copies (a 10M-row file's peak memory went from 8.9 to 6.6 GiB
    with DuckDB's default memory limit), and an accepted row holds no raw_record (then 4.5 GiB). Each
    read of a view filters `checked` again, a scan of one column; `checked` keeps file order, and so
    does each view."""
    # Only a refused row's raw_record is kept (quarantine's copy of the row as delivered): an accepted
    # row's would be a second copy of every field, held to the end of the ingest for nothing.
    check = (
        "CREATE OR REPLACE TEMP TABLE checked AS SELECT * REPLACE "
        f"(CASE WHEN reason <> '' THEN raw_record END AS raw_record) FROM ({checked_sql}) AS rows"
    )
    interruptible(con, lambda: con.execute(check))  # Ctrl-C stops the checks at once
    con.execute("DROP VIEW text_rows")
    con.execute("DROP TABLE text_fields")
    for view, schema, test in (("accepted", RAW, "= ''"), ("rejected", QUARANTINE, "<> ''")):
        columns = ", ".join(schema.column_names)
        where = f"WHERE reason {test}"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT {columns} FROM checked {where}")
