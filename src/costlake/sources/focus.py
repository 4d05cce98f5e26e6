"""FinOps FOCUS 1.0–1.3 cost and usage files: one FOCUS row becomes one raw row.

Spec: FinOps Open Cost and Usage Specification, https://focus.finops.org (column pages under
`specification/datasets/cost_and_usage/columns/` in FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec).
Header names are case-insensitive, columns not listed below are ignored, and `NULL` (any case) or a
blank field is a null in every column (the FOCUS samples write nulls as the literal `NULL`).

| raw column           | from FOCUS                                                                    |
| -------------------- | ----------------------------------------------------------------------------- |
| event_id             | batch_id || ':' || source_row (rows are not events; a later stage rolls them up) |
| billing_account_id   | BillingAccountId (required)                                                   |
| account_id           | SubAccountId, else BillingAccountId (SubAccountId is conditional, nullable)   |
| service_name         | ServiceName (required)                                                        |
| region               | RegionId (1.0+; it was `Region` in 0.5)                                       |
| pricing_model        | derived, see below                                                            |
| charge_category      | lower(ChargeCategory): usage, purchase, tax, credit, adjustment; else rejected |
| usage_date           | UTC date of ChargePeriodStart (`Z`, an offset, or no zone = UTC)              |
| billed_cost          | BilledCost, exact DECIMAL(38,12)                                              |
| effective_cost       | EffectiveCost, or BilledCost when the column is absent or the value null      |
| currency             | upper(BillingCurrency); anything but the reporting currency is rejected       |
| invoice_id           | InvoiceId (added in 1.2; null before)                                         |
| billing_period_start | UTC date of BillingPeriodStart (required: the restatement unit)               |
| tags                 | Tags as delivered when it is a JSON object, else null (the row is kept)       |
| account_name         | SubAccountName where SubAccountId is set, else BillingAccountName (account_id's) |
| product_name         | null: ServiceName is the service key, and dim_service keeps its spelling      |
| usage_type           | null: FOCUS 1.0–1.3 has no usage type column (provider `x_` columns are not read) |
| ingestion_ts         | when the batch was loaded (FOCUS has no delivery timestamp)                   |

pricing_model, first match wins:

| CommitmentDiscountCategory / Type | PricingCategory                   | pricing_model |
| --------------------------------- | --------------------------------- | ------------- |
| Category `Spend`                  | any                               | savings_plan  |
| Category `Usage`                  | any                               | reserved      |
| Type contains `savings`           | any                               | savings_plan  |
| Type contains `reserv`            | any                               | reserved      |
| null                              | `Standard` (`On-Demand` pre-1.0)  | on_demand     |
| null                              | `Dynamic`                         | spot          |
| null                              | `Committed`, `Other`, null, other | other         |

A commitment's purchase and its unused share carry its category too, so they get its kind.
`Committed` without a category or type cannot say which kind of commitment: `other`, not a guess.
A null PricingCategory (Tax rows, credits, adjustments, corrections) has no pricing model: `other`.

Tags are descriptive: a malformed Tags value must not remove a charge from the totals, so it
becomes null and the row is kept. Money is never read as float: more than 12 decimal places are
accepted only when the extra digits are zeros. ChargeClass `Correction` rows are ordinary rows here:
they carry the original ChargePeriodStart and the BillingPeriodStart of the period that issues them.
FOCUS 1.3 renamed ProviderName/PublisherName to ServiceProviderName/HostProviderName; none of them
feeds a raw column, so 1.0–1.3 files are read alike.

The checks every source shares (sources/sql_text.py): BillingAccountId and SubAccountId follow the
identifier rule, both period starts lie in the batch's date window, and no field (of any column) is
larger than the batch's limit.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from costlake.duck import sql_string
from costlake.errors import InputError
from costlake.sources import sql_text
from costlake.sources.base import BatchContext, Source, read_header
from costlake.sources.input_files import column_names

# The FOCUS core a file must have to be recognised: Mandatory, non-null columns in every version since 0.5
# (FOCUS_Spec CHANGELOG; columns/*.md "Allows nulls: False"). BillingPeriodStart is the restatement unit.
DETECT = (
    "BilledCost",
    "BillingAccountId",
    "BillingCurrency",
    "ChargeCategory",
    "ChargePeriodStart",
    "ServiceName",
)
REQUIRED = (*DETECT, "BillingPeriodStart")
OPTIONAL = (
    "EffectiveCost",
    "SubAccountId",
    "RegionId",
    "PricingCategory",
    "CommitmentDiscountCategory",
    "CommitmentDiscountType",
    "InvoiceId",
    "Tags",
    "SubAccountName",
    "BillingAccountName",
)
CHARGE_CATEGORIES = ("Usage", "Purchase", "Tax", "Credit", "Adjustment")  # ChargeCategory allowed values
# NullHandling attribute: an absent value is NULL; CSV exports write it as the literal NULL.
# (field_text: sources/sql_text.py; only a text of at most four characters can read NULL in upper case.)
_FOCUS_NULL = """CREATE OR REPLACE TEMP MACRO focus_null(x) AS
    CASE WHEN NOT (length(field_text(x)) <= 4 AND upper(field_text(x)) = 'NULL') THEN field_text(x) END"""


class FocusSource(Source):
    format = "focus"
    description = "FinOps FOCUS 1.0–1.3 cost and usage export"
    key_columns = "BilledCost,ChargePeriodStart,…"

    @classmethod
    def matches(cls, header: list[str]) -> bool:
        return {c.lower() for c in DETECT} <= set(header)

    @classmethod
    def expected(cls) -> str:
        return "FOCUS columns " + ",".join(REQUIRED) + " (optional: " + ",".join(OPTIONAL) + ")"

    def parse(self, con: duckdb.DuckDBPyConnection, path: Path, ctx: BatchContext) -> None:
        header = read_header(path)
        missing = [c for c in REQUIRED if c.lower() not in header]
        if missing:
            raise InputError(
                f"{path}: missing required FOCUS column(s) {', '.join(missing)}; expected {self.expected()}"
            )
        sql_text.install_macros(con)
        con.execute(_FOCUS_NULL)
        sql_text.load_text(con, path, header)
        sql_text.split_checked(con, _checked_sql(path, header, ctx))


def _original_names(path: Path, header: list[str]) -> list[str]:
    """The header as written in the file (for raw_record keys); `header` is its lower-cased twin."""
    names = column_names(path)
    return names if len(names) == len(header) else header


def _normalised(header: list[str]) -> str:
    """Each used column as trimmed text under its FOCUS name, NULL for blank, `NULL` or absent."""
    cols = []
    for name in REQUIRED + OPTIONAL:
        text = f'focus_null("{name.lower()}")' if name.lower() in header else "CAST(NULL AS VARCHAR)"
        cols.append(f"{text} AS {name}")
    return ", ".join(cols)


def _date_checks(column: str, ctx: BatchContext) -> tuple[str, str]:
    """(UTC date, reason) for a FOCUS date/time column (DateTimeFormat: ISO 8601 in UTC; real exports also
    write a space and no zone, read as UTC, or an offset, converted)."""
    value, reason = sql_text.timestamp_checks(column, column, ctx, required=True)
    return f"CAST({value} AS DATE)", reason


# PricingCategory allowed values (1.0): Standard, Dynamic, Committed, Other; 1.0 renamed
# On-Demand to Standard and Commitment-Based to Committed (CHANGELOG v1.0).
# CommitmentDiscountCategory allowed values: Spend, Usage; CommitmentDiscountType is free text.
_PRICING_MODEL = """CASE
        WHEN lower(CommitmentDiscountCategory) = 'spend' THEN 'savings_plan'
        WHEN lower(CommitmentDiscountCategory) = 'usage' THEN 'reserved'
        WHEN CommitmentDiscountType ILIKE '%savings%' THEN 'savings_plan'
        WHEN CommitmentDiscountType ILIKE '%reserv%' THEN 'reserved'
        WHEN lower(PricingCategory) IN ('standard', 'on-demand') THEN 'on_demand'
        WHEN lower(PricingCategory) = 'dynamic' THEN 'spot'
        ELSE 'other'
    END"""


def _checked_sql(path: Path, header: list[str], ctx: BatchContext) -> str:
    """One row per source row with typed values and `reason` ('' when the row is good)."""
    # NumericFormat attribute: money columns are plain decimals, no exponent.
    billed, billed_reason = sql_text.money_checks("BilledCost", "BilledCost", exponent=False)
    effective, eff_reason = sql_text.optional_money("EffectiveCost", "EffectiveCost", billed, exponent=False)
    usage_date, usage_reason = _date_checks("ChargePeriodStart", ctx)
    period, period_reason = _date_checks("BillingPeriodStart", ctx)
    reasons = [
        sql_text.id_checks("BillingAccountId", "BillingAccountId", required=True),
        sql_text.id_checks("SubAccountId", "SubAccountId", required=False),
        sql_text.missing_reason("ServiceName", "ServiceName"),
        usage_reason,
        billed_reason,
        eff_reason,
        sql_text.currency_reason(
            "BillingCurrency", "BillingCurrency", ctx.currency, missing="BillingCurrency"
        ),
        sql_text.choice_reason(
            "ChargeCategory", "ChargeCategory", CHARGE_CATEGORIES, missing="ChargeCategory"
        ),
        period_reason,
        "size_reason",
    ]
    return f"""
    SELECT
        {sql_text.batch_columns(ctx, "focus")},
        {sql_string(ctx.batch_id)} || ':' || CAST(source_row AS VARCHAR) AS event_id,
        BillingAccountId AS billing_account_id,
        COALESCE(SubAccountId, BillingAccountId) AS account_id,
        ServiceName AS service_name,
        RegionId AS region,
        {_PRICING_MODEL} AS pricing_model,
        lower(ChargeCategory) AS charge_category,
        {usage_date} AS usage_date,
        {billed} AS billed_cost,
        {effective} AS effective_cost,
        upper(BillingCurrency) AS currency,
        InvoiceId AS invoice_id,
        {period} AS billing_period_start,
        CAST(NULL AS VARCHAR) AS usage_type,
        CASE WHEN json_valid(Tags) AND json_type(Tags) = 'OBJECT' THEN Tags END AS tags,
        CASE WHEN SubAccountId IS NOT NULL THEN SubAccountName ELSE BillingAccountName END AS account_name,
        CAST(NULL AS VARCHAR) AS product_name,
        concat_ws('; ', {", ".join(reasons)}) AS reason,
        raw_record
    FROM ({_normalised_rows(path, header, ctx.limits.max_field_bytes)})
    """


def _normalised_rows(path: Path, header: list[str], limit: int) -> str:
    """`text_rows` with each used column under its FOCUS name, the row as delivered (raw_record, a field
    over `limit` bytes cut) and the reason of any such field (size_reason)."""
    names = _original_names(path, header)
    fields = {sql_text.sql_ident(h): n or h for n, h in zip(names, header, strict=True)}
    original = ", ".join(f"{sql_string(n)}: {sql_text.kept_text(h, limit)}" for h, n in fields.items())
    return f"""
        SELECT source_row, {_normalised(header)}, CAST(to_json({{{original}}}) AS VARCHAR) AS raw_record,
               {sql_text.size_reason(fields, limit)} AS size_reason
        FROM text_rows
    """
