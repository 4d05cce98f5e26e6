"""lake/data_files.py: the Iceberg entries of the files costlake wrote, made from their local footers,
are those PyIceberg's `add_files` makes by reading the files back (statistics, bounds, partition,
size), and a file twice, or one the table already holds, is refused as `add_files` refuses it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from anomaly_rows import DAY1, DAY2, anomaly, rows
from costlake.errors import LakeError
from costlake.lake.data_files import append_data_files, data_files
from costlake.lake.partition_files import write_partition_files
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from costlake.tables import COST_ANOMALIES

FIELDS = (
    "file_path", "file_format", "partition", "record_count", "file_size_in_bytes", "column_sizes",
    "value_counts", "null_value_counts", "nan_value_counts", "lower_bounds", "upper_bounds", "split_offsets",
    "spec_id", "content",
)  # fmt: skip


def _entries_of(wh: Warehouse) -> list[dict[str, Any]]:
    table = wh.table(COST_ANOMALIES)
    files = sorted(table.scan().plan_files(), key=lambda task: task.file.partition[0])
    return [{f: getattr(task.file, f) for f in FIELDS if f != "file_path"} for task in files]


def _written(wh: Warehouse, name: str) -> list[str]:
    table = rows(anomaly("A", DAY1), anomaly("B", DAY1), anomaly("C", DAY2), anomaly("D", DAY2))
    return write_partition_files(COST_ANOMALIES, table.cast(COST_ANOMALIES.arrow_schema()),
                                 wh.new_data_dir(COST_ANOMALIES, name))  # fmt: skip


def test_the_entries_are_those_pyicebergs_add_files_makes(tmp_path: Path) -> None:
    theirs = Warehouse(Settings(warehouse=str(tmp_path / "theirs")))
    ours = Warehouse(Settings(warehouse=str(tmp_path / "ours")))
    for wh in (theirs, ours):
        wh.ensure_tables()
    with theirs.table(COST_ANOMALIES).transaction() as tx:
        tx.add_files(_written(theirs, "rows=1"))
    table = ours.table(COST_ANOMALIES)
    files = _written(ours, "rows=1")
    with table.transaction() as tx:
        append_data_files(tx, data_files(table.metadata, files, lambda: files), {})
    assert len(_entries_of(ours)) == 2
    assert _entries_of(ours) == _entries_of(theirs)
    # Both set the schema's name mapping (the files carry no field ids), so both read the same rows.
    mapping = "schema.name-mapping.default"
    assert (
        ours.table(COST_ANOMALIES).metadata.properties[mapping]
        == theirs.table(COST_ANOMALIES).metadata.properties[mapping]
    )
    assert ours.read_rows(COST_ANOMALIES).sort_by("account_id").to_pylist() == (
        theirs.read_rows(COST_ANOMALIES).sort_by("account_id").to_pylist()
    )


def test_a_file_twice_or_one_the_table_holds_is_refused_and_nothing_is_committed(tmp_path: Path) -> None:
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    wh.ensure_tables()
    files = _written(wh, "rows=1")
    with pytest.raises(LakeError, match="refused to commit 4 file"):
        wh.append_files(COST_ANOMALIES, [*files, *files], {})
    assert wh.read_rows(COST_ANOMALIES).num_rows == 0
    wh.append_files(COST_ANOMALIES, files, {})
    before = wh.table(COST_ANOMALIES).metadata.current_snapshot_id
    with pytest.raises(LakeError, match="already referenced by table"):
        wh.append_files(COST_ANOMALIES, files[:1], {})
    wh.refresh()
    assert wh.table(COST_ANOMALIES).metadata.current_snapshot_id == before
    assert wh.read_rows(COST_ANOMALIES).num_rows == 4
