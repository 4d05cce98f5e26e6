"""The check every staged file passes before a partition replace commits it."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow.parquet as pq

from costlake.errors import LakeError
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
