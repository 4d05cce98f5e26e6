"""Small generated bills read back from their files: the truth rows and the cost per series, day and
region, as the latest delivery of each event bills it."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from costlake.synthetic.generate import GenerateResult
from costlake.synthetic.injection import read_truth

# 6 accounts, 70 days: room for every kind twice (12 anomalies) and three noisy-mix series.
SMALL = {"events": 30_000, "days": 70, "tenants": 2, "accounts_per_tenant": 3, "seed": 5}


@dataclass(frozen=True)
class Bill:
    result: GenerateResult
    truth: list[dict[str, str]]
    # Billed cost per (account_id, service_name, usage_date, region), the latest delivery of each event.
    cost: dict[tuple[str, str, str, str], Decimal]

    def series(self, account_id: str, service_name: str) -> dict[tuple[str, str], Decimal]:
        """One account-service's cost per (usage_date, region)."""
        return {(d, r): v for (a, s, d, r), v in self.cost.items() if (a, s) == (account_id, service_name)}


def read_bill(result: GenerateResult) -> Bill:
    latest: dict[str, dict[str, str]] = {}
    for path in result.files:  # files and rows are in ingestion order: a re-delivery comes later
        with open(path, newline="") as fh:
            latest.update((row["event_id"], row) for row in csv.DictReader(fh))
    cost: dict[tuple[str, str, str, str], Decimal] = defaultdict(Decimal)
    for row in latest.values():
        key = (row["account_id"], row["service_name"].strip().lower(), row["usage_date"], row["region"])
        cost[key] += Decimal(row["cost_usd"])
    truth = read_truth(result.truth_file) if result.truth_file else []
    return Bill(result, truth, dict(cost))
