"""DuckDB helpers shared by every layer: connections from settings, literals, Parquet scans, Arrow out.

The engine (engines/duckdb_engine.py) computes stages with these; the read side (catalog/), sources
and fingerprints use them without depending on any engine.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import functools
import os
import shutil
import stat
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, wait
from pathlib import Path
from typing import IO, TypeVar

import duckdb
import pyarrow as pa

from costlake.settings import Settings

T = TypeVar("T")

# How the lake's Parquet files are written by DuckDB. zstd's level 1 made the 10M lake's stage 1 files
# as small as the default level 3 did (251 MB against 250 MB) and wrote them 10% faster.
PARQUET_FORMAT = "FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1"


def sql_string(value: str) -> str:
    """A SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def sql_ident(name: str) -> str:
    """A quoted SQL identifier: a column name from a file header, or a catalog's name, may hold any
    character."""
    return '"' + name.replace('"', '""') + '"'


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
OWNER = "owner.lock"  # in each process's spill folder, locked (flock) for as long as the process runs
_OURS: list[tuple[int, Path, IO[bytes]]] = []  # (pid, folder, its locked owner file) of this process
_MAKING = threading.Lock()
_SWEPT: set[str] = set()  # temp folders this process has swept (`_sweep_spills`)


def _spill_folder() -> str:
    """A folder for one connection's spill, inside this process's (`_process_spill_folder`): DuckDB
    makes it on the first spill and removes it when the connection closes. "" (no spilling: work
    beyond the memory limit fails as out of memory) when no temp folder is writable."""
    root = _process_spill_folder()
    return str(Path(root) / uuid.uuid4().hex[:16]) if root else ""


@contextlib.contextmanager
def scratch_folder(prefix: str) -> Iterator[Path]:
    """A private folder (mode 0700) for one command's working files, removed when the block ends:
    DuckDB's spill and staged stage files, both billing data. It is made inside this process's spill
    folder, so a process killed meanwhile (`kill -9`, out of memory) leaves nothing the next process
    does not sweep (`_sweep_spills`). Without a writable temp folder, Python's `tempfile` chooses the
    place, as a last resort."""
    with tempfile.TemporaryDirectory(prefix=prefix, dir=process_folder()) as folder:
        yield Path(folder)


def process_folder() -> str | None:
    """This process's private temp folder, which holds its spill and scratch folders and which the
    next process sweeps if this one is killed; None when no temp folder is writable."""
    return _process_spill_folder() or None


def _process_spill_folder() -> str:
    """This process's spill folder, made once (mode 0700: spilled rows are billing data) in the first
    writable of the temp folders (`_temp_folders`), never in the working folder. Its owner file is
    locked until the process ends, when the folder is removed; a killed process leaves it, and the
    next process's first connection removes every such folder whose lock it can take
    (`_sweep_spills`): a lock is held across process-id namespaces, so a live process is never taken
    for a dead one, whichever container on the machine shares the temp folder (a temp folder on a
    network file system shared by machines is not expected: its locks may be local to each)."""
    with _MAKING:  # threads connecting at once share one folder
        made = [folder for pid, folder, _ in _OURS if pid == os.getpid()]  # not a parent's, after a fork
        if made:
            return str(made[0])
        for base in map(os.path.abspath, _temp_folders()):
            if base not in _SWEPT:  # once a process: a process without a folder tries on each connection
                _SWEPT.add(base)
                _sweep_spills(base)
            folder = _made_folder(base)
            if folder is not None:
                return str(folder)
        return ""  # tried again by the next connection: a temp folder may have become writable


def _made_folder(base: str) -> Path | None:
    """A new spill folder in `base` with its owner file locked, recorded as this process's; None
    when `base` does not take one (nothing is left behind then)."""
    try:
        folder = Path(tempfile.mkdtemp(prefix=SPILL_PREFIX, dir=base))
    except OSError:
        return None
    try:
        staged = folder / f".{OWNER}"
        owner = staged.open("wb")
        try:
            fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a new file of our own: never taken
            staged.rename(folder / OWNER)  # appears already locked: a sweep never sees it free
        except OSError:
            owner.close()
            raise
    except OSError:  # out of file descriptors, a file system without locks: no spilling here
        shutil.rmtree(folder, ignore_errors=True)
        return None
    _OURS.append((os.getpid(), folder, owner))
    if len(_OURS) == 1:
        atexit.register(_remove_ours)
    return folder


def _temp_folders() -> list[str]:
    """Where spills may go, in order: `TMPDIR`, `TEMP`, `TMP` when set, then the system's temp
    folders. Unlike Python's `tempfile`, never the working folder (a user's)."""
    named = [os.environ[v] for v in ("TMPDIR", "TEMP", "TMP") if os.environ.get(v)]
    return [*named, "/tmp", "/var/tmp", "/usr/tmp"]  # noqa: S108 - searched, as tempfile does


def _sweep_spills(base: str) -> None:
    """Remove the spill folders in `base` whose owner no longer runs: this user's folders whose owner
    file's lock can be taken. Folders without an owner file (being made), other users', symlinks,
    and an owner file that is not a regular file (a FIFO would block the open) are left alone."""
    try:
        folders = list(Path(base).glob(f"{SPILL_PREFIX}*"))
    except OSError:
        return
    for folder in folders:
        try:
            if not _own_folder(folder):
                continue
            fd = os.open(folder / OWNER, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        except OSError:  # gone meanwhile (another process's sweep), no owner file, or a symlink
            continue
        try:
            if stat.S_ISREG(os.fstat(fd).st_mode):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:  # its process still runs
            pass
        finally:
            os.close(fd)


def _own_folder(path: Path) -> bool:
    """A real folder (not a symlink) of this user's."""
    info = path.lstat()
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()


def _remove_ours() -> None:
    """At exit: remove the spill folder this process made (not one a parent made before a fork)."""
    for pid, folder, owner in _OURS:
        if pid == os.getpid():
            shutil.rmtree(folder, ignore_errors=True)
            owner.close()


def to_arrow(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    """The result of a query as Arrow (DuckDB 2 renamed the relation's `arrow` to `to_arrow_table`)."""
    relation = con.sql(sql)
    method = getattr(relation, "to_arrow_table", None) or relation.arrow
    table: pa.Table = method()
    return table


def interruptible(con: duckdb.DuckDBPyConnection, run: Callable[[], T]) -> T:
    """`run()`, a call into DuckDB on `con`, made in a worker thread while the main thread waits, so
    that a signal stops it at once: Python runs a signal's handler only in the main thread and only
    between its own steps, never inside a C call, so a long query held Ctrl-C (and SIGTERM) until it
    finished. The handler's exception interrupts the query (`con.interrupt()`) and goes on up once
    the worker has stopped. Called from another thread (no signal reaches it), `run()` runs there.

    The wait is on the call's future, which the worker completes as its last step, not on
    `Thread.join`, which a signal can cut short with the thread still running; and the worker is no
    daemon: a process that ended with DuckDB still inside a call was aborted by the C++ runtime
    ("exception not rethrown")."""
    if threading.current_thread() is not threading.main_thread():
        return run()
    future: Future[T] = Future()

    def work() -> None:
        try:
            future.set_result(run())
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread as it is
            future.set_exception(exc)

    worker = threading.Thread(target=work, name="costlake-duckdb")
    try:
        worker.start()
        wait([future])  # a signal's handler runs here, in this thread
    except BaseException:
        con.interrupt()
        if worker.ident is not None:
            while not wait([future], timeout=0.1).done:  # later signals are only noted
                pass
        raise
    finally:
        if worker.ident is not None:
            worker.join()
    return future.result()


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
