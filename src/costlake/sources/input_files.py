"""How a delivered billing file is read: CSV (plain, gzip or zstd) or Parquet, told apart by its first bytes.

The magic bytes decide, never the name: a `.csv.gz` holding plain text is read as plain text, a gzip
stream named `.csv` as gzip; zip, bzip2 and xz are refused with a one-line error. Compressed CSV is read
as a stream (Python for the header, DuckDB's `read_csv` for the rows): no unpacked copy is written.
DuckDB returns the rows before the cut of a zstd stream cut short and never checks a gzip CRC, so before
the rows are read the whole stream is decompressed once in Python and thrown away: a truncated or damaged
file is refused, never half-ingested.

Parquet (FOCUS exports and CUR 2.0 / Data Exports ship it) becomes the same relation of text columns the
CSV path gives, so every check of the sources applies unchanged:

  DECIMAL, integers    their exact decimal text
  DOUBLE, FLOAT        the shortest text that reads back as the same float, as a plain decimal
                       (sql_text's `plain_number`). A float cannot be more exact than it is: 0.1 stays
                       0.1, but a cost the exporter rounded into a float is that float's shortest text.
  TIMESTAMP [WITH TZ]  ISO 8601 in UTC, `YYYY-MM-DDTHH:MM:SS[.ffffff]Z` (no zone is UTC by definition)
  MAP, STRUCT, LIST    JSON (CUR 2.0 `resource_tags`, FOCUS `Tags`)
  anything else        DuckDB's text of the value (DATE is YYYY-MM-DD)

`source_row` is the row's place in the file, from 1: the data row number of a CSV, Parquet's own row
number plus one.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import duckdb
import pyarrow as pa
import zstandard

from costlake.duck import sql_ident, sql_string
from costlake.errors import InputError

GZIP = b"\x1f\x8b"
ZSTD = b"\x28\xb5\x2f\xfd"
PARQUET = b"PAR1"
_REFUSED = {b"PK\x03\x04": "a zip archive", b"BZh": "bzip2-compressed", b"\xfd7zXZ\x00": "xz-compressed"}
_BLOCK = 1 << 18  # compressed bytes per step of the integrity pass
_DAMAGED = (gzip.BadGzipFile, EOFError, zlib.error, zstandard.ZstdError)
_ISO_UTC = "'%Y-%m-%dT%H:%M:%S'"


@dataclass(frozen=True)
class InputFile:
    """A billing file as delivered: Parquet, or CSV with its compression (none, gzip, zstd)."""

    path: Path
    compression: str = "none"
    parquet: bool = False

    @property
    def label(self) -> str:
        """What the file is, for messages: `CSV`, `gzip CSV`, `zstd CSV` or `Parquet file`."""
        if self.parquet:
            return "Parquet file"
        return "CSV" if self.compression == "none" else f"{self.compression} CSV"

    def text_sql(self, con: duckdb.DuckDBPyConnection, width: int) -> str:
        """A query of c0 … c<width-1>, every field as VARCHAR in file order (CSV fields are text as
        delivered; Parquet values become text as the module docstring says), and for Parquet
        `source_row` too: a CSV's rows are numbered as they are stored (sql_text.load_text)."""
        if self.parquet:
            columns = _parquet_columns(con, self.path)
            if any(name.lower() == "file_row_number" for name, _ in columns):
                raise InputError(
                    f"{self.path}: a column is named file_row_number, which DuckDB's Parquet reader "
                    "keeps for each row's place in the file; rename or remove it"
                )
            fields = ", ".join(
                f"{_as_text(sql_ident(name), kind)} AS c{i}" for i, (name, kind) in enumerate(columns)
            )
            return f"""SELECT file_row_number + 1 AS source_row, {fields}
                FROM read_parquet({sql_string(str(self.path))}, file_row_number = true)"""
        declared = ", ".join(f"{sql_string(f'c{i}')}: 'VARCHAR'" for i in range(width))
        return f"""SELECT *
            FROM read_csv({sql_string(str(self.path))}, compression = {sql_string(self.compression)},
                          header = true, auto_detect = false, columns = {{{declared}}}, delim = ',',
                          quote = '"', escape = '"', strict_mode = true)"""


def inspect(path: Path) -> InputFile:
    """What `path` holds, from its first bytes."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, expected a billing file") from None
    for magic, what in _REFUSED.items():
        if head.startswith(magic):
            raise InputError(f"{path}: {what}; costlake reads CSV (plain, gzip or zstd) and Parquet")
    if head.startswith(PARQUET):
        return InputFile(path, parquet=True)
    compression = "gzip" if head.startswith(GZIP) else "zstd" if head.startswith(ZSTD) else "none"
    return InputFile(path, compression)


MAX_COLUMNS = 2000  # a legacy CUR has ~125 columns plus one per cost allocation tag (AWS caps those at 500)


def column_names(path: Path) -> list[str]:
    """The file's column names as delivered, trimmed: its CSV header, or its Parquet schema. More
    than `MAX_COLUMNS` are refused: DuckDB plans a query over them in time that grows with their
    square (78 s for 10,000 columns of one row), and no signal stops that planning."""
    names = _column_names(path)
    if len(names) > MAX_COLUMNS:
        raise InputError(
            f"{path}: {len(names):,} columns, more than the {MAX_COLUMNS:,} a billing file can have"
        )
    return names


def _column_names(path: Path) -> list[str]:
    source = inspect(path)
    if source.parquet:
        with duckdb.connect() as con:
            names = [name.strip() for name, _ in _parquet_columns(con, path)]
        # DuckDB renames a repeated name (the second BilledCost reads as BilledCost_1); the file's own
        # names are the header, so a column named twice is refused as in a CSV header
        delivered = _parquet_names(path)
        return delivered if delivered is not None and len(delivered) == len(names) else names
    try:
        with _open_text(source) as handle:
            header = next(csv.reader(handle), None)
    except (UnicodeDecodeError, csv.Error) as exc:
        raise InputError(f"{path}: not a readable UTF-8 CSV file ({exc})") from None
    except _DAMAGED as exc:
        raise _damaged(source, exc) from None
    if not header:
        if source.compression:
            readable(path)  # a stream cut inside its first block reads as empty: say it is damaged
        if header is not None:
            raise InputError(f"{path}: the first line is blank, expected a CSV header there")
        raise InputError(f"{path}: empty file, expected a CSV header")
    return [name.strip() for name in header]


def readable(path: Path) -> InputFile:
    """`inspect(path)`, once a compressed stream has been decompressed to its end without an error."""
    source = inspect(path)
    try:
        if source.compression == "gzip":
            with gzip.open(path, "rb") as stream:
                while stream.read(_BLOCK):
                    pass
        elif source.compression == "zstd" and not _zstd_complete(path):
            raise EOFError("the stream ends inside a zstd frame")
    except _DAMAGED as exc:
        raise _damaged(source, exc) from None
    return source


def _open_text(source: InputFile) -> IO[str]:
    """The CSV as a text stream, decompressed on the fly."""
    return io.TextIOWrapper(_open_binary(source), encoding="utf-8-sig", newline="")


def mixed_line_endings(source: InputFile) -> str | None:
    """Where a CSV's lines stop ending as its first line does (`line 3 ends with LF, line 1 with
    CRLF`), or None. DuckDB refuses such a file without a line number; this is read only to explain
    that refusal, up to the first such line. It names a line only when every line up to it is one
    whole record of well-formed fields (`_RECORD`), where a line is a record and its number is the
    one DuckDB would give: at a line that is not (a quoted field that runs on to the next line, a
    quote inside an unquoted field, a bare CR, a line over `_SCAN_LINE` bytes) and after
    `_SCAN_BYTES`, it gives up, so that it never blames a line DuckDB reads otherwise and costs
    little more than the refusal itself."""
    if source.parquet:
        return None
    first: tuple[int, bytes] | None = None
    bytes_read = 0
    with _open_binary(source) as handle:
        for number, line in enumerate(iter(lambda: handle.readline(_SCAN_LINE + 1), b""), start=1):
            bytes_read += len(line)
            if number == 1:  # a byte-order mark is no part of the first field (DuckDB skips it too)
                line = line.removeprefix(_BOM)
            record = _RECORD.fullmatch(line) if len(line) <= _SCAN_LINE else None
            if record is None or bytes_read > _SCAN_BYTES:
                return None
            ending = record.group(1)
            if first is None:
                first = (number, ending)
            elif ending != first[1]:
                return (
                    f"line {number} ends with {_ENDINGS[ending]}, line {first[0]} with {_ENDINGS[first[1]]}"
                )
    return None


# One CSV line that is a whole record: comma-separated fields, each quoted (a doubled quote inside)
# or without quotes, CR or LF, and its line ending.
_FIELD = rb'(?:"(?:[^"]|"")*"|[^",\r\n]*)'
_RECORD = re.compile(_FIELD + rb"(?:," + _FIELD + rb")*(\r?\n)")
_ENDINGS = {b"\n": "LF", b"\r\n": "CRLF"}
_BOM = b"\xef\xbb\xbf"  # UTF-8's byte-order mark
_SCAN_LINE = 1 << 20  # bytes of one line
_SCAN_BYTES = 1 << 28  # bytes of the file, from its start


def _open_binary(source: InputFile) -> IO[bytes]:
    """The CSV's bytes, decompressed on the fly."""
    if source.compression == "gzip":
        return cast("IO[bytes]", gzip.open(source.path, "rb"))  # a GzipFile reads bytes
    if source.compression == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(
            source.path.open("rb"), read_across_frames=True, closefd=True
        )
        return io.BufferedReader(reader)
    return source.path.open("rb")


def _zstd_complete(path: Path) -> bool:
    """Whether every zstd frame of the file ends (a file may hold several frames back to back)."""
    dctx = zstandard.ZstdDecompressor()
    frame, inside = dctx.decompressobj(), False
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(_BLOCK), b""):
            while block:
                frame.decompress(block)  # the text itself is not needed, only that it decodes
                inside = not frame.eof
                block = b"" if inside else frame.unused_data
                if not inside:
                    frame = dctx.decompressobj()
    return not inside


def _damaged(source: InputFile, exc: BaseException) -> InputError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(
        f"{source.path}: damaged or truncated {source.label} ({detail}); deliver the file again"
    )


def _parquet_columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[tuple[str, str]]:
    """(name, DuckDB type) of each top-level column of a Parquet file."""
    try:
        rows = con.execute(f"DESCRIBE SELECT * FROM read_parquet({sql_string(str(path))})").fetchall()
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"{path}: not a readable Parquet file ({first})") from None
    if not rows:
        raise InputError(f"{path}: a Parquet file with no columns")
    return [(str(name), str(kind)) for name, kind, *_ in rows]


def _parquet_names(path: Path) -> list[str] | None:
    """The top-level column names a Parquet file's schema holds, repeats included (None: unreadable)."""
    import pyarrow.parquet as pq

    try:
        return [name.strip() for name in pq.read_schema(path).names]
    except (OSError, ValueError, pa.ArrowException):
        return None


def _as_text(column: str, kind: str) -> str:
    """SQL of a Parquet value of DuckDB type `kind` as the text a CSV export would hold."""
    if kind == "VARCHAR":
        return column
    if kind in ("DOUBLE", "FLOAT"):
        text = f"CAST({column} AS VARCHAR)"  # shortest round trip; E-notation is expanded as text
        return f"COALESCE(plain_number({text}), {text})"  # inf and nan stay as they are, to be refused
    if kind.startswith("TIMESTAMP"):
        zoned = kind == "TIMESTAMP WITH TIME ZONE"
        utc = f"timezone('UTC', {column})" if zoned else f"CAST({column} AS TIMESTAMP)"
        return f"""[strftime(cl_ts, {_ISO_UTC}) || CASE WHEN date_trunc('second', cl_ts) = cl_ts THEN ''
            ELSE strftime(cl_ts, '.%f') END || 'Z' FOR cl_ts IN [{utc}]][1]"""
    if kind.startswith(("MAP(", "STRUCT(", "UNION(")) or kind.endswith("]"):
        return f"CAST(to_json({column}) AS VARCHAR)"
    return f"CAST({column} AS VARCHAR)"
