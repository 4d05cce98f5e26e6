"""The embedded default engine: DuckDB in-process, streaming Parquet in and out, spilling to disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa

from costlake.duck import PARQUET_FORMAT, connect, interruptible, sql_string, table_scan, to_arrow
from costlake.engines.base import Engine, register_engine
from costlake.engines.dialect import DUCKDB
from costlake.settings import Settings

# Rows of one partition a thread buffers before writing them (`write_partitions`).
FLUSH_ROWS = 16_384


class DuckDBEngine(Engine):
    name = "duckdb"
    dialect = DUCKDB

    def __init__(self, settings: Settings, temp_dir: Path) -> None:
        super().__init__(settings, temp_dir)
        self.con = connect(settings, temp_dir)
        # A partitioned write buffers each partition's rows per thread until this many, then writes
        # them out; DuckDB's default (524,288) held every row of a 90-day stage 1 at 10M events
        # until the end, about 3 GiB more than the rows themselves (docs/performance.md).
        self.con.execute(f"SET partitioned_write_flush_threshold = {FLUSH_ROWS}")
        self._arrow: dict[str, pa.Table] = {}

    def register_files(self, name: str, files: Sequence[str], schema: pa.Schema) -> None:
        if not files:
            self.register_arrow(name, schema.empty_table())
            return
        # The table's columns whatever the files hold: files written before a column was appended
        # read it as NULL (lake/migrate.py).
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {table_scan(files, schema)}")

    def register_arrow(self, name: str, table: pa.Table) -> None:
        self._arrow[name] = table  # keep a reference: DuckDB scans it lazily
        self.con.register(f"{name}__arrow", table)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}__arrow")

    # The long calls run in a worker thread (duck.interruptible): Ctrl-C stops them at once instead
    # of waiting for the query (seconds at 10M events) before the command stops.
    def materialize(self, name: str, sql: str) -> None:
        interruptible(self.con, lambda: self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}"))

    def define(self, name: str, sql: str) -> None:
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}")

    def release(self, name: str) -> None:
        kind = self.con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE temporary AND table_name = $name", {"name": name}
        ).fetchall()
        self.con.execute(f"DROP {'TABLE' if kind else 'VIEW'} IF EXISTS {name}")
        if self._arrow.pop(name, None) is not None:  # `register_arrow`'s view and the table behind it
            self.con.unregister(f"{name}__arrow")

    def fetch(self, sql: str) -> pa.Table:
        return interruptible(self.con, lambda: to_arrow(self.con, sql))

    def write_partitions(self, sql: str, out_dir: Path, partition_by: str) -> list[str]:
        out_dir.mkdir(parents=True, exist_ok=True)
        copy = (
            f"COPY ({sql}) TO {sql_string(str(out_dir))} ({PARQUET_FORMAT}, "
            f"PARTITION_BY ({partition_by}), WRITE_PARTITION_COLUMNS true, OVERWRITE_OR_IGNORE true)"
        )
        interruptible(self.con, lambda: self.con.execute(copy))
        return sorted(str(p) for p in out_dir.rglob("*.parquet"))

    def close(self) -> None:
        self.con.close()


register_engine("duckdb", DuckDBEngine)
