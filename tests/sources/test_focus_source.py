"""The FOCUS source: the real FOCUS 1.0 sample, hand-made 1.2 and 1.3 files, bad rows and bad files."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from costlake.duck import connect, to_arrow
from costlake.errors import InputError
from costlake.settings import Settings
from costlake.sources.base import BatchContext, read_header
from costlake.sources.focus import FocusSource
from costlake.sources.sql_text import ID_RULE
from costlake.tables import QUARANTINE, RAW
from helpers import FIXTURES, changed_row

FOCUS = FIXTURES / "focus"
SAMPLE = FOCUS / "focus_1.0_sample.csv"
LOADED = dt.datetime(2025, 5, 6, 7, 8, 9)
D = Decimal
Row = dict[str, object]


def parse(tmp_path: Path, path: Path, currency: str = "USD") -> tuple[list[Row], list[Row]]:
    """Run the source on `path`; (accepted rows, rejected rows), both in file order."""
    con = connect(Settings(warehouse=str(tmp_path)), tmp_path, ordered=True)
    try:
        ctx = BatchContext("b000001-abc", 1, str(path), LOADED, currency)
        FocusSource().parse(con, path, ctx)
        assert to_arrow(con, "SELECT * FROM accepted").schema.names == RAW.column_names
        assert to_arrow(con, "SELECT * FROM rejected").schema.names == QUARANTINE.column_names
        # The types cast to the lake's schema without loss.
        to_arrow(con, "SELECT * FROM accepted").cast(RAW.arrow_schema())
        accepted = to_arrow(con, "SELECT * FROM accepted ORDER BY source_row").to_pylist()
        rejected = to_arrow(con, "SELECT * FROM rejected ORDER BY source_row").to_pylist()
        return accepted, rejected
    finally:
        con.close()


def utc_date(text: str) -> dt.date:
    """Independent of the code under test: Python's ISO 8601 parser, no zone meaning UTC."""
    stamp = dt.datetime.fromisoformat(text)
    if stamp.tzinfo is not None:
        stamp = stamp.astimezone(dt.UTC)
    return stamp.date()


def is_null(text: str) -> bool:
    return text.strip().upper() in ("", "NULL")


# ---------------------------------------------------------------- the real FOCUS 1.0 sample


def test_real_focus_1_0_sample_totals_match_an_independent_exact_sum(tmp_path):
    accepted, rejected = parse(tmp_path, SAMPLE)
    assert (len(accepted), len(rejected)) == (1000, 0)  # nothing in the sample deserves quarantine

    with SAMPLE.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 1000
    expected_billed: dict[tuple[str, dt.date], Decimal] = defaultdict(Decimal)
    expected_effective: dict[tuple[str, dt.date], Decimal] = defaultdict(Decimal)
    for row in rows:
        account = row["BillingAccountId"] if is_null(row["SubAccountId"]) else row["SubAccountId"]
        key = (account, utc_date(row["ChargePeriodStart"]))
        expected_billed[key] += D(row["BilledCost"])
        expected_effective[key] += D(row["EffectiveCost"])

    got_billed: dict[tuple[str, dt.date], Decimal] = defaultdict(Decimal)
    got_effective: dict[tuple[str, dt.date], Decimal] = defaultdict(Decimal)
    for row in accepted:
        key = (str(row["account_id"]), row["usage_date"])
        got_billed[key] += row["billed_cost"]  # type: ignore[operator]
        got_effective[key] += row["effective_cost"]  # type: ignore[operator]
    assert got_billed == expected_billed
    assert got_effective == expected_effective
    assert len(got_billed) == 477
    assert sum(got_billed.values()) == D("20.52022672899")
    assert sum(got_effective.values()) == D("14.97651418586")


def test_real_focus_1_0_sample_row_by_row(tmp_path):
    accepted, _ = parse(tmp_path, SAMPLE)
    with SAMPLE.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    for row, got in zip(rows, accepted, strict=True):
        assert got["billing_account_id"] == row["BillingAccountId"]
        assert got["service_name"] == row["ServiceName"]
        assert got["region"] == (None if is_null(row["RegionId"]) else row["RegionId"])
        assert got["tags"] == (None if is_null(row["Tags"]) else row["Tags"])
        assert got["billing_period_start"] == utc_date(row["BillingPeriodStart"])
        assert got["charge_category"] == row["ChargeCategory"].lower()

    negative = [r for r in accepted if r["billed_cost"] < 0]  # type: ignore[operator]
    assert len(negative) == 13  # refunds and credits are kept, never dropped
    assert Counter(r["charge_category"] for r in negative) == {"usage": 12, "credit": 1}
    # The 7 Oracle rows carry RegionId NULL; their PricingCategory is blank (not NULL) in the file.
    assert sum(r["region"] is None for r in accepted) == 7
    assert Counter(r["pricing_model"] for r in accepted) == {"on_demand": 988, "other": 8, "savings_plan": 4}
    assert Counter(r["charge_category"] for r in accepted) == {"usage": 997, "adjustment": 2, "credit": 1}
    assert Counter(r["billing_period_start"] for r in accepted) == {
        dt.date(2024, 9, 1): 999,
        dt.date(2024, 10, 1): 1,
    }
    assert {r["invoice_id"] for r in accepted} == {None}  # FOCUS 1.0 has no InvoiceId
    assert {r["usage_type"] for r in accepted} == {None}  # FOCUS 1.0-1.3 has no usage type column
    assert {r["currency"] for r in accepted} == {"USD"}
    assert sum(r["tags"] is None for r in accepted) == 289
    first = accepted[0]
    assert first["event_id"] == "b000001-abc:1"
    assert (first["source_format"], first["batch_seq"], first["source_row"]) == ("focus", 1, 1)
    assert (first["ingestion_ts"], first["load_date"]) == (LOADED, LOADED.date())
    assert (first["billed_cost"], first["effective_cost"]) == (D("0.0000008"), D(0))


# ---------------------------------------------------------------- hand-made FOCUS 1.2 and 1.3 files

COLUMNS = (
    "source_row",
    "event_id",
    "billing_account_id",
    "account_id",
    "service_name",
    "region",
    "pricing_model",
    "charge_category",
    "usage_date",
    "billed_cost",
    "effective_cost",
    "currency",
    "invoice_id",
    "billing_period_start",
    "tags",
)


def project(rows: list[Row]) -> list[tuple[object, ...]]:
    return [tuple(r[c] for c in COLUMNS) for r in rows]


def test_focus_1_2_file_with_invoice_ids(tmp_path):
    accepted, rejected = parse(tmp_path, FOCUS / "focus_1.2_invoiced.csv")
    assert rejected == []
    inv, ba, sub, march = "INV-2025-03-0042", "111122223333", "222200001111", dt.date(2025, 3, 1)
    assert project(accepted) == [
        # 15 decimal places, the extra ones zeros: exact, accepted.
        (1, "b000001-abc:1", ba, sub, "Acme Compute", "us-east-1", "on_demand", "usage",
         dt.date(2025, 3, 3), D("1.25"), D("1.25"), "USD", inv, march, '{"team": "web", "env": "prod"}'),
        # 2025-03-04T01:30+02:00 is 2025-03-03T23:30Z: the UTC date counts.
        (2, "b000001-abc:2", ba, sub, "Acme Compute", "us-east-1", "reserved", "usage",
         dt.date(2025, 3, 3), D(0), D("0.083333333333"), "USD", inv, march, '{"team": "web"}'),
        # Buying a reservation: PricingCategory Standard, but the commitment's kind wins.
        (3, "b000001-abc:3", ba, sub, "Acme Compute", None, "reserved", "purchase",
         dt.date(2025, 3, 1), D(720), D(0), "USD", inv, march, None),
        # Tax: no sub account (falls back to the billing account), no pricing model, EffectiveCost NULL.
        (4, "b000001-abc:4", ba, ba, "Tax", None, "other", "tax",
         dt.date(2025, 3, 1), D("10.43"), D("10.43"), "USD", inv, march, None),
        # Dynamic pricing is spot; a blank InvoiceId is null; Tags that are not a JSON object are dropped.
        (5, "b000001-abc:5", ba, sub, "Acme Compute", "eu-west-1", "spot", "usage",
         dt.date(2025, 3, 31), D("0.0312"), D("0.0312"), "USD", None, march, None),
    ]  # fmt: skip


def test_focus_1_3_file_with_renamed_provider_columns_and_a_correction(tmp_path):
    path = FOCUS / "focus_1.3_correction.csv"
    header = read_header(path)
    assert "serviceprovidername" in header and "providername" not in header  # the 1.3 rename
    accepted, rejected = parse(tmp_path, path)
    assert rejected == []
    ba, sub, april = "999988887777", "444455556666", dt.date(2025, 4, 1)
    assert project(accepted) == [
        # 2025-04-01T21:00-05:00 is 2025-04-02T02:00Z; BillingCurrency 'usd' is upper-cased.
        (1, "b000001-abc:1", ba, sub, "Acme Compute", "us-east-2", "savings_plan", "usage",
         dt.date(2025, 4, 2), D(0), D("0.42"), "USD", None, april,
         '{"team": "data", "cost-center": "cc-17", "acme/managed": true}'),
        # ChargeClass Correction: an ordinary row that lands on its original (February) charge day
        # while belonging to the April billing period that issues it.
        (2, "b000001-abc:2", ba, sub, "Acme Compute", "us-east-2", "other", "usage",
         dt.date(2025, 2, 14), D("-12.5"), D("-12.5"), "USD", "INV-2025-04-0007", april, None),
        # Lower-case `null` is null too: the account falls back to the billing account.
        (3, "b000001-abc:3", ba, ba, "Acme Compute", None, "other", "credit",
         dt.date(2025, 4, 10), D(-5), D(-5), "USD", None, april, None),
        # Marketplace: ServiceProviderName differs from HostProviderName; neither is a raw column.
        (4, "b000001-abc:4", ba, sub, "Sample Observability", "us-east-2", "on_demand", "usage",
         dt.date(2025, 4, 30), D(3), D(3), "USD", None, april, None),
    ]  # fmt: skip


# ---------------------------------------------------------------- bad rows

HEADER = (
    "BillingAccountId",
    "SubAccountId",
    "ServiceName",
    "ChargePeriodStart",
    "BillingPeriodStart",
    "BilledCost",
    "EffectiveCost",
    "BillingCurrency",
    "ChargeCategory",
    "PricingCategory",
    "Tags",
)
GOOD = ["BA", "S1", "Compute", "2025-01-01T10:00:00Z", "2025-01-01T00:00:00Z", "1.5", "1.25", "USD", "Usage",
        "Standard", "NULL"]  # fmt: skip


def bad(**change: str) -> list[str]:
    return changed_row(HEADER, GOOD, **change)


CASES = {
    "currency EUR, no FX rates configured": bad(BillingCurrency="eur"),
    "BillingCurrency 'US$' is not an ISO 4217 code": bad(BillingCurrency="US$"),
    "missing BillingCurrency": bad(BillingCurrency="NULL"),
    "BilledCost '12,50' is not a decimal number": bad(BilledCost="12,50"),
    "BilledCost '1E-7' is not a decimal number": bad(BilledCost="1E-7"),
    "BilledCost '0.1234567890123' has more than 12 decimal places": bad(BilledCost="0.1234567890123"),
    "BilledCost '123456789012345678901234567' is too large for DECIMAL(38,12)": bad(
        BilledCost="123456789012345678901234567"
    ),
    "missing BilledCost": bad(BilledCost="NULL"),
    "EffectiveCost 'n/a' is not a decimal number": bad(EffectiveCost="n/a"),
    "missing BillingAccountId": bad(BillingAccountId="Null"),
    "missing ServiceName": bad(ServiceName=" "),
    "missing ChargePeriodStart": bad(ChargePeriodStart=""),
    "ChargePeriodStart '2025-02-30T00:00:00Z' is not an ISO 8601 timestamp "
    "(YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])": bad(ChargePeriodStart="2025-02-30T00:00:00Z"),
    "ChargePeriodStart '01/02/2025 10:00' is not an ISO 8601 timestamp "
    "(YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])": bad(ChargePeriodStart="01/02/2025 10:00"),
    "missing ChargeCategory": bad(ChargeCategory="NULL"),
    "ChargeCategory 'Refund' is not one of Usage, Purchase, Tax, Credit, Adjustment": bad(
        ChargeCategory="Refund"
    ),
    "missing BillingPeriodStart": bad(BillingPeriodStart="NULL"),
    # Hostile values: a formula or a space in an identifier, a very long one, dates outside the window.
    f"BillingAccountId '=1+1' is not an identifier ({ID_RULE})": bad(BillingAccountId="=1+1"),
    f"SubAccountId 'sub 1' is not an identifier ({ID_RULE})": bad(SubAccountId="sub 1"),
    "SubAccountId is 129 characters long, over the 128 of an identifier": bad(SubAccountId="s" * 129),
    "ChargePeriodStart '1999-12-31T23:00:00Z' is before 2000-01-01 (setting usage_date_min)": bad(
        ChargePeriodStart="1999-12-31T23:00:00Z"
    ),
    "ChargePeriodStart '2026-06-11T00:00:00Z' is more than 400 days after the load date "
    "(setting usage_date_max_days_ahead)": bad(ChargePeriodStart="2026-06-11T00:00:00Z"),
    "BillingPeriodStart '0001-01-01T00:00:00Z' is before 2000-01-01 (setting usage_date_min)": bad(
        BillingPeriodStart="0001-01-01T00:00:00Z"
    ),
    "ServiceName is 5000 bytes, over the 4096-byte limit (setting max_field_bytes)": bad(
        ServiceName="x" * 5000
    ),
}


def test_every_kind_of_bad_row_is_quarantined_with_its_reason(tmp_path, write_csv):
    many = bad(BillingAccountId="", BilledCost="x", ChargeCategory="Bonus")
    path = write_csv("bad.csv", [GOOD, *CASES.values(), many], header=HEADER)
    accepted, rejected = parse(tmp_path, path)
    assert [r["source_row"] for r in accepted] == [1]
    assert [r["reason"] for r in rejected[:-1]] == list(CASES)
    # Several problems in one row: all of them are named.
    assert rejected[-1]["reason"] == (
        "missing BillingAccountId; BilledCost 'x' is not a decimal number; "
        "ChargeCategory 'Bonus' is not one of Usage, Purchase, Tax, Credit, Adjustment"
    )
    first = rejected[0]
    assert (first["batch_id"], first["batch_seq"], first["source_row"]) == ("b000001-abc", 1, 2)
    assert (first["source_file"], first["load_date"]) == (str(path), LOADED.date())
    # The original text of every field, under the file's own column names (a literal NULL stays text).
    assert json.loads(str(first["raw_record"])) == dict(zip(HEADER, CASES[first["reason"]], strict=True))


def test_money_and_timestamps_are_read_exactly(tmp_path, write_csv):
    rows = [
        bad(BilledCost="0.123456789012000", EffectiveCost="NULL"),  # zeros past 12 places: exact
        bad(BilledCost="-0.000000000001", ChargePeriodStart="2025-01-01 00:30:00+01:00"),  # the day before
        bad(BilledCost="999999999999999999.999999999999", ChargePeriodStart="2025-01-01T23:30:00-0100"),
        bad(ChargePeriodStart="2025-01-01T10:00:00.123456Z", BillingPeriodStart="2025-01-01"),
        bad(ChargePeriodStart="2025-01-01T23:45+00:15"),
    ]
    accepted, rejected = parse(tmp_path, write_csv("exact.csv", rows, header=HEADER))
    assert rejected == []
    assert [(r["billed_cost"], r["effective_cost"], r["usage_date"]) for r in accepted] == [
        (D("0.123456789012"), D("0.123456789012"), dt.date(2025, 1, 1)),
        (D("-1E-12"), D("1.25"), dt.date(2024, 12, 31)),
        (D("999999999999999999.999999999999"), D("1.25"), dt.date(2025, 1, 2)),
        (D("1.5"), D("1.25"), dt.date(2025, 1, 1)),
        (D("1.5"), D("1.25"), dt.date(2025, 1, 1)),
    ]
    assert {r["billing_period_start"] for r in accepted} == {dt.date(2025, 1, 1)}


def test_pricing_model_and_tags(tmp_path, write_csv):
    header = (*HEADER, "CommitmentDiscountCategory", "CommitmentDiscountType")
    cases = [
        ("Standard", "NULL", "NULL", "on_demand"),
        ("On-Demand", "NULL", "NULL", "on_demand"),  # the pre-1.0 name of Standard
        ("dynamic", "NULL", "NULL", "spot"),
        ("Committed", "Spend", "Savings Plan", "savings_plan"),
        ("Committed", "Usage", "Reservation", "reserved"),
        ("Committed", "NULL", "Compute Savings Plan", "savings_plan"),
        ("Committed", "NULL", "Reserved Instance", "reserved"),
        ("Committed", "NULL", "NULL", "other"),
        ("Other", "NULL", "NULL", "other"),
        ("NULL", "NULL", "NULL", "other"),
        ("Interruptible", "NULL", "NULL", "other"),
    ]
    rows = [[*bad(PricingCategory=p), c, t] for p, c, t, _ in cases]
    tags = ['{"a": "b"}', '{"k": true, "n": null}', "NULL", "null", "[1, 2]", '"text"', "{broken", "a=b", ""]
    rows += [[*bad(Tags=t), "NULL", "NULL"] for t in tags]
    accepted, rejected = parse(tmp_path, write_csv("pricing.csv", rows, header=header))
    assert rejected == []  # bad Tags never cost a row
    assert [r["pricing_model"] for r in accepted[: len(cases)]] == [want for *_, want in cases]
    assert [r["tags"] for r in accepted[len(cases) :]] == [tags[0], tags[1], *[None] * 7]


def test_headers_are_case_insensitive_and_optional_columns_may_be_absent(tmp_path, write_csv):
    header = [
        "billedcost", "BILLINGACCOUNTID", "billingCurrency", "ChargeCategory", "chargeperiodstart",
        "ServiceName", "BillingPeriodStart", "x_Custom",
    ]  # fmt: skip
    row = ["2.5", "BA", "USD", "usage", "2025-01-01T00:00:00Z", "Svc", "2025-01-01T00:00:00Z", "ignored"]
    accepted, rejected = parse(tmp_path, write_csv("lower.csv", [row], header=header))
    assert rejected == []
    [got] = accepted
    assert (got["account_id"], got["billed_cost"], got["effective_cost"]) == ("BA", D("2.5"), D("2.5"))
    assert (got["region"], got["invoice_id"], got["tags"], got["pricing_model"]) == (
        None,
        None,
        None,
        "other",
    )


def test_missing_required_column_is_an_input_error(tmp_path, write_csv):
    header = [c for c in HEADER if c not in ("BillingPeriodStart", "ServiceName")]
    path = write_csv("no_period.csv", [["x"] * len(header)], header=header)
    with pytest.raises(InputError) as err:
        parse(tmp_path, path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: missing required FOCUS column(s) ServiceName, BillingPeriodStart;")


def test_duplicate_column_is_an_input_error(tmp_path, write_csv):
    path = write_csv("dupe.csv", [[*GOOD, "x"]], header=[*HEADER, "billedcost"])
    with pytest.raises(InputError, match="billedcost appear"):
        parse(tmp_path, path)


def test_detection_from_the_header():
    assert FocusSource.matches(read_header(SAMPLE))
    assert FocusSource.matches(read_header(FOCUS / "focus_1.3_correction.csv"))
    assert not FocusSource.matches(["event_id", "usage_date", "account_id", "service_name", "cost_usd"])
    assert not FocusSource.matches([c.lower() for c in HEADER if c != "ChargeCategory"])
    assert "BilledCost" in FocusSource.expected() and "InvoiceId" in FocusSource.expected()


def test_the_rows_are_held_once_with_the_split_as_views(tmp_path):
    con = connect(Settings(warehouse=str(tmp_path)), tmp_path, ordered=True)
    FocusSource().parse(con, SAMPLE, BatchContext("b", 1, "f", LOADED, "USD"))
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    assert tables == {"checked"}  # the text of the file is gone; accepted and rejected copy nothing
    views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    assert views == {"accepted", "rejected"}
    counts = {name: con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] for name in tables | views}
    assert counts["accepted"] == 1000 and counts["accepted"] + counts["rejected"] == counts["checked"]
    # Only a refused row keeps the row as delivered (quarantine's raw_record); quarantine tests check
    # that it does.
    kept = con.execute("SELECT count(raw_record) FROM checked WHERE reason = ''").fetchall()
    assert kept == [(0,)]
    with pytest.raises(duckdb.Error):
        con.execute("SELECT * FROM text_rows")
