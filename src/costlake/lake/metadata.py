"""A local warehouse's table metadata read without PyIceberg: the fast path of reading commands.

A command that only reads (`explain`, `query`, the readers) needs three things of a table: its current
snapshot, its snapshots' summaries (where the run manifests and the batch registry live) and the data
files of one snapshot. For a local warehouse with its SQLite catalog, the first two are one row of the
catalog database (read with the standard library's `sqlite3`, read-only) and one metadata JSON file, as
the Iceberg table spec lays them out (`current-snapshot-id`, `snapshots[].summary`, `schemas`). The
third needs the snapshot's Avro manifests, which PyIceberg reads; since a snapshot never changes, its
file list is kept once planned, in `<warehouse>/.plans/<table>/<table-uuid>-<snapshot>.json`
(`PlanCache`). Importing PyIceberg and SQLAlchemy costs a cold command about 0.7 s on these machines;
reading two small files costs a few milliseconds.

Anything this path cannot read as it expects (another catalog, an object store, a missing or odd file,
delete files) makes it answer None, and the caller takes PyIceberg's path: never a guess.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import os
import sqlite3
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from costlake.errors import LakeError
from costlake.lake.storage import to_local
from costlake.tables import TableDef

if TYPE_CHECKING:
    from pyiceberg.table import Table

CATALOG_NAME = "costlake"
PLANS_DIR = ".plans"
MAX_METADATA_BYTES = 256 << 20
MAX_PLAN_BYTES = 64 << 20


@dataclass(frozen=True)
class TableMeta:
    """What a reading command needs of one table's current metadata file."""

    uuid: str
    location: str
    current_snapshot_id: int | None
    #: (snapshot id, timestamp ms, summary without "operation"), oldest first, as the file lists them
    snapshots: tuple[tuple[int, int, dict[str, str]], ...]
    column_names: tuple[str, ...]

    def ref(self, snapshot_id: int | None) -> SnapshotRef | None:
        """The snapshot (None: the current one) as the plan cache knows it; None when this metadata
        does not list it (PyIceberg's path then says why)."""
        wanted = self.current_snapshot_id if snapshot_id is None else snapshot_id
        if wanted is None:
            return SnapshotRef(self.uuid, self.location, None, {})
        summary = next((snap[2] for snap in self.snapshots if snap[0] == wanted), None)
        return None if summary is None else SnapshotRef(self.uuid, self.location, wanted, summary)


@dataclass(frozen=True)
class SnapshotRef:
    """One snapshot of one table: what its plan cache entry is checked against."""

    uuid: str
    location: str  # the table's location; its data files live under `<location>/data/`
    snapshot_id: int | None  # None: the table has no snapshot yet
    summary: Mapping[str, str]  # the snapshot summary (`total-data-files`, `total-delete-files`, ...)

    def plausible(self, files: Sequence[str]) -> bool:
        """True when `files` can be the snapshot's data files: as many as its summary counts, no
        delete files, each under the table's data folder."""
        total, deletes = self.summary.get("total-data-files"), self.summary.get("total-delete-files", "0")
        if total is None or not total.isdigit() or int(total) != len(files) or deletes != "0":
            return False
        prefixes = tuple(
            {self.location.rstrip("/") + "/data/", to_local(self.location).rstrip("/") + "/data/"}
        )
        return all(f.startswith(prefixes) and "/../" not in f for f in files)


def snapshot_ref(table: Table, snapshot_id: int | None) -> SnapshotRef:
    """`SnapshotRef` of a table PyIceberg loaded (the current snapshot when `snapshot_id` is None)."""
    snap = table.current_snapshot() if snapshot_id is None else table.snapshot_by_id(snapshot_id)
    uuid, location = str(table.metadata.table_uuid), table.location()
    if snap is None:
        if snapshot_id is not None:
            raise LakeError(f"table {table.name()[-1]} has no snapshot {snapshot_id}")
        return SnapshotRef(uuid, location, None, {})
    summary = snap.summary.additional_properties if snap.summary else {}
    return SnapshotRef(uuid, location, snap.snapshot_id, {k: str(v) for k, v in summary.items()})


def read_small(path: Path, limit: int) -> bytes | None:
    """The bytes of a regular file of at most `limit` bytes, else None (a FIFO, a device, a huge file)."""
    try:
        with open(path, "rb", opener=_no_block) as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
                return None
            return handle.read(limit + 1)[:limit]
    except OSError:
        return None


def _no_block(path: str, flags: int) -> int:
    return os.open(path, flags | os.O_NONBLOCK)  # a FIFO opens without waiting for a writer


def parse_metadata(text: str) -> TableMeta:
    """The fields of an Iceberg table metadata JSON document that `TableMeta` holds."""
    doc = json.loads(text)
    current = doc.get("current-snapshot-id")
    schema_id = doc.get("current-schema-id", 0)
    schema = next(s for s in doc["schemas"] if s.get("schema-id", 0) == schema_id)
    snapshots = tuple(
        (
            int(s["snapshot-id"]),
            int(s["timestamp-ms"]),
            {str(k): str(v) for k, v in dict(s.get("summary") or {}).items() if k != "operation"},
        )
        for s in doc.get("snapshots") or ()
    )
    return TableMeta(
        uuid=str(doc["table-uuid"]),
        location=str(doc["location"]),
        current_snapshot_id=None if current in (None, -1) else int(current),
        snapshots=snapshots,
        column_names=tuple(str(f["name"]) for f in schema["fields"]),
    )


class LocalMetadata:
    """Current table metadata of a local warehouse whose catalog is `<root>/catalog.db` (SQLite)."""

    def __init__(self, root: Path, namespace: str) -> None:
        self.db = root / "catalog.db"
        self.namespace = namespace

    def locations(self) -> dict[str, str] | None:
        """Table name -> current metadata file, or None when the catalog cannot be read this way."""
        if not self.db.is_file():
            return None
        try:
            con = sqlite3.connect(f"{self.db.as_uri()}?mode=ro", uri=True, timeout=1)
            try:
                rows = con.execute(
                    "SELECT table_name, metadata_location FROM iceberg_tables "
                    "WHERE catalog_name = ? AND table_namespace = ?",
                    (CATALOG_NAME, self.namespace),
                ).fetchall()
            finally:
                con.close()
        except sqlite3.Error:
            return None
        return {str(name): str(location) for name, location in rows if location}

    @staticmethod
    def load(location: str) -> TableMeta | None:
        """The metadata file at `location`, or None when it is not a local file this path reads."""
        path = Path(to_local(location))
        if "://" in str(path):
            return None
        data = read_small(path, MAX_METADATA_BYTES)
        if data is None:
            return None
        try:
            text = (
                gzip.decompress(data).decode() if path.name.endswith(".gz.metadata.json") else data.decode()
            )
            return parse_metadata(text)
        except (ValueError, KeyError, TypeError, AttributeError, StopIteration, RecursionError, OSError):
            return None


class PlanCache:
    """The data files of whole snapshots, one small JSON file per (table, snapshot), written once.

    A snapshot's files never change, so an entry is never stale; an entry that cannot be read is a miss.
    Writing is best effort (a read-only warehouse folder simply gets no cache)."""

    def __init__(self, root: Path) -> None:
        self.root = root / PLANS_DIR

    def _path(self, table: str, uuid: str, snapshot_id: int) -> Path:
        return self.root / table / f"{uuid}-{snapshot_id}.json"

    def get(self, table: str, ref: SnapshotRef) -> list[str] | None:
        """The entry's files when it is a plausible plan of `ref` (`SnapshotRef.plausible`), else None."""
        assert ref.snapshot_id is not None
        data = read_small(self._path(table, ref.uuid, ref.snapshot_id), MAX_PLAN_BYTES)
        try:
            doc: Any = json.loads(data) if data is not None else None
        except (ValueError, RecursionError):
            return None
        if not isinstance(doc, dict) or doc.get("snapshot_id") != ref.snapshot_id:
            return None
        files = doc.get("files")
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            return None
        return files if ref.plausible(files) else None

    def put(self, table: str, ref: SnapshotRef, files: list[str]) -> None:
        """Keep the plan of `ref` (best effort; only one `get` would accept)."""
        assert ref.snapshot_id is not None
        if not ref.plausible(files):
            return
        path = self._path(table, ref.uuid, ref.snapshot_id)
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w") as sink:
                    json.dump({"snapshot_id": ref.snapshot_id, "files": files}, sink)
                os.chmod(tmp, 0o644)  # readable by whoever may read the warehouse, like its other files
                os.replace(tmp, path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise


class LightTables:
    """One warehouse's metadata as this path reads it, each table's file read once (until `clear`)."""

    def __init__(self, source: LocalMetadata | None) -> None:
        self.source = source
        self._locations: dict[str, str] | None = None
        self._metas: dict[str, TableMeta | None] = {}

    def meta(self, name: str) -> TableMeta | None:
        """The table's current metadata, or None: take PyIceberg's path for it."""
        if self.source is None:
            return None
        if self._locations is None:
            self._locations = self.source.locations()
            if self._locations is None:
                self.source = None  # not a catalog this path reads: never try again
                return None
        if name not in self._metas:
            location = self._locations.get(name)
            self._metas[name] = self.source.load(location) if location else None
        return self._metas[name]

    def clear(self) -> None:
        self._locations = None
        self._metas.clear()


def read_files(files: Sequence[str], tdef: TableDef) -> pa.Table:
    """The rows of a table's local data files, in its column order and types; a column a file
    predates (lake/migrate.py) reads as NULL."""
    schema = tdef.arrow_schema()
    parts = []
    for path in files:
        data = pq.ParquetFile(path).read()
        columns = [
            data.column(field.name).cast(field.type)
            if field.name in data.column_names
            else pa.nulls(data.num_rows, field.type)
            for field in schema
        ]
        parts.append(pa.Table.from_arrays(columns, schema=schema))
    return pa.concat_tables(parts) if parts else schema.empty_table()
