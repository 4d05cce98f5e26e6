"""Order-independent content hashes of table partitions, for the publish log and audits.

The hash of a partition is the MD5 of the sorted MD5s of its rows, each row rendered as text with an
explicit NULL marker. Columns that describe the run rather than the data (`published_at`, `run_id`)
are left out, so the same inputs give the same hash whenever they are published. A column appended
to the table after its first release (`TableDef.appended`) adds its text only when it holds a value:
a file written before it existed, and a row without one, hash as they did before, so a partition
published before the column existed keeps its hash (audit, and the runs that find nothing changed).

DuckDB renders and hashes the rows and sorts the row hashes by day; the hash of each day is then
taken here, over the sorted hashes as they stream out (DuckDB's ordered `string_agg` of the same
hashes took twice as long on 10M events). The hashes are the same either way
(tests/lake/test_fingerprint.py checks them against the definition above, in SQL).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costlake.duck import arrow_batches, connect, table_scan
from costlake.settings import Settings
from costlake.tables import TableDef

RUN_COLUMNS = frozenset({"published_at", "run_id"})
BATCH_ROWS = 1 << 20  # sorted row hashes per Arrow batch streamed out of DuckDB


@dataclass(frozen=True)
class PartitionFingerprint:
    usage_date: dt.date
    row_count: int
    content_hash: str
    batch_ids: str


def content_columns(tdef: TableDef) -> list[str]:
    return [c for c in tdef.column_names if c not in RUN_COLUMNS]


def row_text_sql(tdef: TableDef) -> str:
    r"""The text a row's hash is taken of: its content columns joined by `|`, NULL as `\N`; an
    appended column only when it holds a value. One `concat` (a chain of `||` made a string per
    column and took twice as long).

    >>> from pyiceberg.types import StringType
    >>> later = TableDef("t", (("a", StringType()), ("b", StringType())), None, ("a",), "", appended=("b",))
    >>> row_text_sql(later)
    "concat(COALESCE(CAST(a AS VARCHAR), '\\N'), COALESCE('|' || CAST(b AS VARCHAR), ''))"
    """
    columns = content_columns(tdef)
    first = [c for c in columns if c not in tdef.appended]
    schema = tdef.arrow_schema()
    pieces = ", '|', ".join(f"COALESCE({_text(c, schema.field(c).type)}, '\\N')" for c in first)
    for c in columns[len(first) :]:
        pieces += f", COALESCE('|' || {_text(c, schema.field(c).type)}, '')"
    return f"concat({pieces})"


def _text(column: str, kind: pa.DataType) -> str:
    """A column as text. A wide decimal (the lake's money, DECIMAL(38, 12)) that fits the 18 digits
    of a 64-bit one is rendered as one: the same text, in about two thirds of the time (a
    128-bit decimal's digits are worked out more slowly).

    >>> print(_text("cost", pa.decimal128(38, 12)).replace(" THEN", "\\nTHEN"))
    CASE WHEN cost BETWEEN -999999.999999999999 AND 999999.999999999999
    THEN CAST(CAST(cost AS DECIMAL(18, 12)) AS VARCHAR) ELSE CAST(cost AS VARCHAR) END
    """
    if isinstance(kind, pa.Decimal128Type) and kind.precision > 18 and kind.scale < 18:
        bound = "9" * (18 - kind.scale) + ("." + "9" * kind.scale if kind.scale else "")
        narrow = f"CAST(CAST({column} AS DECIMAL(18, {kind.scale})) AS VARCHAR)"
        wide = f"CAST({column} AS VARCHAR)"
        return f"CASE WHEN {column} BETWEEN -{bound} AND {bound} THEN {narrow} ELSE {wide} END"
    return f"CAST({column} AS VARCHAR)"


def fingerprint_files(
    tdef: TableDef, files: Sequence[str], settings: Settings
) -> dict[dt.date, PartitionFingerprint]:
    """Fingerprints per `usage_date` of the rows in `files` (a partitioned table's data files), on a
    DuckDB connection bounded as `settings` say (its sort of every row's hash may spill)."""
    if not files:
        return {}
    scan = table_scan(files, tdef.arrow_schema())
    batches = (
        "string_agg(DISTINCT batch_id, ',' ORDER BY batch_id)" if "batch_id" in tdef.column_names else "''"
    )
    con = connect(settings)
    try:
        days = con.execute(
            f"SELECT usage_date, count(*), {batches} FROM ({scan}) GROUP BY usage_date"
        ).fetchall()
        hashes = _content_hashes(
            con, f"SELECT usage_date, md5({row_text_sql(tdef)}) AS row_hash FROM ({scan}) ORDER BY 1, 2"
        )
    finally:
        con.close()
    return {d: PartitionFingerprint(d, int(n), hashes[d], str(b or "")) for d, n, b in days}


def _content_hashes(con: duckdb.DuckDBPyConnection, sql: str) -> dict[dt.date | None, str]:
    """The MD5 of each day's row hashes joined in order, from `sql`'s (usage_date, row_hash) rows
    sorted by both: each batch's runs of one day are fed to that day's MD5 straight from the Arrow
    string buffer, which holds a run's hashes back to back."""
    hashers: dict[int, hashlib._Hash] = {}
    for batch in arrow_batches(con, sql, BATCH_ROWS):
        if not batch.num_rows:
            continue
        days = pc.fill_null(batch.column(0).cast(pa.int32()), _NO_DAY).to_numpy(zero_copy_only=False)
        row_hashes = batch.column(1)
        if row_hashes.type != pa.large_string():
            row_hashes = row_hashes.cast(pa.large_string())
        offsets = np.frombuffer(row_hashes.buffers()[1], dtype=np.int64)[row_hashes.offset :]
        text = memoryview(row_hashes.buffers()[2] or b"")
        cuts = np.flatnonzero(np.r_[True, days[1:] != days[:-1], True]).tolist()
        for start, stop in zip(cuts[:-1], cuts[1:], strict=True):
            day = int(days[start])
            if day not in hashers:
                hashers[day] = hashlib.md5()  # noqa: S324 - a content hash, not a security one
            hashers[day].update(text[offsets[start] : offsets[stop]])
    return {
        None if day == _NO_DAY else _EPOCH + dt.timedelta(days=day): h.hexdigest()
        for day, h in hashers.items()
    }


_EPOCH = dt.date(1970, 1, 1)
_NO_DAY = -(2**31)  # a row without a usage_date (the former query gave its rows a day of None too)
EMPTY_HASH = "d41d8cd98f00b204e9800998ecf8427e"  # md5 of no rows
