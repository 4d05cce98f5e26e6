"""Order-independent content hashes of table partitions, for the publish log and audits.

The hash of a partition is the MD5 of the sorted MD5s of its rows, each row rendered as text with an
explicit NULL marker. Columns that describe the run rather than the data (`published_at`, `run_id`)
are left out, so the same inputs give the same hash whenever they are published.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from costlake.duck import parquet_scan
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


def fingerprint_files(tdef: TableDef, files: Sequence[str]) -> dict[dt.date, PartitionFingerprint]:
    """Fingerprints per `usage_date` of the rows in `files` (a partitioned table's data files)."""
    if not files:
        return {}
    row_text = " || '|' || ".join(f"COALESCE(CAST({c} AS VARCHAR), '\\N')" for c in content_columns(tdef))
    batches = (
        "string_agg(DISTINCT batch_id, ',' ORDER BY batch_id)" if "batch_id" in tdef.column_names else "''"
    )
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"""SELECT usage_date, count(*), md5(string_agg(row_hash, '' ORDER BY row_hash)), {batches}
                FROM (SELECT usage_date, md5({row_text}) AS row_hash{", batch_id" if batches != "''" else ""}
                      FROM {parquet_scan(files)})
                GROUP BY usage_date"""
        ).fetchall()
    finally:
        con.close()
    return {d: PartitionFingerprint(d, int(n), str(h), str(b or "")) for d, n, h, b in rows}


EMPTY_HASH = "d41d8cd98f00b204e9800998ecf8427e"  # md5 of no rows
