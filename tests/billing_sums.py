"""Exact sums of the FOCUS and CUR sample files, read with the csv module and decimals alone (never
with costlake), and the published account-day totals to compare them with."""

from __future__ import annotations

import csv
import datetime as dt
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

from costlake.lake.warehouse import Warehouse
from helpers import FIXTURES, query_rows

FOCUS = FIXTURES / "focus" / "focus_1.0_sample.csv"
CUR = FIXTURES / "cur" / "aws_cur_legacy_sample.csv"


def is_null(value: str | None) -> bool:
    return value is None or value.strip() == "" or value.strip().upper() == "NULL"


def utc_day(text: str) -> str:
    """The UTC date of a FOCUS/CUR timestamp (naive values are UTC)."""
    stamp = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC)
    return stamp.date().isoformat()


def focus_totals(path: Path) -> dict[tuple[str, str], Decimal]:
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            account = row["BillingAccountId"] if is_null(row["SubAccountId"]) else row["SubAccountId"]
            totals[(account, utc_day(row["ChargePeriodStart"]))] += Decimal(row["BilledCost"])
    return dict(totals)


def cur_totals(path: Path) -> dict[tuple[str, str], Decimal]:
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            day = utc_day(row["lineItem/UsageStartDate"])
            totals[(row["lineItem/UsageAccountId"], day)] += Decimal(row["lineItem/UnblendedCost"])
    return dict(totals)


def published(wh: Warehouse) -> dict[tuple[str, str], Decimal]:
    rows = query_rows(
        wh, "SELECT account_id, CAST(usage_date AS VARCHAR) AS d, total_cost_usd FROM daily_account_cost"
    )
    return {(r["account_id"], r["d"]): r["total_cost_usd"] for r in rows}
