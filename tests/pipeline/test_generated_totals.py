"""A generated bill end to end, checked against totals computed here with csv and decimal.Decimal."""

from __future__ import annotations

import csv
from collections import defaultdict
from decimal import Decimal

from costlake.synthetic.generate import generate
from helpers import ingest_and_run, query_rows


def expected_account_days(files) -> dict[tuple[str, str], Decimal]:
    """Latest row per event_id by (ingestion_ts, file order, row order), then exact sums."""
    winners: dict[str, tuple[tuple, dict[str, str]]] = {}
    for batch, path in enumerate(files):
        with path.open(newline="") as handle:
            for row_number, row in enumerate(csv.DictReader(handle)):
                key = (row["ingestion_ts"], batch, row_number)
                if row["event_id"] not in winners or key > winners[row["event_id"]][0]:
                    winners[row["event_id"]] = (key, row)
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for _, row in winners.values():
        totals[(row["account_id"], row["usage_date"])] += Decimal(row["cost_usd"])
    return dict(totals)


def test_generated_bill_matches_an_independent_exact_sum(wh, tmp_path):
    made = generate(tmp_path / "data", events=8000, days=30, batches=3, seed=21)
    results, report = ingest_and_run(wh, *made.files)
    assert sum(r.accepted for r in results) == made.rows and not any(r.quarantined for r in results)
    got = {
        (r["account_id"], r["d"]): r["total_cost_usd"]
        for r in query_rows(
            wh, "SELECT account_id, CAST(usage_date AS VARCHAR) AS d, total_cost_usd FROM daily_account_cost"
        )
    }
    expected = expected_account_days(made.files)
    assert got == expected
    assert len(expected) == 12 * 30
    assert (
        sum(expected.values())
        == query_rows(wh, "SELECT sum(total_cost_usd) AS s FROM daily_account_cost")[0]["s"]
    )
    # Credits stayed in: some account-service-days carry negative events.
    assert (
        query_rows(wh, "SELECT count(*) AS n FROM normalized_billing_events WHERE billed_cost < 0")[0]["n"]
        > 0
    )
    assert [len(t.committed) for t in report.tables] == [30, 30, 30]
