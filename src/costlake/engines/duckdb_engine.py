"""The embedded default engine: DuckDB in-process, streaming Parquet in and out, spilling to disk."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from costlake.engines.base import Engine, register_engine
from costlake.engines.dialect import DUCKDB
from costlake.settings import Settings


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def parquet_scan(files: Sequence[str]) -> str:
    """`read_parquet` over exactly these files. Hive partitioning stays off: folder names such as
    `run_id=…` must not turn into columns; every file carries its own columns."""
    listing = ", ".join(sql_string(f) for f in files)
    return f"read_parquet([{listing}], hive_partitioning = false)"


def connect(
    settings: Settings, temp_dir: Path | None = None, *, ordered: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection configured from settings.

    `ordered` keeps insertion order (needed where row numbers come from file order); the pipeline
    turns it off because it never relies on order and is faster without it.
    """
    config: dict[str, str | bool | int | float | list[str]] = {"preserve_insertion_order": ordered}
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    if settings.duckdb_memory_limit:
        config["memory_limit"] = settings.duckdb_memory_limit
    if temp_dir is not None:
        config["temp_directory"] = str(temp_dir)
    return duckdb.connect(config=config)


def to_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """The result of a query as Arrow (DuckDB 2 renamed the relation's `arrow` to `to_arrow_table`)."""
    relation = con.sql(sql)
    method = getattr(relation, "to_arrow_table", None) or relation.arrow
    table: pa.Table = method()
    return table


def run_on_arrow(sql: str, **tables: pa.Table) -> pa.Table:
    """Run `sql` over in-memory Arrow tables named by the keywords: a stage as a pure function."""
    con = duckdb.connect()
    try:
        for name, table in tables.items():
            con.register(name, table)
        return to_arrow(con, sql)
    finally:
        con.close()


class DuckDBEngine(Engine):
    name = "duckdb"
    dialect = DUCKDB

    def __init__(self, settings: Settings, temp_dir: Path) -> None:
        super().__init__(settings, temp_dir)
        self.con = connect(settings, temp_dir)
        self._arrow: dict[str, pa.Table] = {}

    def register_files(self, name: str, files: Sequence[str], schema: pa.Schema) -> None:
        if not files:
            self.register_arrow(name, schema.empty_table())
            return
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {parquet_scan(files)}")

    def register_arrow(self, name: str, table: pa.Table) -> None:
        self._arrow[name] = table  # keep a reference: DuckDB scans it lazily
        self.con.register(f"{name}__arrow", table)
        self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}__arrow")

    def materialize(self, name: str, sql: str) -> int:
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}")
        row = self.con.execute(f"SELECT count(*) FROM {name}").fetchall()[0]
        return int(row[0])

    def fetch(self, sql: str) -> pa.Table:
        return to_arrow(self.con, sql)

    def write_partitions(self, sql: str, out_dir: Path, partition_by: str) -> list[str]:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.con.execute(
            f"COPY ({sql}) TO {sql_string(str(out_dir))} (FORMAT parquet, COMPRESSION zstd, "
            f"PARTITION_BY ({partition_by}), WRITE_PARTITION_COLUMNS true, OVERWRITE_OR_IGNORE true)"
        )
        return sorted(str(p) for p in out_dir.rglob("*.parquet"))

    def close(self) -> None:
        self.con.close()


register_engine("duckdb", DuckDBEngine)
