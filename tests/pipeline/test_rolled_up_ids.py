"""The ids of rolled-up FOCUS and CUR events: names are data, so no name may give two events one id.

A review found service `a|b` in region `c` and service `a` in region `b|c` (the key joins its fields
with `|`), and a region spelt `(null)` and a missing region (written `(null)` in the key), rolled up
into two events with one id each: the gate's `grain_unique` held back every day of the billing period,
for every account, run after run. The ids of names without `|`, a leading `#` or that spelling are
those made before (`stage1_normalize._key_field`)."""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path

from costlake.lake.warehouse import Warehouse
from helpers import ingest_and_run, query_rows

HEADER = (
    "BilledCost,BillingAccountId,BillingCurrency,ChargeCategory,ChargePeriodStart,BillingPeriodStart,"
    "ServiceName,RegionId,SubAccountId\n"
)
ROWS = [  # cost, day, service, region, account
    ("10.00", "03", "a|b", "c", "222200001111"),
    ("20.00", "03", "a", "b|c", "222200001111"),
    ("1.00", "04", "svc", "(null)", "222200001111"),
    ("2.00", "04", "svc", "", "222200001111"),
    ("4.00", "04", "#3:svc", "r1", "222200001111"),
    ("8.00", "04", "#3:svc", "#3:svc", "222200001111"),
    ("5.00", "05", "other", "r1", "999900001111"),
]


def test_names_that_spell_another_events_key_give_their_own_events_and_every_day_is_published(
    wh: Warehouse, tmp_path: Path
) -> None:
    bill = tmp_path / "focus.csv"
    bill.write_text(HEADER + "".join(
        f"{cost},111122223333,USD,Usage,2025-03-{day}T00:00:00Z,2025-03-01T00:00:00Z,{service},{region},{account}\n"
        for cost, day, service, region, account in ROWS
    ))  # fmt: skip
    _, report = ingest_and_run(wh, bill)
    assert not report.held_back
    events = query_rows(
        wh, "SELECT event_id, billed_cost FROM normalized_billing_events ORDER BY billed_cost"
    )
    assert len({e["event_id"] for e in events}) == len(ROWS)
    assert [e["billed_cost"] for e in events] == sorted(Decimal(r[0]) for r in ROWS)
    days = query_rows(wh, "SELECT usage_date, total_cost_usd FROM daily_account_cost ORDER BY usage_date")
    assert [str(d["total_cost_usd"]) for d in days] == [
        "30.000000000000",
        "15.000000000000",
        "5.000000000000",
    ]
    # An ordinary name keeps the id it had: the md5 of its fields joined with |, as before.
    fields = "111122223333|2025-03-01|999900001111|other|r1|other|usage|2025-03-05|USD|(null)"
    plain = next(e["event_id"] for e in events if e["billed_cost"] == Decimal("5"))
    assert plain == "focus:" + hashlib.md5(fields.encode()).hexdigest()
