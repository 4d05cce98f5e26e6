"""DuckDB helpers shared by every layer: connections from settings, literals, Parquet scans, Arrow out.

The engine (engines/duckdb_engine.py) computes stages with these; the read side (catalog/), sources
and fingerprints use them without depending on any engine.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import socket
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path

import duckdb
import pyarrow as pa

from costlake.settings import Settings

# How the lake's Parquet files are written by DuckDB. zstd's level 1 made the 10M lake's stage 1 files
# as small as the default level 3 did (251 MB against 250 MB) and wrote them 10% faster.
PARQUET_FORMAT = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def parquet_scan(files: Sequence[str]) -> str:
    """`read_parquet` over exactly these files. Hive partitioning stays off: folder names such as
    `run_id=…` must not turn into columns; every file carries its own columns. Columns are matched by
    name: files written before a column was appended to the table lack it (without `union_by_name`,
    DuckDB would take the first file's columns and silently drop the later ones)."""
    listing = ", ".join(sql_string(f) for f in files)
    return f"read_parquet([{listing}], hive_partitioning = false, union_by_name = true)"


def table_scan(files: Sequence[str], schema: pa.Schema) -> str:
    """A query over these files with exactly `schema`'s columns, in its order and types: a column no
    file has yet (appended to the table after they were written) reads as NULL.

    >>> import tempfile
    >>> older = f"{tempfile.mkdtemp()}/older.parquet"
    >>> con = duckdb.connect()
    >>> _ = con.execute(f"COPY (SELECT 1 AS a) TO {sql_string(older)} (FORMAT parquet)")
    >>> con.sql(table_scan([older], pa.schema([("a", pa.int64()), ("op", pa.string())]))).fetchall()
    [(1, None)]
    >>> con.sql(table_scan([], pa.schema([("a", pa.int64())]))).fetchall()  # no file: no row
    []
    """
    columns = ", ".join(
        f'CAST(NULL AS {kind}) AS "{name}"' for name, kind in zip(schema.names, _types(schema), strict=True)
    )
    empty = f"SELECT {columns} WHERE false"
    return f"{empty} UNION ALL BY NAME SELECT * FROM {parquet_scan(files)}" if files else empty


# DuckDB's names of the Arrow types the lake's tables use; any other type is asked of DuckDB itself.
_DUCKDB_TYPES = {
    pa.bool_(): "BOOLEAN",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.float64(): "DOUBLE",
    pa.string(): "VARCHAR",
    pa.large_string(): "VARCHAR",
    pa.date32(): "DATE",
    pa.timestamp("us"): "TIMESTAMP",
}


@functools.lru_cache(maxsize=64)
def _types(schema: pa.Schema) -> tuple[str, ...]:
    """DuckDB's names of the types of `schema`'s columns.

    >>> _types(pa.schema([("a", pa.decimal128(38, 12)), ("b", pa.large_string()), ("c", pa.int16())]))
    ('DECIMAL(38,12)', 'VARCHAR', 'SMALLINT')
    """
    known = [_DUCKDB_TYPES.get(f.type) for f in schema]
    for i, f in enumerate(schema):
        if isinstance(f.type, pa.Decimal128Type):
            known[i] = f"DECIMAL({f.type.precision},{f.type.scale})"
    if all(known):
        return tuple(str(k) for k in known)
    con = duckdb.connect()  # a connection of its own: thread-safe
    try:
        return tuple(str(kind) for kind in con.from_arrow(schema.empty_table()).types)
    finally:
        con.close()


def connect(
    settings: Settings, temp_dir: Path | None = None, *, ordered: bool = False
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection configured from settings (threads, memory limit: DuckDB's own default, 80%
    of the machine's memory, unless `duckdb_memory_limit` says otherwise).

    Work larger than the limit spills to `temp_dir`, by default to `_spill_folder()` (DuckDB's own
    default, `.tmp` in the working directory, would write into the user's folder). `ordered` keeps
    insertion order (needed where row numbers come from file order); the pipeline turns it off
    because it never relies on order and is faster without it.
    """
    config: dict[str, str | bool | int | float | list[str]] = {
        "preserve_insertion_order": ordered,
        "temp_directory": str(temp_dir) if temp_dir is not None else _spill_folder(),
    }
    if settings.duckdb_threads:
        config["threads"] = settings.duckdb_threads
    if settings.duckdb_memory_limit:
        config["memory_limit"] = settings.duckdb_memory_limit
    con = duckdb.connect(config=config)
    # Progress is tracked for `costlake.progress.watching` (query_progress) but never drawn: DuckDB's
    # own bar would go to stdout after 2 s, into a CSV being written.
    con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = false")
    return con


SPILL_PREFIX = "costlake-spill-"


def _spill_folder() -> str:
    """A folder of the connection's own in the system's temp folder, named after the machine and the
    process: DuckDB
    makes it on the first spill and removes it when the connection closes. The first call of a
    process removes the folders of processes that no longer run (a killed process leaves its
    spill behind). "" (no spilling: work beyond the memory limit fails as out of memory) when there
    is no writable temp folder, rather than failing every query, or spilling into the working
    folder where Python's `tempfile` falls back to it."""
    try:
        base = tempfile.gettempdir()
    except FileNotFoundError:  # none of the candidates is writable
        return ""
    if Path(base) == Path.cwd() and not any(os.environ.get(v) for v in ("TMPDIR", "TEMP", "TMP")):
        return ""
    _sweep_spills(base)
    return str(Path(base) / f"{SPILL_PREFIX}{_host()}-{os.getpid()}-{uuid.uuid4().hex[:16]}")


def _host() -> str:
    """This machine's name as a folder name may hold it: a temp folder shared with another machine or
    container (whose process ids mean nothing here) must not have its spills taken for dead ones."""
    return re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:64] or "host"


@functools.cache
def _sweep_spills(base: str) -> None:
    """Remove the spill folders in `base` of this machine's processes that no longer run (once per
    process; POSIX only, where signal 0 asks whether a process runs)."""
    if os.name != "posix":
        return
    for folder in Path(base).glob(f"{SPILL_PREFIX}{_host()}-*"):
        pid = folder.name[len(SPILL_PREFIX) + len(_host()) + 1 :].split("-", 1)[0]
        if pid.isdigit() and not _running(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):  # another user's process, or a number no pid can be
        return True  # either way, not ours to remove
    return True


def to_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """The result of a query as Arrow (DuckDB 2 renamed the relation's `arrow` to `to_arrow_table`)."""
    relation = con.sql(sql)
    method = getattr(relation, "to_arrow_table", None) or relation.arrow
    table: pa.Table = method()
    return table


def arrow_batches(con: duckdb.DuckDBPyConnection, sql: str, rows: int = 1 << 20) -> pa.RecordBatchReader:
    """The result of a query as a stream of Arrow batches of about `rows` rows, for results too large
    to hold at once (DuckDB 2 renamed the relation's `fetch_arrow_reader` to `to_arrow_reader`)."""
    relation = con.sql(sql)
    method = getattr(relation, "to_arrow_reader", None) or relation.fetch_arrow_reader
    reader: pa.RecordBatchReader = method(rows)
    return reader


def run_on_arrow(sql: str, **tables: pa.Table) -> pa.Table:
    """Run `sql` over in-memory Arrow tables named by the keywords: a stage as a pure function."""
    con = duckdb.connect()
    try:
        for name, table in tables.items():
            con.register(name, table)
        return to_arrow(con, sql)
    finally:
        con.close()
