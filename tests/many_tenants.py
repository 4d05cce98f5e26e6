"""Six accounts whose owners the tenancy property test reassigns: distinct ids, names and cost levels
(three odd decimals, so every figure is recognisable in a response), each with a spike or two, and two
services that several accounts share. The lake is published, anomalies detected; owners are loaded by
the test, per example."""

from __future__ import annotations

import csv
import datetime as dt
from decimal import Decimal
from pathlib import Path

from costlake.lake.warehouse import Warehouse
from costlake.pipeline.tenants import load_tenants
from costlake.settings import Settings
from helpers import engine_options, ingest_and_run
from two_tenants import write_bill

START = dt.date(2025, 3, 1)
DAYS = 40
# account id -> account name (hyphenated labels: the name policy lets them through as they are)
ACCOUNTS = {
    "731946028511": "heron-ledger",
    "582063917724": "quartz-mill",
    "649205873136": "saffron-dock",
    "860317492658": "tundra-vault",
    "917428360469": "cobalt-orchard",
    "408539271873": "ember-lattice",
}
IDS = tuple(ACCOUNTS)
# account, service, daily level, spike day indexes (a spike is 7x the level)
SERIES = (
    (IDS[0], "AmazonEC2", Decimal("1371.913"), (29,)),
    (IDS[1], "AmazonRDS", Decimal("2583.617"), (31,)),
    (IDS[2], "AmazonEC2", Decimal("3797.359"), (33,)),
    (IDS[3], "AmazonS3", Decimal("4913.771"), (28, 35)),
    (IDS[4], "AmazonRDS", Decimal("6139.493"), (30,)),
    (IDS[5], "AWSLambda", Decimal("8357.179"), (34,)),
)


def rows() -> list[list[str]]:
    """One event per series and day; the level moves a little day to day."""
    found = []
    for account, service, level, spikes in SERIES:
        for i in range(DAYS):
            day = (START + dt.timedelta(days=i)).isoformat()
            cost = level * 7 if i in spikes else level + Decimal((i * 7) % 5) / 10
            effective = cost - Decimal("0.125")
            found.append([f"{account}-{i}", day, account, service, str(cost), str(effective)])
            found[-1] += ["us-east-1", "on_demand", day]
    return found


def write_owners(path: Path, owners: dict[str, str]) -> Path:
    """A tenants file: every account with its owner and its (fixed) name."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("account_id", "tenant_id", "account_name"))
        writer.writerows((a, owners[a], ACCOUNTS[a]) for a in IDS)
    return path


def build_lake(folder: Path, owners: dict[str, str]) -> Warehouse:
    wh = Warehouse(Settings(warehouse=str(folder / "wh"), **engine_options("duckdb")))
    ingest_and_run(wh, write_bill(folder / "bill.csv", rows()))
    load_tenants(wh, write_owners(folder / "tenants.csv", owners))
    return wh
