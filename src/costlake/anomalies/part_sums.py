"""The parts of every event file, summed once and kept beside the lake (`<warehouse>/.parts/`).

Detection reads the split of a series' daily cost by region, pricing model, charge category and usage
type (its parts): the mix screen over a window and a half of days, the causes on a few. Summing them
from the events on every run read that many days of events each time. But an event data file never
changes (a run replaces whole files, it never rewrites one), so the sums of one file stay right for
as long as the file is in the lake: `PartSums` keeps, per data file of `normalized_billing_events`,
one Arrow IPC file of its exact sums by (series, day, dimension, value), each sum also rounded to a
float by DuckDB (as the screen read them before). A run then sums only the files it wrote: a 3-day
re-delivery sums 3 days, not the 60 its series' windows cover.

A day held in several files has its sums added exactly, by DuckDB, from those files' decimals (the
float of a sum is not the sum of floats). An entry that cannot be read as written (cut short,
another format) is a miss and is summed again; writing is best effort (a read-only warehouse folder
keeps nothing and sums every time); the entries of files the lake no longer holds are removed after
detection (`prune`). Only detection reads or writes them, under the warehouse's write lock. A
remote warehouse keeps them in its local folder, beside the downloaded files.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from costlake.duck import connect, table_scan, to_arrow
from costlake.errors import first_line
from costlake.lake.storage import to_local
from costlake.lake.warehouse import Warehouse
from costlake.tables import NONE_VALUE, NORMALIZED, TableDef

log = logging.getLogger(__name__)

PARTS_DIR = ".parts"
FORMAT = "v1"  # a new layout gets a new folder; `prune` clears the old one
FILES_PER_QUERY = 8  # files summed per query: bounds its result (about 90,000 sums a file at 10M events)
# The dimensions of the parts (detection's causes break ties in this order: frame.DIMENSIONS).
DIMENSION_NAMES = ("region", "pricing_model", "charge_category", "usage_type")
EPOCH = dt.date(1970, 1, 1)
_DAYS = b"days"  # an entry's first and last day, since 1970 ("0 -1": no rows)
_BYTES = b"source_bytes"  # the size of the file summed ("": unknown, a remote file)

_ENTRY = pa.schema(
    [
        ("series", pa.dictionary(pa.int32(), pa.string())),  # `series_code` of (account, service)
        ("usage_date", pa.date32()),
        ("dimension", pa.int8()),  # index in DIMENSION_NAMES
        ("value", pa.dictionary(pa.int32(), pa.string())),
        ("cost", pa.decimal128(38, 12)),
        ("fcost", pa.float64()),  # DuckDB's CAST of `cost` to DOUBLE
    ]
)

# Each file's rows, with its number `f` in the query.
_FILE_EVENTS = """
    SELECT {f} AS f, account_id, service_name, usage_date, billed_cost, usage_type,
           COALESCE(region, '{none}') AS region, COALESCE(pricing_model, '{none}') AS pricing_model,
           COALESCE(charge_category, '{none}') AS charge_category
    FROM ({scan}) AS file_{f}"""

# Every dimension in one scan; a missing value is grouped as "(none)", with a value spelt so (one
# value to every reader), and usage type only where the source has one.
_SUMS = """
    SELECT f, strlen(account_id) || ':' || account_id || ':' || service_name AS series, usage_date,
           dimension, value, cost, CAST(cost AS DOUBLE) AS fcost
    FROM (
        SELECT f, account_id, service_name, usage_date,
               CAST(CASE WHEN GROUPING(region) = 0 THEN 0 WHEN GROUPING(pricing_model) = 0 THEN 1
                         WHEN GROUPING(charge_category) = 0 THEN 2 ELSE 3 END AS TINYINT) AS dimension,
               COALESCE(region, pricing_model, charge_category, usage_type) AS value,
               sum(billed_cost) AS cost
        FROM ({events}) AS e
        GROUP BY GROUPING SETS (
            (f, account_id, service_name, usage_date, region),
            (f, account_id, service_name, usage_date, pricing_model),
            (f, account_id, service_name, usage_date, charge_category),
            (f, account_id, service_name, usage_date, usage_type)
        )
    ) WHERE dimension <> 3 OR value IS NOT NULL"""

# Sums of two sets of files compared group by group (`PartSums.differing`).
_DIFFERING = """
    SELECT series, min(usage_date) AS first, max(usage_date) AS last FROM (
        SELECT series, usage_date FROM (
            SELECT false AS came, series, usage_date, dimension, value, cost FROM part_sums_gone
            UNION ALL SELECT true AS came, series, usage_date, dimension, value, cost FROM part_sums_came
        ) AS sums
        GROUP BY series, usage_date, dimension, value
        HAVING sum(cost) FILTER (WHERE NOT came) IS DISTINCT FROM sum(cost) FILTER (WHERE came)
            OR NOT (bool_or(came) AND bool_or(NOT came))
    ) GROUP BY series"""


def series_code(account_id: pa.Array | pa.ChunkedArray, service_name: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One string per (account, service): the account's length in bytes of UTF-8, the account, the
    service, which no two pairs share whatever characters their names hold (`_SUMS` spells them the
    same way in SQL).

    >>> series_code(pa.array(["a:b", "é"]), pa.array(["c", "b:c"])).to_pylist()
    ['3:a:b:c', '2:é:b:c']
    """
    length = pc.cast(pc.binary_length(account_id), pa.string())
    return pc.binary_join_element_wise(length, account_id, service_name, ":")


def _decoded(code: str) -> tuple[str, str]:
    """The (account, service) of a `series_code`.

    >>> _decoded("3:a:b:c"), _decoded("2:é:b:c")
    (('a:b', 'c'), ('é', 'b:c'))
    """
    length, rest = code.split(":", 1)
    encoded = rest.encode()
    end = int(length)
    return encoded[:end].decode(), encoded[end + 1 :].decode()


class PartSums:
    """The part sums of the event files `locations` (the data files of one snapshot of
    `normalized_billing_events`), summed on `con` where no entry holds them yet."""

    def __init__(self, wh: Warehouse, con: duckdb.DuckDBPyConnection, locations: Sequence[str]) -> None:
        self.wh, self.con = wh, con
        self.locations = sorted(set(locations))
        self.root = wh.root / PARTS_DIR / FORMAT
        self._known: dict[str, pa.Table] = {}
        self._prepared: list[Entry] | None = None
        self.summed = 0  # files summed by this instance (the others were read back)

    def path(self, location: str) -> Path:
        digest = hashlib.sha256(location.encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.arrow"

    def entries(self, locations: Sequence[str] | None = None) -> list[pa.Table]:
        """The entries of `locations` (None: `self.locations`), in their order, read back or summed
        (and kept) now."""
        wanted = self.locations if locations is None else list(locations)
        missing = [loc for loc in dict.fromkeys(wanted) if loc not in self._known]
        for loc in missing:
            entry = _read(self.path(loc), _size(loc, self.wh.remote))
            if entry is not None:
                self._known[loc] = entry
        missing = [loc for loc in missing if loc not in self._known]
        for start in range(0, len(missing), FILES_PER_QUERY):
            group = missing[start : start + FILES_PER_QUERY]
            for loc, entry in zip(group, self._sum(group), strict=True):
                # Read back as a mapped file where it was kept: the whole lake's entries (a full
                # analysis) would otherwise all stay in memory.
                kept = _read(self.path(loc), None) if _write(self.path(loc), entry) else None
                self._known[loc] = entry if kept is None else kept
        self.summed += len(missing)
        return [self._known[loc] for loc in wanted]

    def _sum(self, locations: list[str]) -> list[pa.Table]:
        schema = NORMALIZED.arrow_schema()
        events = " UNION ALL ".join(
            _FILE_EVENTS.format(f=f, scan=table_scan([path], schema), none=NONE_VALUE)
            for f, path in enumerate(self.wh.storage.readable(locations))
        )
        got = to_arrow(self.con, _SUMS.format(events=events))
        series = _encoded(got.column("series"))
        table = pa.Table.from_arrays(
            [
                series,
                got.column("usage_date"),
                got.column("dimension"),
                _encoded(got.column("value")),
                got.column("cost").cast(pa.decimal128(38, 12)),
                got.column("fcost"),
            ],
            schema=_ENTRY,
        )
        # Each file's rows, a series' rows together (`picked` slices them).
        number = got.column("f").to_numpy()
        order = np.lexsort((series.indices.to_numpy(), number))
        cuts = np.searchsorted(number[order], np.arange(len(locations) + 1))
        out = []
        for f, location in enumerate(locations):
            entry = table.take(pa.array(order[cuts[f] : cuts[f + 1]], pa.int64()))
            days = pc.min_max(entry.column("usage_date").cast(pa.int32()))
            span = f"{days['min'].as_py()} {days['max'].as_py()}" if entry.num_rows else "0 -1"
            size = _size(location, self.wh.remote)
            meta = {_DAYS: span, _BYTES: "" if size is None else str(size)}
            out.append(entry.replace_schema_metadata(meta))
        return out

    def differing(
        self, gone: Sequence[str], came: Sequence[str]
    ) -> list[tuple[tuple[str, str], dt.date, dt.date]]:
        """The series whose sums differ between the files `gone` and the files `came`, each with
        its first and last differing day: a (day, dimension, value) group whose sums differ, or
        that is on one side only."""
        for name, locations in (("part_sums_gone", gone), ("part_sums_came", came)):
            found = self.entries(locations)
            self.con.register(name, pa.concat_tables(found) if found else _ENTRY.empty_table())
        try:
            got = to_arrow(self.con, _DIFFERING)
        finally:
            self.con.unregister("part_sums_gone")
            self.con.unregister("part_sums_came")
        columns = (got.column(c).to_pylist() for c in ("series", "first", "last"))
        return [(_decoded(code), first, last) for code, first, last in zip(*columns, strict=True)]

    def prepared(self) -> list[Entry]:
        if self._prepared is None:
            self._prepared = [Entry(e) for e in self.entries() if e.num_rows]
        return self._prepared

    def prune(self) -> None:
        """Remove the entries of files not in `locations`, and folders of other formats (best effort)."""
        keep = {self.path(loc) for loc in self.locations}
        with contextlib.suppress(OSError):
            for old in self.root.parent.iterdir():
                if old != self.root and old.is_dir():
                    shutil.rmtree(old, ignore_errors=True)
            for folder in self.root.iterdir() if self.root.is_dir() else ():
                for path in folder.iterdir():
                    if path not in keep:
                        with contextlib.suppress(OSError):
                            path.unlink()


class SumsAhead:
    """The part sums of the event files a run just committed, summed on a thread while the run goes on
    to commit its other tables (mostly PyIceberg's Python, which leaves a core free), so that the
    detection that follows finds them summed. Local warehouses only (a remote one's files would be
    downloaded again); whatever it does not finish, or fails at, detection sums itself. Never raises."""

    def __init__(self, wh: Warehouse) -> None:
        self.wh = wh
        self._thread: threading.Thread | None = None
        self._con: duckdb.DuckDBPyConnection | None = None
        self._stop = threading.Event()

    def committed(self, tdef: TableDef, files: list[str]) -> None:
        """`pipeline.run.Committed`: starts on the event files, once."""
        if tdef.name != NORMALIZED.name or self._thread is not None or self.wh.remote or not files:
            return
        locations = [str(Path(f).resolve()) for f in files]  # as the table lists them (Storage.publish)
        try:
            self._con = connect(self.wh.settings)
            self._thread = threading.Thread(
                target=self._sum, args=(locations,), name="part-sums", daemon=True
            )
            self._thread.start()
        except Exception as exc:  # noqa: BLE001 - detection sums them itself
            log.debug("part sums ahead of detection: not started (%s)", first_line(exc))
            self._thread = None

    def _sum(self, locations: list[str]) -> None:
        assert self._con is not None
        sums = PartSums(self.wh, self._con, locations)
        try:
            for start in range(0, len(locations), FILES_PER_QUERY):
                if self._stop.is_set():
                    return
                sums.entries(locations[start : start + FILES_PER_QUERY])
        except Exception as exc:  # noqa: BLE001 - detection sums them itself
            log.debug("part sums ahead of detection: %s", first_line(exc))

    def join(self, *, stop: bool = False) -> None:
        """Wait for the thread; with `stop` (the run failed or was interrupted), stop its query first."""
        if self._thread is None or self._con is None:
            return
        if stop:
            self._stop.set()
            self._con.interrupt()
        self._thread.join()
        self._con.close()
        self._thread = None


class Entry:
    """One entry's columns as NumPy, for picking rows from it."""

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        series, value = single(table, "series"), single(table, "value")
        self.series, self.series_index = series.dictionary, series.indices.to_numpy()
        self.values, self.value_index = value.dictionary, value.indices.to_numpy()
        self.dimension = single(table, "dimension").to_numpy()
        self.span = _span(table)  # one day, unless a writer broke the partitioning
        self.day = None
        if self.span[0] != self.span[1]:
            self.day = (
                table.column("usage_date").combine_chunks().cast(pa.int32()).to_numpy().astype(np.int64)
            )


def single(table: pa.Table, name: str) -> pa.Array:
    """A column of one chunk (an entry is written as one batch) without a copy."""
    column = table.column(name)
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _encoded(column: pa.Array | pa.ChunkedArray) -> pa.DictionaryArray:
    whole = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return whole.dictionary_encode()


def _size(location: str, remote: bool) -> int | None:
    """The size of a local event file (None for a remote one: its location is never reused)."""
    if remote:
        return None
    try:
        return os.stat(to_local(location)).st_size
    except OSError:
        return None


def _read(path: Path, size: int | None) -> pa.Table | None:
    """The entry at `path`, if it reads as written and, with `size`, was summed from a file of that
    many bytes (a location reused by another file is a miss)."""
    try:
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
    except (OSError, pa.ArrowException):
        return None
    if not table.schema.equals(_ENTRY):
        return None
    try:
        _span(table)
        kept = (table.schema.metadata or {})[_BYTES]
    except (KeyError, TypeError, ValueError):
        return None
    return table if size is None or kept == str(size).encode() else None


def _span(table: pa.Table) -> tuple[int, int]:
    """The first and last day (since 1970) of an entry's rows, as written beside them."""
    lo, hi = (table.schema.metadata or {})[_DAYS].split()
    return int(lo), int(hi)


def _write(path: Path, entry: pa.Table) -> bool:
    """Keep `entry` at `path` (best effort): whether it was kept."""
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".arrow")
        try:
            with os.fdopen(fd, "wb") as sink, pa.ipc.new_file(sink, entry.schema) as writer:
                writer.write_table(entry)
            os.chmod(tmp, 0o644)  # readable by whoever may read the warehouse, like its other files
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return True
    return False
