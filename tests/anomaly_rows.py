"""Rows of `cost_anomalies` written with `Warehouse.replace_partition_rows`, and the check that a
replace changes exactly the days it is given (tests/lake: a folder warehouse and S3)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pyarrow as pa

from costlake.lake.warehouse import Warehouse
from costlake.tables import COST_ANOMALIES

DAY1, DAY2, DAY3 = dt.date(2025, 1, 1), dt.date(2025, 1, 2), dt.date(2025, 1, 3)


def anomaly(account: str, day: dt.date | None, actual: str = "100") -> dict[str, Any]:
    """A `cost_anomalies` row of a spike of `actual` dollars over an expected 10."""
    money = Decimal(actual)
    return {
        "account_id": account, "service_name": "AmazonEC2", "usage_date": day, "method": "baseline",
        "kind": "spike", "direction": "up", "actual_usd": money, "expected_usd": Decimal(10),
        "expected_low_usd": Decimal(8), "expected_high_usd": Decimal(12), "impact_usd": money - 10,
        "impact_pct": Decimal(900), "score": Decimal("12.5"), "duration_days": 1, "ongoing": False,
        "history_days": 28, "top_dimension": "region", "top_value": "us-east-1",
        "top_contribution_usd": money - 10, "contributors": "[]",
    }  # fmt: skip


def rows(*found: dict[str, Any]) -> pa.Table:
    return pa.Table.from_pylist(list(found), schema=COST_ANOMALIES.arrow_schema())


def stored(wh: Warehouse) -> list[tuple[str, dt.date, Decimal]]:
    wh.refresh()
    return [
        (r["account_id"], r["usage_date"], r["actual_usd"]) for r in wh.read_rows(COST_ANOMALIES).to_pylist()
    ]


def replace_and_check(wh: Warehouse) -> None:
    """Three replaces on `wh`: the days given are replaced whole (a day given without rows is
    emptied), the others stay; each commit adds one file per day it has rows for, and one that only
    empties days adds none."""
    wh.ensure_tables()
    first = wh.replace_partition_rows(
        COST_ANOMALIES, [DAY1, DAY2, DAY3],
        rows(anomaly("A2", DAY2), anomaly("A1", DAY1), anomaly("A1", DAY2), anomaly("A3", DAY3)),
        {"source_run": "r1"},
    )  # fmt: skip
    assert sorted(stored(wh)) == [
        ("A1", DAY1, Decimal(100)), ("A1", DAY2, Decimal(100)), ("A2", DAY2, Decimal(100)),
        ("A3", DAY3, Decimal(100)),
    ]  # fmt: skip
    added = wh.table(COST_ANOMALIES).snapshot_by_id(first)
    assert added is not None and added.summary is not None
    assert added.summary["added-data-files"] == "3"  # one per day
    props = {"source_run": "r2"}
    wh.replace_partition_rows(COST_ANOMALIES, [DAY2, DAY3], rows(anomaly("A4", DAY2, "55.5")), props)
    assert sorted(stored(wh)) == [("A1", DAY1, Decimal(100)), ("A4", DAY2, Decimal("55.5"))]
    assert wh.last_properties(COST_ANOMALIES)["source_run"] == "r2"
    emptied = wh.replace_partition_rows(COST_ANOMALIES, [DAY2], rows(), {"source_run": "r3"})
    assert stored(wh) == [("A1", DAY1, Decimal(100))]
    only = wh.table(COST_ANOMALIES).snapshot_by_id(emptied)
    assert only is not None and only.summary is not None
    assert only.summary.operation.value == "delete"  # no append of nothing after it
