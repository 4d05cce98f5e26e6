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


def test_rows_replace_exactly_the_days_given(tmp_path: Path) -> None:
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    replace_and_check(wh)
    # A day's rows keep their order in its file.
    day2 = [f for f in wh.data_files(COST_ANOMALIES) if f.endswith(f"usage_date={DAY2}.parquet")]
    wh.replace_partition_rows(COST_ANOMALIES, [DAY2], rows(anomaly("B", DAY2), anomaly("A", DAY2)), {})
    (latest,) = [f for f in wh.data_files(COST_ANOMALIES) if f.endswith(f"usage_date={DAY2}.parquet")
                 and f not in day2]  # fmt: skip
    assert pq.read_table(latest).column("account_id").to_pylist() == ["B", "A"]


def test_a_row_outside_the_days_or_the_schema_is_refused_and_nothing_changes(tmp_path: Path) -> None:
    wh = Warehouse(Settings(warehouse=str(tmp_path / "wh")))
    wh.ensure_tables()
    wh.replace_partition_rows(COST_ANOMALIES, [DAY1], rows(anomaly("A1", DAY1)), {})
    with pytest.raises(LakeError, match="expected one of the partitions being replaced"):
        wh.replace_partition_rows(COST_ANOMALIES, [DAY1], rows(anomaly("A9", DAY2)), {})
    odd = pa.table({"account_id": ["A9"], "usage_date": ["not a day"]})
    with pytest.raises(LakeError, match=r"cost_anomalies: refused to commit 1 row\(s\)"):
        wh.replace_partition_rows(COST_ANOMALIES, [DAY1], odd, {})
    assert stored(wh) == [("A1", DAY1, Decimal(100))]
