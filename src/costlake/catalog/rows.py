"""The rows the tenant-scoped readers return (catalog/readers.py): plain frozen dataclasses, money as
`Decimal`."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class PageOf(Generic[T]):
    """One page of a listing; `next` is the `Page.after` of the following page (None: no more rows)."""

    rows: list[T]
    next: str | None


@dataclass(frozen=True)
class Account:
    account_id: str
    account_name: str | None
    tenant_id: str
    first_usage_date: dt.date | None  # None for an account a tenants file named before any bill did
    last_usage_date: dt.date | None


@dataclass(frozen=True)
class DailyCost:
    """A day's cost of one account (`group_by="account"`, service_name None) or of one service over
    the accounts read (`group_by="service"`, account_id None)."""

    usage_date: dt.date
    account_id: str | None
    service_name: str | None
    cost_usd: Decimal  # billed or effective, as asked
    event_count: int
    data_complete: bool  # every account in the row has the day complete (T+1)


@dataclass(frozen=True)
class AccountServiceCost:
    usage_date: dt.date
    account_id: str
    service_name: str
    total_cost_usd: Decimal  # billed
    effective_cost_usd: Decimal
    event_count: int


@dataclass(frozen=True)
class Contributor:
    dimension: str
    value: str
    actual_usd: Decimal
    expected_usd: Decimal
    contribution_usd: Decimal


def contributor_values(text: str | None) -> list[tuple[str, str, Decimal, Decimal, Decimal]]:
    """(dimension, value, actual, expected, contribution) of each contributor in the `contributors`
    JSON of a `cost_anomalies` row, in its order (none for NULL)."""
    return [
        (
            c["dimension"],
            c["value"],
            Decimal(c["actual_usd"]),
            Decimal(c["expected_usd"]),
            Decimal(c["contribution_usd"]),
        )
        for c in (json.loads(text) if text else [])
    ]


@dataclass(frozen=True)
class Anomaly:
    """A `cost_anomalies` row (see docs/anomalies.md), its contributors parsed."""

    account_id: str
    service_name: str
    usage_date: dt.date
    method: str
    kind: str
    direction: str
    actual_usd: Decimal
    expected_usd: Decimal
    expected_low_usd: Decimal | None
    expected_high_usd: Decimal | None
    impact_usd: Decimal
    impact_pct: Decimal | None  # None when the expected cost is zero
    score: Decimal | None
    duration_days: int | None
    ongoing: bool | None
    history_days: int | None
    top_dimension: str | None
    top_value: str | None
    top_contribution_usd: Decimal | None
    contributors: tuple[Contributor, ...]
