"""`Warehouse.replace_partition_rows`: the rows of a small partitioned table (the anomalies) replace
exactly the days given, in one commit, one file per day, on a folder warehouse (here) and on S3
(test_s3_glue.py)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from anomaly_rows import DAY1, DAY2, anomaly, replace_and_check, rows, stored
from costlake.errors import LakeError
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings
from costlake.tables import COST_ANOMALIES


def data_files_on_disk(wh: Warehouse) -> list[Path]:
    return sorted(wh.staging_root(COST_ANOMALIES).rglob("*.parquet"))


def test_rows_replace_exactly_the_days_given(tmp_path: Path) -> None:
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    replace_and_check(wh)
    folders = list(wh.staging_root(COST_ANOMALIES).glob("rows=*"))
    assert len(folders) == 2 and all(any(f.iterdir()) for f in folders)  # none for the emptying one
    # A day's rows keep their order in its file.
    day2 = [f for f in wh.data_files(COST_ANOMALIES) if f.endswith(f"usage_date={DAY2}.parquet")]
    wh.replace_partition_rows(COST_ANOMALIES, [DAY2], rows(anomaly("B", DAY2), anomaly("A", DAY2)), {})
    (latest,) = [f for f in wh.data_files(COST_ANOMALIES) if f.endswith(f"usage_date={DAY2}.parquet")
                 and f not in day2]  # fmt: skip
    assert pq.read_table(latest).column("account_id").to_pylist() == ["B", "A"]


def test_a_row_outside_the_days_or_the_schema_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    wh.ensure_tables()
    wh.replace_partition_rows(COST_ANOMALIES, [DAY1], rows(anomaly("A1", DAY1)), {})
    written = data_files_on_disk(wh)
    refused = r"cost_anomalies: refused to commit 2 row\(s\): usage_date "
    with pytest.raises(LakeError, match=refused + "2025-01-02 is not a day being replaced"):
        wh.replace_partition_rows(COST_ANOMALIES, [DAY1], rows(anomaly("A9", DAY1), anomaly("A9", DAY2)), {})
    with pytest.raises(LakeError, match=refused + "None is not a day being replaced"):
        wh.replace_partition_rows(COST_ANOMALIES, [DAY1], rows(anomaly("A9", DAY1), anomaly("A9", None)), {})
    with pytest.raises(LakeError, match=r"refused to commit 1 row\(s\): usage_date 2025-01-01 is not a day"):
        wh.replace_partition_rows(COST_ANOMALIES, [], rows(anomaly("A9", DAY1)), {})  # rows, but no days
    odd = pa.table({"account_id": ["A9"], "usage_date": ["not a day"]})
    with pytest.raises(LakeError, match=r"cost_anomalies: refused to commit 1 row\(s\)"):
        wh.replace_partition_rows(COST_ANOMALIES, [DAY1], odd, {})
    assert stored(wh) == [("A1", DAY1, Decimal(100))]
    assert data_files_on_disk(wh) == written
