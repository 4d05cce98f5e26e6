"""FOCUS and AWS CUR end to end: exact totals against the raw files, period restatements,
corrections in old partitions, invoiced completeness and tenant ownership."""

from __future__ import annotations

import csv
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

from billing_sums import CUR, FOCUS, cur_totals, focus_totals, published, utc_day
from helpers import FIXTURES, cli, ingest_and_run, query_rows

pytestmark = pytest.mark.all_engines  # period restatements and rolled-up event ids on every engine


def test_focus_sample_end_to_end_matches_an_independent_exact_sum(wh):
    [result], report = ingest_and_run(wh, FOCUS)
    assert result.source_format == "focus" and (result.accepted, result.quarantined) == (1000, 0)
    assert published(wh) == focus_totals(FOCUS)
    assert not report.held_back
    negatives = query_rows(wh, "SELECT count(*) AS n FROM raw_billing_events WHERE billed_cost < 0")
    assert negatives == [{"n": 13}]
    # Hourly rows are rolled up: far fewer stage-1 events than raw rows, same money.
    events = query_rows(wh, "SELECT count(*) AS n, sum(billed_cost) AS s FROM normalized_billing_events")[0]
    assert events["n"] < 1000 and events["s"] == sum(focus_totals(FOCUS).values())
    owners = query_rows(wh, "SELECT DISTINCT tenant_id FROM dim_account ORDER BY 1")
    billing_accounts = query_rows(
        wh, "SELECT DISTINCT billing_account_id AS b FROM raw_billing_events ORDER BY 1"
    )
    assert [r["tenant_id"] for r in owners] == [r["b"] for r in billing_accounts]


def test_cur_sample_end_to_end_matches_an_independent_exact_sum(wh):
    [result], _ = ingest_and_run(wh, CUR)
    assert result.source_format == "cur" and (result.accepted, result.quarantined) == (1281, 0)
    expected = cur_totals(CUR)
    assert published(wh) == expected
    assert sum(expected.values()) == Decimal("1.6823086974")
    taxes = query_rows(
        wh, "SELECT count(*) AS n FROM normalized_billing_events WHERE charge_category = 'tax'"
    )
    assert taxes[0]["n"] > 0
    # Stage 1 keeps lineItem/UsageType: its events roll up per usage type, the same money per type.
    by_type = query_rows(
        wh,
        "SELECT usage_type, CAST(usage_date AS VARCHAR) AS d, sum(billed_cost) AS s "
        "FROM normalized_billing_events GROUP BY ALL",
    )
    assert {(r["usage_type"], r["d"]): r["s"] for r in by_type} == cur_usage_type_totals(CUR)
    assert len({r["usage_type"] for r in by_type}) == 171


def cur_usage_type_totals(path: Path) -> dict[tuple[str | None, str], Decimal]:
    totals: dict[tuple[str | None, str], Decimal] = defaultdict(Decimal)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle):
            key = (row["lineItem/UsageType"].strip() or None, utc_day(row["lineItem/UsageStartDate"]))
            totals[key] += Decimal(row["lineItem/UnblendedCost"])
    return dict(totals)


def restated(src: Path, dst: Path, day: str, factor: Decimal) -> Path:
    """A re-delivery of the same billing period with one day's costs changed."""
    with src.open(newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, list(reader)
    for row in rows:
        if utc_day(row["ChargePeriodStart"]) == day:
            row["BilledCost"] = format(Decimal(row["BilledCost"]) * factor, "f")
    with dst.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return dst


def test_a_focus_redelivery_replaces_the_period_and_recomputes_only_the_changed_day(wh, tmp_path):
    ingest_and_run(wh, FOCUS)
    day = "2024-09-18"
    again = restated(FOCUS, tmp_path / "focus_redelivered.csv", day, Decimal(2))
    _, report = ingest_and_run(wh, again)
    assert published(wh) == focus_totals(again)  # the earlier delivery is fully replaced
    committed = {t.table: [d.isoformat() for d in t.committed] for t in report.tables}
    assert committed["account_service_day_cost"] == [day]
    assert committed["daily_account_cost"] == [day]
    assert any("restated billing period" in reasons for reasons in report.reasons.values())


def test_a_correction_row_lands_in_its_old_partition(wh):
    path = FIXTURES / "focus" / "focus_1.3_correction.csv"
    [result], _ = ingest_and_run(wh, path)
    assert result.quarantined == 0
    rows = query_rows(
        wh,
        "SELECT CAST(usage_date AS VARCHAR) AS d, CAST(billing_period_start AS VARCHAR) AS p "
        "FROM normalized_billing_events ORDER BY d",
    )
    february = [r for r in rows if r["d"].startswith("2025-02")]
    assert february and all(r["p"] == "2025-04-01" for r in february)
    assert published(wh) == focus_totals(path)


def test_an_invoiced_period_is_complete_whatever_the_lag(make_wh):
    wh = make_wh(completeness_lag_hours=10**7)
    ingest_and_run(wh, FIXTURES / "focus" / "focus_1.2_invoiced.csv", FOCUS)
    flags = query_rows(
        wh,
        "SELECT n.invoice_id IS NOT NULL AS invoiced, d.data_complete FROM daily_account_cost d "
        "JOIN (SELECT DISTINCT account_id, usage_date, invoice_id FROM normalized_billing_events) n "
        "USING (account_id, usage_date)",
    )
    assert {(r["invoiced"], r["data_complete"]) for r in flags} == {(True, True), (False, False)}


def test_two_files_of_one_ingest_delivering_one_period_are_warned_about(tmp_path: Path) -> None:
    """A period is replaced whole by its latest delivery, so the parts of one export ingested as two
    files keep only the second's rows (found by a review: money gone without a word): the ingest that
    does so says which file no longer counts, and that `--parts` makes them one delivery."""
    with FOCUS.open(newline="") as handle:
        header, *rows = list(csv.reader(handle))
    parts = [tmp_path / "part-00001.csv", tmp_path / "part-00002.csv"]
    for part, chunk in zip(parts, (rows[: len(rows) // 2], rows[len(rows) // 2 :]), strict=True):
        with part.open("w", newline="") as handle:
            csv.writer(handle).writerows([header, *chunk])
    done = cli(tmp_path / "wh", "ingest", *map(str, parts))
    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"warning: {parts[1]} restates billing period(s) that {parts[0]} of this same ingest delivered; a "
        "period is replaced whole by its latest delivery, so the earlier file's rows of them no longer "
        "count: ingest the parts of one export with --parts (docs/billing_formats.md, Deliveries in parts)"
    ]
    again = cli(tmp_path / "wh2", "ingest", str(FOCUS))  # one file: nothing to say
    assert again.returncode == 0 and again.stderr == ""
    as_parts = cli(tmp_path / "wh3", "ingest", "--parts", *map(str, parts))  # one delivery: nothing either
    assert as_parts.returncode == 0 and as_parts.stderr == ""
