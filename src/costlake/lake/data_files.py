"""The Iceberg entries of Parquet files costlake wrote itself, made from the local files.

PyIceberg's `Transaction.add_files` opens each file through the table's FileIO (on S3, requests for
every file just uploaded) and checks its schema against the table's once per file, converting it
each time: about 3 ms a file on a local disk, half the commit of the 51 days a re-delivery's
detection may change, and 0.7 s of a 10M full load's 270 day files. Here the footers are read from
the local files before they are published, each distinct schema is checked once, and the entries
are made by PyIceberg's own functions (`data_file_statistics_from_parquet_metadata`, the table's
partition spec), so they are those `add_files` would have made (tests/lake/test_data_files.py).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.io.pyarrow import (
    _check_pyarrow_schema_compatible,
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.table import TableProperties, Transaction
from pyiceberg.table.metadata import TableMetadata


def data_files(
    metadata: TableMetadata,
    local: Sequence[str],
    publish: Callable[[], Sequence[str]],
) -> list[DataFile]:
    """The entries of the Parquet files `local`, registered where `publish` puts them (the same
    paths on a local disk, an upload's URI on S3; it may move the local files, so their footers are
    read before it runs). A file listed twice is refused, as `add_files` refuses it (ValueError)."""
    if len(set(local)) != len(local):
        raise ValueError("File paths must be unique")
    footers = [(pq.read_metadata(path), os.path.getsize(path)) for path in local]
    published = publish()
    schema = metadata.schema()
    plan = compute_statistics_plan(schema, metadata.properties)
    mapping = parquet_path_to_id_mapping(schema)
    spec = metadata.spec()
    checked: list[pa.Schema] = []
    entries = []
    for (footer, size), location in zip(footers, published, strict=True):
        arrow_schema = footer.schema.to_arrow_schema()
        if not any(arrow_schema.equals(seen) for seen in checked):
            _check_pyarrow_schema_compatible(schema, arrow_schema, format_version=metadata.format_version)
            checked.append(arrow_schema)
        stats = data_file_statistics_from_parquet_metadata(
            parquet_metadata=footer, stats_columns=plan, parquet_column_mapping=mapping
        )
        entries.append(
            DataFile.from_args(
                content=DataFileContent.DATA,
                file_path=location,
                file_format=FileFormat.PARQUET,
                partition=stats.partition(spec, schema),
                file_size_in_bytes=size,
                sort_order_id=None,
                spec_id=metadata.default_spec_id,
                equality_ids=None,
                key_metadata=None,
                **stats.to_serialized_dict(),
            )
        )
    return entries


def append_data_files(tx: Transaction, entries: Sequence[DataFile], properties: dict[str, str]) -> None:
    """What `add_files` does once it has the entries: a file the table already holds refused
    (ValueError), the schema's name mapping set if the table has none (files written outside
    Iceberg carry no field ids), then one append snapshot."""
    if held := tx._find_referenced_data_files([entry.file_path for entry in entries]):
        raise ValueError(f"Cannot add files that are already referenced by table, files: {', '.join(held)}")
    if tx.table_metadata.name_mapping() is None:
        name_mapping = tx.table_metadata.schema().name_mapping.model_dump_json()
        tx.set_properties({TableProperties.DEFAULT_NAME_MAPPING: name_mapping})
    with tx._append_snapshot_producer(properties) as append:
        for entry in entries:
            append.append_data_file(entry)
