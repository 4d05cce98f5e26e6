"""Order-independent content hashes of table partitions, for the publish log and audits.

The hash of a partition is the MD5 of the sorted MD5s of its rows, each row rendered as text with an
explicit NULL marker. Columns that describe the run rather than the data (`published_at`, `run_id`)
are left out, so the same inputs give the same hash whenever they are published. A column appended
to the table after its first release (`TableDef.appended`) adds its text only when it holds a value:
a file written before it existed, and a row without one, hash as they did before, so a partition
published before the column existed keeps its hash (audit, and the runs that find nothing changed).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from costlake.duck import table_scan
from costlake.tables import TableDef

RUN_COLUMNS = frozenset({"published_at", "run_id"})


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
    appended column only when it holds a value.

    >>> from pyiceberg.types import StringType
    >>> later = TableDef("t", (("a", StringType()), ("b", StringType())), None, ("a",), "", appended=("b",))
    >>> row_text_sql(later)
    "COALESCE(CAST(a AS VARCHAR), '\\N') || COALESCE('|' || CAST(b AS VARCHAR), '')"
    """
    columns = content_columns(tdef)
    first = [c for c in columns if c not in tdef.appended]
    text = " || '|' || ".join(f"COALESCE(CAST({c} AS VARCHAR), '\\N')" for c in first)
    for c in columns[len(first) :]:
        text += f" || COALESCE('|' || CAST({c} AS VARCHAR), '')"
    return text


def fingerprint_files(tdef: TableDef, files: Sequence[str]) -> dict[dt.date, PartitionFingerprint]:
    """Fingerprints per `usage_date` of the rows in `files` (a partitioned table's data files)."""
    if not files:
        return {}
    row_text = row_text_sql(tdef)
    batches = (
        "string_agg(DISTINCT batch_id, ',' ORDER BY batch_id)" if "batch_id" in tdef.column_names else "''"
    )
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"""SELECT usage_date, count(*), md5(string_agg(row_hash, '' ORDER BY row_hash)), {batches}
                FROM (SELECT usage_date, md5({row_text}) AS row_hash{", batch_id" if batches != "''" else ""}
                      FROM ({table_scan(files, tdef.arrow_schema())}) AS stored)
                GROUP BY usage_date"""
        ).fetchall()
    finally:
        con.close()
    return {d: PartitionFingerprint(d, int(n), str(h), str(b or "")) for d, n, h, b in rows}


EMPTY_HASH = "d41d8cd98f00b204e9800998ecf8427e"  # md5 of no rows
