"""AWS Cost and Usage Report, legacy CUR (`lineItem/UnblendedCost`) or CUR 2.0 / Data Exports
(`line_item_unblended_cost`): one line item becomes one raw row, every check runs in SQL.

Names: legacy https://docs.aws.amazon.com/cur/latest/userguide/data-dictionary.html, CUR 2.0
https://docs.aws.amazon.com/cur/latest/userguide/table-dictionary-cur2.html (`COLUMNS` has both spellings).

  billing_account_id  bill/PayerAccountId        account_id  lineItem/UsageAccountId
  service_name        product/servicecode, else lineItem/ProductCode (CID summary_view's `service`)
  region              product/region | product_region_code (blank -> NULL)
  usage_type          lineItem/UsageType | line_item_usage_type (blank -> NULL), e.g. USE1-BoxUsage:m5.large
  usage_date          UTC date of lineItem/UsageStartDate ('...Z', an offset, or no zone = UTC)
  billing_period_start  UTC date of bill/BillingPeriodStartDate; invoice_id bill/InvoiceId (blank -> NULL)
  currency            lineItem/CurrencyCode upper-cased; must be the reporting currency
  billed_cost         lineItem/UnblendedCost, for EVERY line item type (the invoice is their sum)
  tags                resourceTags/* (legacy) or resource_tags (2.0: JSON or {k=v, ...} map text)
  event_id            batch_id:source_row (a delivery restates whole billing periods)
  account_name        line_item_usage_account_name (CUR 2.0 only; legacy CUR names no account)
  product_name        the name of the service key: product/servicename where product/servicecode is set
                      (else product/ProductName when the two codes agree), else product/ProductName,
                      which names lineItem/ProductCode. ProductName alone would be wrong for the key:
                      an S3 transfer line item has ProductCode AmazonS3 but servicecode AWSDataTransfer.
                      Also read under the Athena spellings product_servicename, product_product_name.

lineItem/LineItemType -> charge_category, pricing_model (unknown types are quarantined):
  Usage -> usage: Reserved term -> reserved, *SpotUsage* or Spot term -> spot, else on_demand
  DiscountedUsage -> usage, reserved;  SavingsPlanCoveredUsage -> usage, savings_plan
  SavingsPlanUpfrontFee, SavingsPlanRecurringFee -> purchase, savings_plan;  RIFee -> purchase, reserved
  Fee, FlatRateSubscription -> purchase (Fee with a reservation ARN, an RI upfront fee: reserved)
  SavingsPlanNegation -> adjustment, savings_plan
  Discount, BundledDiscount, EdpDiscount, PrivateRateDiscount, SppDiscount, RiVolumeDiscount -> adjustment
  Credit, Refund -> credit;  Tax -> tax.  pricing_model is NULL where not named: not priced usage.

effective_cost (amortised) is CID's `amortized_cost` (aws-solutions-library-samples/cloud-intelligence-
dashboards-framework, cid/builtin/core/data/queries/cid/summary_view.sql; same in finopsfoundation/
focus_converters, conversion_configs/aws/effective_cost_S001.yaml):
  SavingsPlanCoveredUsage   savingsPlan/SavingsPlanEffectiveCost
  SavingsPlanRecurringFee   savingsPlan/TotalCommitmentToDate - savingsPlan/UsedCommitment
  SavingsPlanNegation, SavingsPlanUpfrontFee, Fee with reservation/ReservationARN   0
  Refund, ComputeSavingsPlans, 'Refund for one-time fee for Savings Plan ID...'       0
  DiscountedUsage           reservation/EffectiveCost
  RIFee                     reservation/UnusedAmortizedUpfrontFeeForBillingPeriod + .../UnusedRecurringFee
  anything else             lineItem/UnblendedCost
A formula column that is absent or blank counts as 0 (as Athena's SUM skips a NULL).

Money is DECIMAL(38,12), exact. CUR writes small values in E-notation ('1.81E-8'): they are expanded
as text, never through a float. Digits beyond 12 decimal places must be zeros, else quarantine.
The checks every source shares (sources/sql_text.py): payer and usage account ids follow the identifier
rule, usage and billing period starts lie in the batch's date window, and no column read (tags
included) holds a field larger than the batch's limit.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import duckdb

from costlake.duck import sql_string
from costlake.errors import InputError
from costlake.sources import sql_text
from costlake.sources.base import BatchContext, Source, read_header
from costlake.sources.input_files import column_names
from costlake.tables import MONEY_SQL
from costlake.text.terminal import shortened

# canonical name -> (legacy header, CUR 2.0 header); headers are compared lower-cased.
COLUMNS: dict[str, tuple[str, str]] = {
    "payer": ("bill/PayerAccountId", "bill_payer_account_id"),
    "account": ("lineItem/UsageAccountId", "line_item_usage_account_id"),
    "line_item_type": ("lineItem/LineItemType", "line_item_line_item_type"),
    "usage_start": ("lineItem/UsageStartDate", "line_item_usage_start_date"),
    "unblended_cost": ("lineItem/UnblendedCost", "line_item_unblended_cost"),
    "currency": ("lineItem/CurrencyCode", "line_item_currency_code"),
    "period_start": ("bill/BillingPeriodStartDate", "bill_billing_period_start_date"),
    "product_code": ("lineItem/ProductCode", "line_item_product_code"),
    "service_code": ("product/servicecode", "product_servicecode"),
    "region": ("product/region", "product_region_code"),
    "invoice_id": ("bill/InvoiceId", "bill_invoice_id"),
    "usage_type": ("lineItem/UsageType", "line_item_usage_type"),
    "description": ("lineItem/LineItemDescription", "line_item_line_item_description"),
    "pricing_term": ("pricing/term", "pricing_term"),
    "reservation_arn": ("reservation/ReservationARN", "reservation_reservation_a_r_n"),
    "sp_effective": ("savingsPlan/SavingsPlanEffectiveCost", "savings_plan_savings_plan_effective_cost"),
    "sp_commitment": ("savingsPlan/TotalCommitmentToDate", "savings_plan_total_commitment_to_date"),
    "sp_used": ("savingsPlan/UsedCommitment", "savings_plan_used_commitment"),
    "ri_effective": ("reservation/EffectiveCost", "reservation_effective_cost"),
    "ri_unused_upfront": (
        "reservation/UnusedAmortizedUpfrontFeeForBillingPeriod",
        "reservation_unused_amortized_upfront_fee_for_billing_period",
    ),
    "ri_unused_recurring": ("reservation/UnusedRecurringFee", "reservation_unused_recurring_fee"),
}
# Names next to the keys, optional, with every spelling read (compared lower-cased): not in COLUMNS,
# whose two spellings are the two layouts, because legacy CUR has no account name.
NAMES: dict[str, tuple[str, ...]] = {
    "usage_account_name": ("line_item_usage_account_name",),
    "service_label": ("product/servicename", "product_servicename"),
    "product_label": ("product/ProductName", "product_product_name"),
}
SPELLINGS: dict[str, tuple[str, ...]] = {**COLUMNS, **NAMES}
REQUIRED: tuple[str, ...] = ("payer", "account", "line_item_type", "usage_start", "unblended_cost")
REQUIRED += ("currency", "period_start", "product_code")
MATCH = ("account", "unblended_cost", "usage_start")
# Formula money columns and the (lower-cased) line item type whose effective cost uses each.
FORMULA = {"sp_effective": "savingsplancoveredusage", "sp_commitment": "savingsplanrecurringfee"}
FORMULA |= {"sp_used": "savingsplanrecurringfee", "ri_effective": "discountedusage"}
FORMULA |= {"ri_unused_upfront": "rifee", "ri_unused_recurring": "rifee"}
# lineItem/LineItemType values: AWS data dictionary, FOCUS_Spec adjustmentcategory.md, CID summary_view.
CATEGORIES = {
    "usage": ("Usage", "DiscountedUsage", "SavingsPlanCoveredUsage"),
    "purchase": ("Fee", "RIFee", "SavingsPlanUpfrontFee", "SavingsPlanRecurringFee", "FlatRateSubscription"),
    "tax": ("Tax",),
    "credit": ("Credit", "Refund"),
    "adjustment": ("SavingsPlanNegation", "Discount", "BundledDiscount", "EdpDiscount", "PrivateRateDiscount")
    + ("SppDiscount", "RiVolumeDiscount"),
}


class CurSource(Source):
    format = "cur"
    description = "AWS Cost and Usage Report: legacy CUR or CUR 2.0 (Data Exports)"
    key_columns = "lineItem/UnblendedCost or line_item_unblended_cost,…"

    @classmethod
    def matches(cls, header: list[str]) -> bool:
        return any(all(COLUMNS[c][layout].lower() in header for c in MATCH) for layout in (0, 1))

    @classmethod
    def expected(cls) -> str:
        legacy, v2 = (",".join(COLUMNS[c][layout] for c in REQUIRED) for layout in (0, 1))
        return f"CUR columns {legacy} (legacy) or {v2} (CUR 2.0)"

    def parse(self, con: duckdb.DuckDBPyConnection, path: Path, ctx: BatchContext) -> None:
        header = read_header(path)
        original = column_names(path)  # tag keys keep their case
        where: dict[str, int] = {}  # canonical name -> index of its column, spelled either way
        for name, spellings in SPELLINGS.items():
            found = [i for i, h in enumerate(header) if h in {s.lower() for s in spellings}]
            if len(found) > 1:  # which one holds the value is anyone's guess: one would be dropped
                shown = " and ".join(shortened(original[i]) for i in found[:3])
                raise InputError(f"{path}: CUR columns {shown} are one column named twice in the header")
            if found:
                where[name] = found[0]
        layout = 0 if any("/" in name for name in header) else 1
        missing = [COLUMNS[c][layout] for c in REQUIRED if c not in where]
        if missing:
            raise InputError(f"{path}: missing required CUR column(s) {', '.join(missing)}")
        tags = [i for i, h in enumerate(header) if h.startswith(("resourcetags/", "resource_tags"))]
        twice = sorted(name for name, n in Counter(original[i] for i in tags).items() if n > 1)
        if twice:  # tag keys differing in case are two tags; one spelt the same twice is one tag
            raise InputError(f"{path}: tag column {shortened(twice[0])} appears more than once in the header")
        sql_text.install_macros(con)
        # Header names may repeat (both spellings, tags differing in case only): load by position.
        sql_text.load_text(con, path, header, positions=[*where.values(), *tags])
        fields = {f"c{i}": original[i] for i in sorted({*where.values(), *tags})}
        checked = _checked_sql(where, original, _tags_sql(header, original, tags), fields, ctx)
        sql_text.split_checked(con, checked)


def _tags_sql(header: list[str], original: list[str], tags: list[int]) -> str:
    """A JSON object of the non-blank tag values, or NULL. Tags never reject a row."""
    parts, keys = [], {original[i].split("/", 1)[-1].removeprefix("resource_tags_"): i for i in tags}
    if "resource_tags" in header:  # CUR 2.0 map column: JSON, or Athena's {key=value, ...}
        t = f"field_text(c{header.index('resource_tags')})"
        as_map = f"""CASE WHEN json_valid({t}) THEN TRY(json_transform({t}, '"MAP(VARCHAR, VARCHAR)"'))
            ELSE TRY(map_from_entries([struct_pack(k := split_part(s, '=', 1),
                v := substr(s, strpos(s, '=') + 1)) FOR s IN string_split(trim({t}, '{{}}'), ', ')
                IF strpos(s, '=') > 0])) END"""
        # List comprehensions, not lambdas: the same syntax on every DuckDB the project allows.
        parts.append(f"map_from_entries([e FOR e IN map_entries({as_map}) IF trim(e.value) <> ''])")
        keys.pop("resource_tags", None)
    if keys:  # one column per tag
        pairs = ", ".join(
            f"struct_pack(k := {sql_string(k)}, v := field_text(c{i}))" for k, i in keys.items()
        )
        parts.append(f"TRY(map_from_entries([e FOR e IN [{pairs}] IF e.v IS NOT NULL]))")
    if not parts:
        return "CAST(NULL AS VARCHAR)"
    return f"NULLIF(CAST(to_json(COALESCE({', '.join(parts)})) AS VARCHAR), '{{}}')"


# The charge category of each line item type (`lit`: lineItem/LineItemType lower-cased); NULL if unknown.
_CATEGORY = "CASE lit {} END".format(
    " ".join(
        f"WHEN {sql_string(t.lower())} THEN {sql_string(c)}" for c, types in CATEGORIES.items() for t in types
    )
)
_PRICING_MODEL = """CASE
        WHEN lit IN ('savingsplancoveredusage', 'savingsplannegation', 'savingsplanupfrontfee',
                     'savingsplanrecurringfee') THEN 'savings_plan'
        WHEN lit IN ('discountedusage', 'rifee') OR (lit = 'fee' AND reservation_arn IS NOT NULL)
            THEN 'reserved'
        WHEN lit = 'usage' THEN CASE WHEN lower(pricing_term) = 'reserved' THEN 'reserved'
            WHEN usage_type LIKE '%SpotUsage%' OR lower(pricing_term) = 'spot' THEN 'spot'
            ELSE 'on_demand' END
    END"""


# The name of the service key (COALESCE(service_code, product_code)): see the module docstring.
_PRODUCT_NAME = """CASE WHEN service_code IS NULL THEN product_label
        ELSE COALESCE(service_label,
                      CASE WHEN lower(service_code) = lower(product_code) THEN product_label END)
    END"""


def _checked_sql(
    where: dict[str, int], original: list[str], tags: str, fields: dict[str, str], ctx: BatchContext
) -> str:
    """One row per line item with typed values and `reason` ('' when the row is good); `fields` maps
    each loaded column (c<index>) to its name in the file, for the size check."""
    text = {n: f"field_text(c{where[n]})" if n in where else "CAST(NULL AS VARCHAR)" for n in SPELLINGS}
    name = {n: original[where[n]] if n in where else SPELLINGS[n][0] for n in SPELLINGS}  # for reasons
    limit = ctx.limits.max_field_bytes
    raw = ", ".join(
        f"{sql_string(original[where[n]])}: {sql_text.kept_text(f'c{where[n]}', limit)}"
        for n in SPELLINGS
        if n in where
    )
    return f"""
    WITH src AS (
        SELECT source_row, {", ".join(f"{e} AS {n}" for n, e in text.items() if n != "currency")},
               upper({text["currency"]}) AS currency, lower({text["line_item_type"]}) AS lit,
               {tags} AS tags, CAST(to_json({{{raw}}}) AS VARCHAR) AS raw_record,
               {sql_text.size_reason(fields, limit)} AS size_reason
        FROM text_rows
    ), typed AS (
        SELECT *, COALESCE(service_code, product_code) AS service_name,
               {", ".join(f"money({n}) AS {n}__v" for n in ("unblended_cost", *FORMULA))} FROM src
    )
    SELECT
        {sql_text.batch_columns(ctx, "cur")},
        {sql_string(ctx.batch_id + ":")} || CAST(source_row AS VARCHAR) AS event_id,
        payer AS billing_account_id,
        account AS account_id,
        service_name,
        region,
        {_PRICING_MODEL} AS pricing_model,
        {_CATEGORY} AS charge_category,
        utc_date(usage_start) AS usage_date,
        unblended_cost__v AS billed_cost,
        {_effective_cost()} AS effective_cost,
        currency,
        invoice_id,
        utc_date(period_start) AS billing_period_start,
        usage_type,
        tags,
        usage_account_name AS account_name,
        {_PRODUCT_NAME} AS product_name,
        concat_ws('; ', {", ".join(_reasons(name, ctx))}) AS reason,
        raw_record
    FROM typed
    """


def _effective_cost() -> str:
    """The amortised cost of a line item (the table in the module docstring), over `typed`."""
    zero = f"CAST(0 AS {MONEY_SQL})"
    z = {n: f"COALESCE({n}__v, {zero})" for n in FORMULA}
    no_amortised = (
        "(lit = 'fee' AND reservation_arn IS NOT NULL) OR (lit = 'refund' AND product_code = "
        "'ComputeSavingsPlans' AND description LIKE 'Refund for one-time fee for Savings Plan ID%')"
    )
    return f"""CAST(CASE lit
        WHEN 'savingsplancoveredusage' THEN {z["sp_effective"]}
        WHEN 'savingsplanrecurringfee' THEN {z["sp_commitment"]} - {z["sp_used"]}
        WHEN 'savingsplannegation' THEN {zero}
        WHEN 'savingsplanupfrontfee' THEN {zero}
        WHEN 'discountedusage' THEN {z["ri_effective"]}
        WHEN 'rifee' THEN {z["ri_unused_upfront"]} + {z["ri_unused_recurring"]}
        ELSE CASE WHEN {no_amortised} THEN {zero} ELSE unblended_cost__v END
    END AS {MONEY_SQL})"""


def _reasons(name: dict[str, str], ctx: BatchContext) -> list[str]:
    """Why a line item is refused, one expression per check (NULL when it passes), over `typed`;
    `name` is each column's header as the file spells it, for the messages."""
    lit_label = sql_string(name["line_item_type"])
    return [
        sql_text.id_checks("payer", name["payer"], required=True),
        sql_text.id_checks("account", name["account"], required=True),
        sql_text.missing_reason("service_name", name["product_code"]),
        f"""CASE WHEN lit IS NULL THEN 'missing ' || {lit_label}
            WHEN ({_CATEGORY}) IS NULL THEN {lit_label} || ' ' || quote_text(line_item_type)
                || ' is not a known line item type' END""",
        *(
            sql_text.timestamp_checks(n, name[n], ctx, required=True)[1]
            for n in ("usage_start", "period_start")
        ),
        sql_text.money_checks("unblended_cost", name["unblended_cost"])[1],
        # A formula column is checked only on the line item type whose effective cost reads it.
        *(
            f"CASE WHEN lit = '{t}' AND {n} IS NOT NULL THEN {sql_text.money_checks(n, name[n])[1]} END"
            for n, t in FORMULA.items()
        ),
        sql_text.currency_reason("currency", "currency", ctx.currency, missing=name["currency"]),
        "size_reason",
    ]
