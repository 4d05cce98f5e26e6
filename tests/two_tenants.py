"""Two tenants (and an unassigned account) that share a service: the bill, owners, and the lake."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

from costlake.lake.warehouse import Warehouse
from costlake.pipeline.tenants import load_tenants
from costlake.settings import Settings
from helpers import engine_options, ingest_and_run

START = dt.date(2025, 1, 1)
DAYS = 45
A1, A2, B1, C1 = "111111111111", "222222222222", "333333333333", "444444444444"
TENANT_OF = {A1: "team-a", A2: "team-a", B1: "team-b"}  # C1 is in no tenants file: unassigned
HEADER = (
    "event_id",
    "usage_date",
    "account_id",
    "service_name",
    "cost_usd",
    "effective_cost_usd",
    "region",
    "pricing_model",
    "ingestion_date",
)
# account, service, daily level, region, pricing model, last day index, spike day index
SERIES = (
    (A1, "AmazonEC2", 300, "us-east-1", "on_demand", DAYS - 1, 33),
    (A2, "AmazonS3", 90, "us-east-1", "on_demand", DAYS - 1, None),
    (B1, "AmazonRDS", 150, "eu-west-1", "savings_plan", DAYS - 6, 30),
    (B1, "AmazonEC2", 40, "eu-west-1", "savings_plan", DAYS - 6, None),
    (C1, "AmazonEC2", 20, "ap-south-1", "spot", DAYS - 1, None),
)


def two_tenant_rows() -> list[list[str]]:
    """Two events per series and day; costs with three decimals, effective cost a little lower."""
    rows = []
    for account, service, level, region, pricing, last, spike in SERIES:
        for i in range(last + 1):
            day = (START + dt.timedelta(days=i)).isoformat()
            base = level * 5 if i == spike else level + (i * 7) % 5
            for part, share in (("a", Decimal("0.625")), ("b", Decimal("0.375"))):
                cost = base * share
                effective = cost - Decimal("0.125")
                row = [f"{account}-{service}-{i}-{part}", day, account, service, str(cost), str(effective)]
                rows.append([*row, region, pricing, day])
    rows.append(["bad-1", START.isoformat(), B1, "AmazonRDS", "not-a-number", "", "", "", START.isoformat()])
    return rows


def write_bill(path: Path, rows: list[list[str]]) -> Path:
    """A native billing CSV of `rows` (in `HEADER` order)."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


def build_lake(folder: Path) -> Warehouse:
    """Published, anomalies detected, tenants loaded."""
    wh = Warehouse(Settings(warehouse=str(folder / "wh"), **engine_options("duckdb")))
    ingest_and_run(wh, write_bill(folder / "bill.csv", two_tenant_rows()))
    tenants = folder / "tenants.csv"
    tenants.write_text(
        "account_id,tenant_id,account_name\n"
        + "".join(f"{a},{t},{t}-{a[:3]}\n" for a, t in TENANT_OF.items())
    )
    load_tenants(wh, tenants)
    return wh
