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
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from costlake.lake.storage import to_local
from costlake.tables import TableDef

CATALOG_NAME = "costlake"
PLANS_DIR = ".plans"


@dataclass(frozen=True)
class TableMeta:
    """What a reading command needs of one table's current metadata file."""

    uuid: str
    current_snapshot_id: int | None
    #: (snapshot id, timestamp ms, summary without "operation"), oldest first, as the file lists them
    snapshots: tuple[tuple[int, int, dict[str, str]], ...]
    column_names: tuple[str, ...]

    def has_snapshot(self, snapshot_id: int) -> bool:
        return any(snap[0] == snapshot_id for snap in self.snapshots)


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
            {k: str(v) for k, v in (s.get("summary") or {}).items() if k != "operation"},
        )
        for s in doc.get("snapshots") or ()
    )
    return TableMeta(
        uuid=str(doc["table-uuid"]),
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
            con = sqlite3.connect(f"{self.db.as_uri()}?mode=ro", uri=True, timeout=5)
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
        try:
            data = path.read_bytes()
            text = (
                gzip.decompress(data).decode() if path.name.endswith(".gz.metadata.json") else data.decode()
            )
            return parse_metadata(text)
        except (OSError, ValueError, KeyError, TypeError, StopIteration):
            return None


class PlanCache:
    """The data files of whole snapshots, one small JSON file per (table, snapshot), written once.

    A snapshot's files never change, so an entry is never stale; an entry that cannot be read is a miss.
    Writing is best effort (a read-only warehouse folder simply gets no cache)."""

    def __init__(self, root: Path) -> None:
        self.root = root / PLANS_DIR

    def _path(self, table: str, uuid: str, snapshot_id: int) -> Path:
        return self.root / table / f"{uuid}-{snapshot_id}.json"

    def get(self, table: str, uuid: str, snapshot_id: int) -> list[str] | None:
        try:
            doc: Any = json.loads(self._path(table, uuid, snapshot_id).read_text())
        except (OSError, ValueError):
            return None
        files = doc.get("files") if isinstance(doc, dict) else None
        if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
            return None
        return files

    def put(self, table: str, uuid: str, snapshot_id: int, files: list[str]) -> None:
        path = self._path(table, uuid, snapshot_id)
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w") as sink:
                    json.dump({"snapshot_id": snapshot_id, "files": files}, sink)
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
