"""SQL over the lake: every table is a DuckDB view over its current data files (or a past run's)."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from costlake.duck import connect, parquet_scan, to_arrow
from costlake.errors import InputError
from costlake.lake.batches import registered_batches
from costlake.lake.manifest import latest_manifest, manifest_for
from costlake.lake.warehouse import Warehouse
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED, PUBLISH_LOG, TABLES

# The stage tables change together in a run: readers see them as of the last finished run.
RUN_TABLES = frozenset({NORMALIZED.name, ACCOUNT_SERVICE_DAY.name, DAILY_ACCOUNT.name})


def snapshot_view(wh: Warehouse, as_of: str | None = None) -> dict[str, int | None]:
    """The snapshot each table is read at: `as_of` a run's manifest for every table, or by default
    the latest finished run's for the stage tables and the current one for the rest (None)."""
    if as_of is not None:
        manifest = manifest_for(wh, as_of)
        view = {name: manifest.snapshots.get(name) for name in TABLES}
        return view | {PUBLISH_LOG.name: manifest.log_snapshot_id}
    latest = latest_manifest(wh)
    if latest is None:  # no run finished yet: whatever a crashed first run committed stays unseen
        return dict.fromkeys(RUN_TABLES)
    return {name: snap for name, snap in latest.snapshots.items() if name in RUN_TABLES}


def open_lake(wh: Warehouse, as_of: str | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with one view per table, plus `ingest_batches` from the batch registry."""
    wh.ensure_tables()
    view = snapshot_view(wh, as_of)
    con = connect(wh.settings, ordered=True)
    for tdef in TABLES.values():
        snapshot = view.get(tdef.name)
        # A table in the view without a snapshot had no data yet when that run finished.
        missing = tdef.name in view and snapshot is None
        files = [] if missing else wh.data_files(tdef, snapshot_id=snapshot)
        if files:
            con.execute(f"CREATE VIEW {tdef.name} AS SELECT * FROM {parquet_scan(files)}")
        else:
            empty = tdef.arrow_schema().empty_table()
            con.register(f"{tdef.name}__empty", empty)
            con.execute(f"CREATE VIEW {tdef.name} AS SELECT * FROM {tdef.name}__empty")
    watermark = manifest_for(wh, as_of).batch_seq if as_of is not None else None
    batches = pa.Table.from_pylist(
        [b.__dict__ for b in registered_batches(wh) if watermark is None or b.batch_seq <= watermark],
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


def run_query(wh: Warehouse, sql: str, as_of: str | None = None) -> pa.Table:
    """The result of `sql` over the lake (as of a past run, if given), as Arrow."""
    con = open_lake(wh, as_of)
    try:
        return to_arrow(con, sql)
    except duckdb.Error as exc:
        first = str(exc).strip().splitlines()[0]
        raise InputError(f"query failed: {first}") from None
    finally:
        con.close()
