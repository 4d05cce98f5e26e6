"""Every table of the lake: columns in table order, types, partitioning.

Money is DECIMAL(38,12) everywhere. Engines write files whose columns and types follow these
definitions exactly; the commit refuses anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
from pyiceberg.schema import Schema
from pyiceberg.types import (
    BooleanType,
    DateType,
    DecimalType,
    IcebergType,
    LongType,
    NestedField,
    StringType,
    TimestampType,
)

if TYPE_CHECKING:  # PyIceberg's partitioning is imported when a table is created
    from pyiceberg.partitioning import PartitionSpec

NAMESPACE = "costlake"
# Iceberg table properties of every table: each commit merges the manifests once there are 8 of them
# (PyIceberg's merge-append), so that a table fed daily for years keeps a few manifests, not one per
# commit. New tables get them at creation, older ones at their first `costlake maintain`.
TABLE_PROPERTIES = {"commit.manifest-merge.enabled": "true", "commit.manifest.min-count-to-merge": "8"}
MONEY = DecimalType(38, 12)
MONEY_SQL = "DECIMAL(38,12)"
MONEY_ARROW = pa.decimal128(38, 12)
# The tenant of an account no tenants file names and no billing account owns (dim_account.tenant_id).
UNASSIGNED_TENANT = "unassigned"
# The value root causes show for a NULL region / pricing model (anomaly contributors, answers).
NONE_VALUE = "(none)"

_S, _L, _D, _T, _B = StringType(), LongType(), DateType(), TimestampType(), BooleanType()


def arrow_type(kind: IcebergType) -> pa.DataType:
    """The Arrow type of one of the lake's column types."""
    if isinstance(kind, DecimalType):
        return pa.decimal128(kind.precision, kind.scale)
    return _ARROW[type(kind)]


_ARROW: dict[type, pa.DataType] = {
    StringType: pa.large_string(),
    LongType: pa.int64(),
    DateType: pa.date32(),
    TimestampType: pa.timestamp("us"),
    BooleanType: pa.bool_(),
}


@dataclass(frozen=True)
class TableDef:
    """A lake table: name, ordered columns, the identity-partition column (if any), and what it holds."""

    name: str
    columns: tuple[tuple[str, IcebergType], ...]
    partition_by: str | None
    grain: tuple[str, ...]
    doc: str
    # The columns appended after the table's first release (lake/migrate.py adds them to an older
    # warehouse): files written before read them as NULL, and a NULL in one leaves a row's content hash
    # as it was before the column existed (lake/fingerprint.py), so published partitions keep theirs.
    appended: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = self.column_names
        if list(self.appended) != names[len(names) - len(self.appended) :]:
            raise ValueError(f"{self.name}: appended columns {self.appended} must end the column list")

    @property
    def column_names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def iceberg_schema(self) -> Schema:
        # Columns stay optional: engines write nullable columns and Iceberg refuses a
        # required field fed from an optional one. Keys are enforced by the quality gate.
        fields = [
            NestedField(field_id=i, name=name, field_type=kind, required=False)
            for i, (name, kind) in enumerate(self.columns, start=1)
        ]
        return Schema(*fields)

    def partition_spec(self) -> PartitionSpec:
        from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionField, PartitionSpec
        from pyiceberg.transforms import IdentityTransform

        if self.partition_by is None:
            return UNPARTITIONED_PARTITION_SPEC
        source_id = self.column_names.index(self.partition_by) + 1
        field = PartitionField(source_id, 1000, IdentityTransform(), self.partition_by)
        return PartitionSpec(field)

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema PyIceberg's `schema_to_pyarrow` gives (tests/test_tables.py compares them),
        without importing its Arrow layer, which costs a reading command a third of a second."""
        return pa.schema([pa.field(name, arrow_type(kind)) for name, kind in self.columns])

    @property
    def identifier(self) -> str:
        return f"{NAMESPACE}.{self.name}"


_CANONICAL = (
    ("event_id", _S),
    ("billing_account_id", _S),
    ("account_id", _S),
    ("service_name", _S),
    ("region", _S),
    ("pricing_model", _S),
    ("charge_category", _S),
    ("usage_date", _D),
    ("billed_cost", MONEY),
    ("effective_cost", MONEY),
    ("currency", _S),
    ("invoice_id", _S),
    # Set for formats that restate whole billing periods (FOCUS, CUR): the replacement unit is
    # (source_format, billing_account_id, billing_period_start). NULL for per-event formats.
    ("billing_period_start", _D),
)
# Canonical columns appended after v0.1.0, so at the end of every table holding the canonical columns
# (a stored table's columns must stay a prefix of its definition: lake/migrate.py).
# `usage_type`: what was used, where the source names it (CUR `lineItem/UsageType`, native
# `usage_type`); NULL for FOCUS and for rows written before the column existed. A name, as delivered.
_CANONICAL_APPENDED = (("usage_type", _S),)
# Names a billing file gives next to its keys, appended to raw only (the dimensions read them; stage
# tables keep keys): `account_name` (FOCUS SubAccountName, or BillingAccountName where the account is the
# billing account; CUR 2.0 line_item_usage_account_name; native `account_name`) and `product_name`
# (CUR product/servicename or product/ProductName, the name of the service key). Stored as delivered:
# the name policy (costlake.text.names) decides where they may be shown. NULL where the file has none.
_RAW_NAMES = (("account_name", _S), ("product_name", _S))
# `delivery_group`: the files of one delivery in parts (`ingest --parts`, `--part-of`) are a batch each,
# and every part's rows carry the group's number: the delivery key (`COALESCE(delivery_seq, batch_seq)`)
# of the batch the group began with. A billing period's latest delivery is a group, every part of it
# counted (pipeline/stage1_normalize.py). NULL: the batch is a delivery of its own.
_RAW_GROUP = (("delivery_group", _L),)

RAW = TableDef(
    "raw_billing_events",
    (
        ("batch_id", _S),
        ("batch_seq", _L),
        ("source_format", _S),
        ("source_file", _S),
        ("source_row", _L),
        ("ingestion_ts", _T),
        ("load_date", _D),
        *_CANONICAL,
        ("tags", _S),
        # Appended after v0.1.0 (files written before read them as NULL):
        # `op`: native rows `upsert` or `delete` (a retraction: event_id and ingestion_ts only, the
        # other canonical columns NULL); NULL for FOCUS/CUR rows and older rows, read as upsert.
        ("op", _S),
        # `delivery_seq`: the batch_seq of the delivery the row's batch reads: the batch's own for an
        # `ingest`, the first reading's for an `ingest --reparse` of the same file (NULL: batch_seq).
        # The latest reading of each delivery counts, at the delivery's place in the total order.
        ("delivery_seq", _L),
        *_CANONICAL_APPENDED,
        *_RAW_NAMES,
        *_RAW_GROUP,
    ),
    partition_by="load_date",
    grain=("batch_seq", "source_row"),
    doc="Every accepted source row, append-only; one batch per ingested file.",
    appended=(
        "op",
        "delivery_seq",
        *(name for name, _ in (*_CANONICAL_APPENDED, *_RAW_NAMES, *_RAW_GROUP)),
    ),
)

QUARANTINE = TableDef(
    "quarantine",
    (
        ("batch_id", _S),
        ("batch_seq", _L),
        ("source_file", _S),
        ("source_row", _L),
        ("reason", _S),
        ("raw_record", _S),
        ("load_date", _D),
    ),
    partition_by="load_date",
    grain=("batch_seq", "source_row"),
    doc="Rejected source rows with the reason and the row's original fields as JSON.",
)

NORMALIZED = TableDef(
    "normalized_billing_events",
    (
        *_CANONICAL,
        ("source_format", _S),
        ("ingestion_ts", _T),
        ("batch_id", _S),
        ("batch_seq", _L),
        ("source_row", _L),
        *_CANONICAL_APPENDED,
    ),
    partition_by="usage_date",
    grain=("event_id",),
    doc="Stage 1: one row per event, the latest version by (ingestion_ts, batch_seq, source_row).",
    appended=tuple(name for name, _ in _CANONICAL_APPENDED),
)

ACCOUNT_SERVICE_DAY = TableDef(
    "account_service_day_cost",
    (
        ("account_id", _S),
        ("service_name", _S),
        ("usage_date", _D),
        ("total_cost_usd", MONEY),
        ("effective_cost_usd", MONEY),
        ("event_count", _L),
    ),
    partition_by="usage_date",
    grain=("account_id", "service_name", "usage_date"),
    doc="Stage 2: cost per account, service and day.",
)

DAILY_ACCOUNT = TableDef(
    "daily_account_cost",
    (
        ("account_id", _S),
        ("usage_date", _D),
        ("total_cost_usd", MONEY),
        ("effective_cost_usd", MONEY),
        ("event_count", _L),
        ("service_count", _L),
        ("data_complete", _B),
        ("published_at", _T),
        ("run_id", _S),
    ),
    partition_by="usage_date",
    grain=("account_id", "usage_date"),
    doc="Stage 3, the canonical published dataset: cost per account and day.",
)

_SEEN = (("first_usage_date", _D), ("last_usage_date", _D))

DIM_ACCOUNT = TableDef(
    "dim_account",
    (
        ("account_id", _S),
        ("account_name", _S),
        ("tenant_id", _S),
        ("billing_account_id", _S),
        *_SEEN,
        ("last_ingestion_ts", _T),
        # Appended after v0.1.0: where account_name comes from (`tenants`, or the source format of the
        # billing file that named it) and, for a billing file's name, the last usage date it was billed
        # under (the merge rule of pipeline/dimensions.py). NULL on older rows: their names came from a
        # tenants file, the only source then.
        ("account_name_source", _S),
        ("account_name_date", _D),
    ),
    partition_by=None,
    grain=("account_id",),
    doc="Accounts seen or loaded from a tenants file; maps account_id to tenant_id; display names.",
    appended=("account_name_source", "account_name_date"),
)

DIM_SERVICE = TableDef(
    "dim_service",
    (
        ("service_name", _S),
        ("display_name", _S),
        *_SEEN,
        # Appended after v0.1.0: the provider's name of the service where the billing file gives one
        # besides the key (CUR `product/servicename`, `product/ProductName`), and the last usage date
        # billed under it (the merge rule of pipeline/dimensions.py). NULL where none was delivered.
        ("product_name", _S),
        ("product_name_date", _D),
    ),
    partition_by=None,
    grain=("service_name",),
    doc="Canonical service names (trimmed, case-folded) with a display spelling and a product name.",
    appended=("product_name", "product_name_date"),
)

DIM_REGION = TableDef(
    "dim_region", (("region", _S), *_SEEN), partition_by=None, grain=("region",), doc="Regions seen."
)

DIM_PRICING_MODEL = TableDef(
    "dim_pricing_model",
    (("pricing_model", _S), *_SEEN),
    partition_by=None,
    grain=("pricing_model",),
    doc="Pricing models seen.",
)

PERCENT = DecimalType(38, 4)

COST_ANOMALIES = TableDef(
    "cost_anomalies",
    (
        ("account_id", _S),
        ("service_name", _S),
        ("usage_date", _D),
        ("method", _S),  # baseline | day_over_day
        ("kind", _S),  # spike, dip, step_up, step_down, new_service, dropped_to_zero, mix_shift
        ("direction", _S),  # up | down | shift
        ("actual_usd", MONEY),
        ("expected_usd", MONEY),
        ("expected_low_usd", MONEY),
        ("expected_high_usd", MONEY),
        ("impact_usd", MONEY),
        ("impact_pct", PERCENT),  # NULL when the expected cost is zero
        ("score", PERCENT),  # robust z-score (baseline) or |% change| (day_over_day); no floats in the lake
        ("duration_days", _L),
        ("ongoing", _B),
        ("history_days", _L),
        ("top_dimension", _S),
        ("top_value", _S),
        ("top_contribution_usd", MONEY),
        ("contributors", _S),  # JSON list: dimension, value, actual_usd, expected_usd, contribution_usd
    ),
    partition_by="usage_date",
    grain=("account_id", "service_name", "usage_date"),
    doc="Detected cost anomalies per account, service and day, with root-cause contributors.",
)

PUBLISH_LOG = TableDef(
    "publish_log",
    (
        ("run_id", _S),
        ("table_name", _S),
        ("usage_date", _D),
        ("snapshot_id", _L),
        ("row_count", _L),
        ("content_hash", _S),
        ("input_batch_ids", _S),
        ("gate_status", _S),
        ("gate_results", _S),
        ("published_at", _T),
    ),
    partition_by=None,
    grain=("run_id", "table_name", "usage_date"),
    doc="One row per partition a run published (or held back).",
)

INGEST_BATCHES = TableDef(
    "ingest_batches",
    (
        ("batch_id", _S),
        ("batch_seq", _L),
        ("sha256", _S),
        ("source_file", _S),
        ("source_format", _S),
        ("loaded_at", _S),  # ISO text, UTC
        ("rows_accepted", _L),
        ("rows_quarantined", _L),
        ("snapshot_id", _L),  # the raw commit that added the batch's rows
        ("replaces", _S),  # the batch an `ingest --reparse` replaced; "" for a first reading
        # Appended: the delivery in parts the batch belongs to (RAW's `delivery_group`); NULL: none
        ("delivery_group", _L),
        # Appended: how many parts the command that founded that delivery declared (`ingest --parts`,
        # `--manifest`), on each of them; NULL: none declared (a single file, a part added later)
        ("delivery_parts", _L),
    ),
    partition_by=None,
    grain=("batch_seq",),
    doc="The batch registry: one row per ingested batch (lake/batches.py).",
    appended=("delivery_group", "delivery_parts"),
)

TABLES: dict[str, TableDef] = {
    t.name: t
    for t in (
        RAW,
        QUARANTINE,
        NORMALIZED,
        ACCOUNT_SERVICE_DAY,
        DAILY_ACCOUNT,
        DIM_ACCOUNT,
        DIM_SERVICE,
        DIM_REGION,
        DIM_PRICING_MODEL,
        COST_ANOMALIES,
        PUBLISH_LOG,
        INGEST_BATCHES,
    )
}
