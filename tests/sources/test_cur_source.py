"""The AWS CUR source (legacy CUR and CUR 2.0): line item types, amortised cost, exact money, quarantine."""

from __future__ import annotations

import csv
import datetime as dt
import json
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from costlake.duck import connect, to_arrow
from costlake.errors import InputError
from costlake.settings import Settings
from costlake.sources.base import BatchContext, read_header
from costlake.sources.cur import CurSource
from costlake.sources.registry import SOURCES
from costlake.sources.sql_text import ID_RULE
from costlake.tables import QUARANTINE, RAW
from helpers import CUR_HEADER, changed_row

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cur"
SAMPLE = FIXTURES / "aws_cur_legacy_sample.csv"
LOADED = dt.datetime(2024, 4, 2, 8, 30, 0)
D = Decimal

# Row by row of cur2_line_item_types.csv and legacy_line_item_types.csv (same cases, both layouts):
# (line item type, billed_cost, effective_cost, charge_category, pricing_model, usage_date)
CASES = [
    ("SavingsPlanCoveredUsage", D("0.192"), D("0.1234"), "usage", "savings_plan", "2024-03-05"),
    ("SavingsPlanNegation", D("-0.192"), D("0"), "adjustment", "savings_plan", "2024-03-05"),
    ("SavingsPlanRecurringFee", D("0.5"), D("0.3766"), "purchase", "savings_plan", "2024-03-05"),
    ("SavingsPlanUpfrontFee", D("8760"), D("0"), "purchase", "savings_plan", "2024-03-01"),
    ("DiscountedUsage", D("0"), D("0.0625"), "usage", "reserved", "2024-03-05"),
    ("RIFee", D("45.6"), D("4.75"), "purchase", "reserved", "2024-03-01"),
    ("Fee with reservation ARN", D("500"), D("0"), "purchase", "reserved", "2024-03-01"),
    ("Fee (support)", D("100"), D("100"), "purchase", None, "2024-03-01"),
    ("Credit", D("-25"), D("-25"), "credit", None, "2024-03-04"),
    ("Refund", D("-3"), D("-3"), "credit", None, "2024-03-04"),
    ("Refund of a Savings Plan upfront fee", D("-8760"), D("0"), "credit", None, "2024-03-01"),
    ("Tax", D("4.2"), D("4.2"), "tax", None, "2024-03-01"),
    ("Usage, SpotUsage", D("0.0345"), D("0.0345"), "usage", "spot", "2024-03-06"),
    ("Usage at 22:30 -05:00", D("0.023"), D("0.023"), "usage", "on_demand", "2024-03-06"),
    ("EdpDiscount", D("-0.0096"), D("-0.0096"), "adjustment", None, "2024-03-05"),
    ("Usage 1.81E-8, no zone", D("0.0000000181"), D("0.0000000181"), "usage", "on_demand", "2024-03-07"),
]


def parse(
    tmp_path: Path, path: Path, currency: str = "USD", tz: str | None = None
) -> duckdb.DuckDBPyConnection:
    con = connect(Settings(warehouse=str(tmp_path / "wh")), tmp_path, ordered=True)
    if tz:
        con.execute(f"SET TimeZone = '{tz}'")
    CurSource().parse(con, path, BatchContext("batch-1", 7, path.name, LOADED, currency))
    return con


def rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    return list(to_arrow(con, sql).to_pylist())


def write(tmp_path: Path, name: str, header: list[str], body: list[list[str]]) -> Path:
    path = tmp_path / name
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body)
    return path


def test_detects_both_layouts_and_is_registered():
    assert SOURCES["cur"] is CurSource
    assert CurSource.matches(read_header(SAMPLE))
    assert CurSource.matches(read_header(FIXTURES / "cur2_line_item_types.csv"))
    assert not CurSource.matches(["event_id", "usage_date", "account_id", "service_name", "cost_usd"])
    assert "lineItem/UnblendedCost" in CurSource.expected()
    assert "line_item_unblended_cost" in CurSource.expected()


def test_real_legacy_sample_every_row_accepted_with_exact_daily_totals(tmp_path):
    con = parse(tmp_path, SAMPLE)
    accepted = rows(con, "SELECT * FROM accepted ORDER BY source_row")
    assert rows(con, "SELECT count(*) AS n FROM rejected") == [{"n": 0}]
    assert len(accepted) == 1281
    assert to_arrow(con, "SELECT * FROM accepted").schema.names == RAW.column_names
    to_arrow(con, "SELECT * FROM accepted").cast(RAW.arrow_schema())  # castable to the raw table

    # Independent of the code under test: the file read with csv, costs summed with Decimal.
    with SAMPLE.open(newline="", encoding="utf-8-sig") as handle:
        source = list(csv.DictReader(handle))
    expected: dict[tuple[str, dt.date], Decimal] = defaultdict(Decimal)
    for record in source:
        day = dt.date.fromisoformat(record["lineItem/UsageStartDate"][:10])
        expected[(record["lineItem/UsageAccountId"], day)] += Decimal(record["lineItem/UnblendedCost"])
    got: dict[tuple[str, dt.date], Decimal] = defaultdict(Decimal)
    for row in accepted:
        got[(row["account_id"], row["usage_date"])] += row["billed_cost"]
    assert got == expected
    assert sum(expected.values()) == Decimal("1.6823086974")
    assert len(expected) == 14  # 2023-11-01 .. 2023-11-14, one account
    # Row by row too: 681 costs are in E-notation ('1.81E-8') and must be exact.
    assert [r["billed_cost"] for r in accepted] == [Decimal(s["lineItem/UnblendedCost"]) for s in source]
    assert all(r["effective_cost"] == r["billed_cost"] for r in accepted)  # no RI/SP line items

    tax = [r for r in accepted if r["charge_category"] == "tax"]
    assert len(tax) == 12 and sum(r["billed_cost"] for r in tax) == Decimal("0.08")
    assert {r["pricing_model"] for r in tax} == {None}
    assert {(r["charge_category"], r["pricing_model"]) for r in accepted if r not in tax} == {
        ("usage", "on_demand")
    }
    assert {r["invoice_id"] for r in accepted} == {None}  # bill not final yet
    assert {r["billing_period_start"] for r in accepted} == {dt.date(2023, 11, 1)}
    assert {r["billing_account_id"] for r in accepted} == {"123412340534"}
    assert {r["currency"] for r in accepted} == {"USD"}
    assert {r["source_format"] for r in accepted} == {"cur"}
    assert [r["event_id"] for r in accepted[:2]] == ["batch-1:1", "batch-1:2"]
    assert {(r["batch_id"], r["batch_seq"], r["load_date"]) for r in accepted} == {
        ("batch-1", 7, dt.date(2024, 4, 2))
    }
    # service: product/servicecode, else lineItem/ProductCode (Tax rows have no servicecode).
    assert accepted[0]["service_name"] == "AWSCloudTrail"
    assert sum(r["service_name"] == "AWSDataTransfer" for r in accepted) == 447
    assert sum(r["region"] is None for r in accepted) == 12
    # usage_type: lineItem/UsageType as delivered (trimmed, blank as NULL), row by row.
    assert [r["usage_type"] for r in accepted] == [s["lineItem/UsageType"].strip() or None for s in source]
    assert len({r["usage_type"] for r in accepted}) == 171
    assert sum(r["usage_type"] == "USE1-CAN1-AWS-Out-Bytes" for r in accepted) == 61


@pytest.mark.parametrize("fixture", ["cur2_line_item_types.csv", "legacy_line_item_types.csv"])
def test_every_line_item_type_billed_and_amortised_like_cid(tmp_path, fixture):
    con = parse(tmp_path, FIXTURES / fixture)
    assert rows(con, "SELECT count(*) AS n FROM rejected") == [{"n": 0}]
    got = rows(
        con,
        "SELECT billed_cost, effective_cost, charge_category, pricing_model, usage_date, tags, region, "
        "service_name, usage_type FROM accepted ORDER BY source_row",
    )
    assert len(got) == len(CASES)
    for row, (case, billed, effective, category, pricing, day) in zip(got, CASES, strict=True):
        actual = (row["billed_cost"], row["effective_cost"], row["charge_category"], row["pricing_model"])
        assert actual == (billed, effective, category, pricing), case
        assert row["usage_date"] == dt.date.fromisoformat(day), case
    # Every line item stays in billed cost: the invoice total. Amortised total differs by design.
    assert sum(r["billed_cost"] for r in got) == sum(c[1] for c in CASES) == Decimal("622.3479000181")
    assert sum(r["effective_cost"] for r in got) == Decimal("81.5604000181")
    team, env = ("user:Team", "user:Env") if fixture.startswith("legacy") else ("user_team", "user_env")
    assert json.loads(got[0]["tags"]) == {team: "core", env: "prod"}
    assert json.loads(got[13]["tags"]) == {team: "data"}  # blank tag values dropped
    assert got[1]["tags"] is None
    assert got[11]["service_name"] == "AmazonEC2" and got[11]["region"] is None  # Tax: product code
    assert got[15]["service_name"] == "AWSDataTransfer"
    # The usage type of the layout's column (both spellings), blank as NULL.
    assert [got[i]["usage_type"] for i in (0, 4, 12, 13)] == [
        "USE1-BoxUsage:m5.xlarge",
        "USE1-BoxUsage:m5.large",
        "USE1-SpotUsage:m5.large",
        "USE1-TimedStorage-ByteHrs",
    ]
    assert got[2]["usage_type"] is None


def test_final_bill_carries_its_invoice_id(tmp_path):
    con = parse(tmp_path, FIXTURES / "cur2_final_bill.csv")
    got = rows(
        con, "SELECT invoice_id, billing_period_start, charge_category FROM accepted ORDER BY source_row"
    )
    assert got == [
        {"invoice_id": "EUINUS24-0001234", "billing_period_start": dt.date(2024, 2, 1), "charge_category": c}
        for c in ("usage", "tax")
    ]


def test_usage_dates_are_utc_whatever_the_session_time_zone(tmp_path):
    con = parse(tmp_path, FIXTURES / "cur2_line_item_types.csv", tz="America/Los_Angeles")
    got = [
        r["usage_date"].isoformat() for r in rows(con, "SELECT usage_date FROM accepted ORDER BY source_row")
    ]
    assert got == [c[5] for c in CASES]


V2 = [*CUR_HEADER, "savings_plan_savings_plan_effective_cost", "resource_tags"]
GOOD = [
    "111",
    "2024-03-01T00:00:00Z",
    "222",
    "Usage",
    "2024-03-02T00:00:00Z",
    "AmazonEC2",
    "1.5",
    "USD",
    "",
    "",
]


def bad(**change: str) -> list[str]:
    return changed_row(V2, GOOD, **change)


BAD = {
    "missing bill_payer_account_id": bad(bill_payer_account_id=" "),
    "missing line_item_usage_account_id": bad(line_item_usage_account_id=""),
    "missing line_item_product_code": bad(line_item_product_code=""),
    "missing line_item_line_item_type": bad(line_item_line_item_type=""),
    "line_item_line_item_type 'Bonus' is not a known line item type": bad(line_item_line_item_type="Bonus"),
    "missing line_item_usage_start_date": bad(line_item_usage_start_date=""),
    "line_item_usage_start_date 'yesterday' is not an ISO 8601 timestamp "
    "(YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])": bad(line_item_usage_start_date="yesterday"),
    "line_item_usage_start_date '2024-02-30T00:00:00Z' is not an ISO 8601 timestamp "
    "(YYYY-MM-DD[THH:MM[:SS]][Z|+HH:MM])": bad(line_item_usage_start_date="2024-02-30T00:00:00Z"),
    "missing bill_billing_period_start_date": bad(bill_billing_period_start_date=""),
    "missing line_item_unblended_cost": bad(line_item_unblended_cost=""),
    "line_item_unblended_cost 'abc' is not a decimal number": bad(line_item_unblended_cost="abc"),
    "line_item_unblended_cost '0.1234567890123' has more than 12 decimal places": bad(
        line_item_unblended_cost="0.1234567890123"
    ),
    "line_item_unblended_cost '1.5E-13' has more than 12 decimal places": bad(
        line_item_unblended_cost="1.5E-13"
    ),
    "line_item_unblended_cost '1E+30' is too large for DECIMAL(38,12)": bad(line_item_unblended_cost="1E+30"),
    "savings_plan_savings_plan_effective_cost 'n/a' is not a decimal number": bad(
        line_item_line_item_type="SavingsPlanCoveredUsage", savings_plan_savings_plan_effective_cost="n/a"
    ),
    "missing line_item_currency_code": bad(line_item_currency_code=""),
    "currency EUR, no FX rates configured": bad(line_item_currency_code="eur"),
    "currency 'US$' is not an ISO 4217 code": bad(line_item_currency_code="US$"),
    # Hostile values: a formula in an identifier, dates outside the window, an oversized field.
    f"line_item_usage_account_id '@SUM(A1)' is not an identifier ({ID_RULE})": bad(
        line_item_usage_account_id="@SUM(A1)"
    ),
    f"bill_payer_account_id '11?1' is not an identifier ({ID_RULE})": bad(bill_payer_account_id="11\t1"),
    "line_item_usage_start_date '9999-12-31T00:00:00Z' is more than 400 days after the load date "
    "(setting usage_date_max_days_ahead)": bad(line_item_usage_start_date="9999-12-31T00:00:00Z"),
    "line_item_product_code is 4097 bytes, over the 4096-byte limit (setting max_field_bytes)": bad(
        line_item_product_code="é" * 2048 + "x"
    ),
}
ODD_BUT_GOOD = {
    # extra decimal places that are zeros, an offset, blank formula column, unparseable tags
    "zeros": (bad(line_item_unblended_cost="0.123456789012000"), D("0.123456789012"), "2024-03-02"),
    "offset": (bad(line_item_usage_start_date="2024-03-02T23:30:00.000-02:00"), D("1.5"), "2024-03-03"),
    "no sp cost": (bad(line_item_line_item_type="SavingsPlanCoveredUsage"), D("1.5"), "2024-03-02"),
    "tags": (bad(resource_tags="{not json"), D("1.5"), "2024-03-02"),
    "athena map": (bad(resource_tags="{user_team=core, user_env=}"), D("1.5"), "2024-03-02"),
    "E+ and no zone": (
        bad(line_item_unblended_cost="2.5E+2", line_item_usage_start_date="2024-03-02"),
        D(250),
        "",
    ),
}


def test_every_kind_of_bad_row_is_quarantined_with_its_reason(tmp_path):
    two = bad(line_item_usage_account_id="", line_item_unblended_cost="x")
    path = write(tmp_path, "bad.csv", V2, [GOOD, *BAD.values(), two, *(c[0] for c in ODD_BUT_GOOD.values())])
    con = parse(tmp_path, path)
    rejected = rows(con, "SELECT * FROM rejected ORDER BY source_row")
    assert to_arrow(con, "SELECT * FROM rejected").schema.names == QUARANTINE.column_names
    assert [r["reason"] for r in rejected] == [
        *BAD,
        "missing line_item_usage_account_id; line_item_unblended_cost 'x' is not a decimal number",
    ]
    assert [r["source_row"] for r in rejected] == list(range(2, len(BAD) + 3))
    raw = json.loads(rejected[-1]["raw_record"])
    assert raw["line_item_unblended_cost"] == "x" and raw["line_item_usage_account_id"] is None  # empty field

    accepted = rows(
        con, "SELECT billed_cost, effective_cost, usage_date, tags FROM accepted ORDER BY source_row"
    )
    assert len(accepted) == 1 + len(ODD_BUT_GOOD)
    for row, (case, (_, cost, day)) in zip(accepted[1:], ODD_BUT_GOOD.items(), strict=True):
        assert row["billed_cost"] == cost, case
        assert row["usage_date"] == dt.date.fromisoformat(day or "2024-03-02"), case
    assert (
        accepted[3]["effective_cost"] == 0
    )  # SavingsPlanCoveredUsage without its effective cost column value
    assert accepted[4]["tags"] is None
    assert json.loads(accepted[5]["tags"]) == {"user_team": "core"}


def test_missing_columns_are_one_clear_input_error(tmp_path):
    path = write(tmp_path, "partial.csv", V2[2:], [GOOD[2:]])
    with pytest.raises(InputError) as err:
        parse(tmp_path, path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "bill_payer_account_id, bill_billing_period_start_date" in message
    legacy = write(
        tmp_path, "legacy.csv", ["lineItem/UsageAccountId", "lineItem/UnblendedCost"], [["1", "2"]]
    )
    with pytest.raises(
        InputError, match=r"bill/PayerAccountId, lineItem/LineItemType, lineItem/UsageStartDate"
    ):
        parse(tmp_path, legacy)


def test_malformed_csv_is_an_input_error(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text(",".join(V2) + "\n" + ",".join(GOOD) + ',"unterminated\n')
    with pytest.raises(InputError, match="malformed CSV"):
        parse(tmp_path, path)
