"""The files of a partition replace: written from rows, and the check every staged file passes
before the replace commits it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from costlake.errors import LakeError, first_line
from costlake.tables import TableDef


def check_partition_files(tdef: TableDef, files: Sequence[str], wanted: set[str]) -> None:
    """Refuse files that would silently corrupt a partition replace.

    Each file must be non-empty, hold the partition column, and hold exactly one of the dates
    being replaced (min == max, inside the set). The Iceberg schema check happens in the commit.
    """
    column = tdef.partition_by
    for path in files:
        meta = pq.read_metadata(path)
        if meta.num_rows == 0:
            raise LakeError(f"{tdef.name}: staged file {path} is empty")
        names = meta.schema.names
        if column not in names:
            raise LakeError(f"{tdef.name}: staged file {path} lacks the partition column {column}")
        index = names.index(column)
        lows, highs = set(), set()
        for rg in range(meta.num_row_groups):
            stats = meta.row_group(rg).column(index).statistics
            if stats is None or not stats.has_min_max or stats.null_count:
                raise LakeError(f"{tdef.name}: staged file {path} has no usable {column} statistics")
            lows.add(str(stats.min))
            highs.add(str(stats.max))
        values = lows | highs
        if len(values) != 1 or not values <= wanted:
            raise LakeError(
                f"{tdef.name}: staged file {path} holds {column} {sorted(values)}, "
                f"expected one of the partitions being replaced"
            )


def rows_on_days(tdef: TableDef, dates: Sequence[dt.date], rows: pa.Table) -> pa.Table:
    """`rows` typed as the table's, refused before anything is written unless each falls on one of
    `dates` (a row without a day falls on none)."""
    column = tdef.partition_by
    assert column is not None
    refused = f"{tdef.name}: refused to commit {rows.num_rows} row(s)"
    try:
        typed = rows.cast(tdef.arrow_schema())
    except ValueError as exc:  # pyarrow's ArrowInvalid: rows that do not fit the table
        raise LakeError(f"{refused}: {first_line(exc)}") from exc
    days = set(dates)
    outside = sorted(str(d) for d in pc.unique(typed.column(column)).to_pylist() if d not in days)
    if outside:
        raise LakeError(f"{refused}: {column} {', '.join(outside[:3])} is not a day being replaced")
    return typed


def write_partition_files(tdef: TableDef, rows: pa.Table, folder: Path) -> list[str]:
    """`rows` (a small table's, typed as it is) written into `folder`, one Parquet file per value of
    the partition column, each day's rows in their order. Iceberg's own append splits a table by
    filtering the whole of it once per partition, which for the anomalies of a month of days cost
    more than writing the files."""
    column = tdef.partition_by
    assert column is not None
    ordered = rows.take(pc.sort_indices(rows, [(column, "ascending")]))  # a stable sort
    days = ordered.column(column).to_pylist()
    files: list[str] = []
    start = 0
    for end in range(1, len(days) + 1):
        if end == len(days) or days[end] != days[start]:
            path = folder / f"{column}={days[start].isoformat()}.parquet"
            pq.write_table(ordered.slice(start, end - start), path, compression="zstd")
            files.append(str(path))
            start = end
    return files
