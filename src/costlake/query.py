"""SQL over the lake: every table is a DuckDB view over its current data files (or a past run's)."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from costlake.engines.duckdb_engine import connect, parquet_scan, to_arrow
from costlake.errors import InputError
from costlake.lake.batches import registered_batches
from costlake.lake.schemas import TABLES
from costlake.lake.warehouse import Warehouse


def open_lake(wh: Warehouse) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per table, plus `ingest_batches` from the batch registry."""
    wh.ensure_tables()
    con = connect(wh.settings, ordered=True)
    for tdef in TABLES.values():
        files = wh.data_files(tdef)
        if files:
            con.execute(f"CREATE VIEW {tdef.name} AS SELECT * FROM {parquet_scan(files)}")
        else:
            empty = tdef.arrow_schema().empty_table()
            con.register(f"{tdef.name}__empty", empty)
            con.execute(f"CREATE VIEW {tdef.name} AS SELECT * FROM {tdef.name}__empty")
    batches = pa.Table.from_pylist(
        [b.__dict__ for b in registered_batches(wh)],
        schema=pa.schema(
            [
                ("batch_id", pa.string()),
                ("batch_seq", pa.int64()),
                ("sha256", pa.string()),
                ("source_file", pa.string()),
                ("source_format", pa.string()),
                ("loaded_at", pa.string()),
                ("rows_accepted", pa.int64()),
                ("rows_quarantined", pa.int64()),
                ("snapshot_id", pa.int64()),
            ]
        ),
    )
    con.register("ingest_batches", batches)
    return con


def run_query(wh: Warehouse, sql: str) -> pa.Table:
    """The result of `sql` over the lake, as Arrow."""
    con = open_lake(wh)
    try:
        return to_arrow(con, sql)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"query failed: {first}") from None
    finally:
        con.close()
