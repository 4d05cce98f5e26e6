"""The warehouse: an Iceberg catalog plus the storage under it, and the only place that commits.

Every write is one Iceberg transaction per table. Partitioned tables are replaced a set of
`usage_date` partitions at a time: delete those days and add the engine's Parquet files in the same
transaction, so a reader sees the old or the new snapshot, never a mix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import shutil
import uuid
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import pyarrow as pa

from costlake.errors import LakeError
from costlake.lake.connect import load_table, open_catalog
from costlake.lake.filters import is_in
from costlake.lake.home import check_home, check_path
from costlake.lake.lease import LEASE_SCHEMES, S3Lease
from costlake.lake.lock import ensure_held, writer_lock
from costlake.lake.metadata import LightTables, LocalMetadata, PlanCache, TableMeta, read_files, snapshot_ref
from costlake.lake.migrate import migrate_table, missing_columns
from costlake.lake.partition_files import check_partition_files, rows_on_days, write_partition_files
from costlake.lake.storage import Storage, is_remote, to_local
from costlake.lake.tags import tag_commit
from costlake.settings import Settings
from costlake.tables import NAMESPACE, NORMALIZED, QUARANTINE, RAW, TABLE_PROPERTIES, TABLES, TableDef

if TYPE_CHECKING:  # PyIceberg is imported on first use: a reading command often needs none of it
    from pyiceberg.catalog import Catalog
    from pyiceberg.expressions import BooleanExpression
    from pyiceberg.table import Table, Transaction

PROP_PREFIX = "costlake."
# Tables whose commits do not plan their new snapshot at once: large, and read by the pipeline only.
UNCACHED_PLANS = frozenset({RAW.name, NORMALIZED.name, QUARANTINE.name})
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot of a table with the costlake properties its commit recorded."""

    snapshot_id: int
    timestamp_ms: int
    properties: dict[str, str]


class Warehouse:
    """Catalog and tables of one warehouse: a local folder, or `s3://bucket/prefix`."""

    def __init__(self, settings: Settings, on_wait: Callable[[str], None] | None = None) -> None:
        self.settings = settings
        self.on_wait = on_wait
        self.remote = is_remote(settings.warehouse)
        if self.remote:
            # The local side of a remote warehouse: lock, staging and the cache of downloaded files.
            slug = hashlib.sha256(settings.warehouse.encode()).hexdigest()[:16]
            self.root = Path(settings.local_dir or Path.home() / ".cache" / "costlake" / slug).resolve()
        else:
            self.root = Path(to_local(settings.warehouse)).resolve()
            check_path(self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        # A remote catalog opens at once (its configuration errors first), the local one on first use.
        self._catalog: Catalog | None = open_catalog(settings, self.root, True) if self.remote else None
        light = not self.remote and settings.catalog == "sql" and not settings.catalog_uri
        self.light = LightTables(LocalMetadata(self.root, NAMESPACE) if light else None)
        self.plans = PlanCache(self.root)
        self._tables: dict[str, Table] = {}
        # A snapshot never changes: the files of a whole one are planned once (table, snapshot id).
        self._planned: dict[tuple[str, int], list[str]] = {}
        self._storage: Storage | None = None
        self._ensured = False
        self._s3: Any = None  # the boto3 S3 client of the writer lease, made on first use

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = open_catalog(self.settings, self.root, self.remote)
        return self._catalog

    def writer(self, command: str) -> contextlib.AbstractContextManager[None]:
        """The warehouse's write lock, held for `command` (re-entrant within a process); waits up
        to `lock_timeout_seconds` for another writer, telling `on_wait` once who it waits for. For an
        S3 warehouse it is also a lease in the bucket (lake/lease.py), so it holds across hosts."""
        for name in () if self.remote else TABLES:  # a copied folder still names the original's files
            if (meta := self.light.meta(name)) is not None:
                check_home(self.root, name, meta.location)
        timeout, lease = self.settings.lock_timeout_seconds, self._lease(command)
        return writer_lock(self.root, command, timeout_s=timeout, on_wait=self.on_wait, lease=lease)

    def _lease(self, command: str) -> S3Lease | None:
        """The S3 lease of a writer on an S3 warehouse (None: a local one, or another object store,
        whose writer lock stays per host). boto3 is imported only here."""
        if urlparse(self.settings.warehouse).scheme not in LEASE_SCHEMES:
            return None
        from costlake.lake.connect import s3_client

        s = self.settings
        self._s3 = self._s3 or s3_client(s)  # one client for every hold
        lease_s, renew_s = s.lock_lease_seconds, s.lock_renew_seconds
        return S3Lease(self._s3, s.warehouse, command, lease_s=lease_s, renew_s=renew_s)

    # -- tables -----------------------------------------------------------------------------------
    def ensure_tables(self) -> None:
        """Create the namespace and every missing table, and migrate existing tables to their
        current definition (lake/migrate.py). Idempotent; done once per Warehouse object."""
        if self._ensured:
            return
        metas = {name: self.light.meta(name) for name in TABLES}
        if all(m and list(m.column_names) == TABLES[n].column_names for n, m in metas.items()):
            self._ensured = True  # every table is there, as defined: no need to open the catalog
            return
        from pyiceberg.exceptions import NamespaceAlreadyExistsError, TableAlreadyExistsError

        stored = self._stored_tables()
        if len(stored) < len(TABLES) or any(missing_columns(t, TABLES[n]) for n, t in stored.items()):
            # Creating and migrating are writes: under the lock, so two first commands cannot race.
            with self.writer("create or migrate tables"):
                ensure_held(self.root)
                with contextlib.suppress(NamespaceAlreadyExistsError):
                    self.catalog.create_namespace(NAMESPACE)
                stored = self._stored_tables()
                for tdef in TABLES.values():
                    if tdef.name not in stored:
                        with contextlib.suppress(TableAlreadyExistsError):  # a creator on another host
                            self.catalog.create_table(
                                tdef.identifier,
                                schema=tdef.iceberg_schema(),
                                partition_spec=tdef.partition_spec(),
                                properties=TABLE_PROPERTIES,
                            )
                    elif migrate_table(stored[tdef.name], tdef):
                        self._tables.pop(tdef.name, None)
            self.light.clear()  # new metadata files now
        self._ensured = True

    def _stored_tables(self) -> dict[str, Table]:
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        found: dict[str, Table] = {}
        for tdef in TABLES.values():
            with contextlib.suppress(NoSuchTableError, NoSuchNamespaceError):
                found[tdef.name] = load_table(self.catalog, tdef.identifier)
        return found

    def table(self, tdef: TableDef) -> Table:
        cached = self._tables.get(tdef.name)
        if cached is not None:
            return cached
        from pyiceberg.exceptions import NoSuchTableError

        try:
            table = load_table(self.catalog, tdef.identifier)
        except NoSuchTableError:
            self.ensure_tables()
            table = load_table(self.catalog, tdef.identifier)
        self._tables[tdef.name] = table
        return table

    def refresh(self) -> None:
        """Forget cached table metadata so the next read sees other processes' commits."""
        self._tables.clear()
        self.light.clear()

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            io = self.table(TABLES["raw_billing_events"]).io if self.remote else None
            self._storage = Storage(io, self.root, self.remote)
        return self._storage

    def staging_root(self, tdef: TableDef) -> Path:
        """The local folder holding the per-writer folders of a table's new files."""
        return self.storage.staging_root(tdef.name, self.table(tdef).location())

    def new_data_dir(self, tdef: TableDef, folder: str) -> Path:
        """A fresh local folder for one writer's files (for a local warehouse they stay there)."""
        path = self.staging_root(tdef) / folder
        path.mkdir(parents=True, exist_ok=True)
        return path

    # -- reading ----------------------------------------------------------------------------------
    def data_files(
        self,
        tdef: TableDef,
        *,
        dates: Iterable[dt.date] | None = None,
        row_filter: BooleanExpression | None = None,
        snapshot_id: int | None = None,
        fetch: bool = True,
    ) -> list[str]:
        """Local paths of the data files holding the given partitions (all when `dates` is None);
        `fetch=False`: their locations as the table lists them, none downloaded (`storage.readable`
        then fetches the ones wanted)."""
        if dates is None and row_filter is None:
            found = self._whole_snapshot(tdef, snapshot_id)
            return self.storage.readable(found) if fetch else list(found)
        from pyiceberg.expressions import AlwaysTrue

        table = self.table(tdef)
        expr: BooleanExpression = row_filter if row_filter is not None else AlwaysTrue()
        if dates is not None:
            wanted = sorted({d.isoformat() for d in dates})
            if not wanted:
                return []
            assert tdef.partition_by is not None, f"{tdef.name} is not partitioned"
            by_date = is_in(tdef.partition_by, wanted)
            expr = by_date if isinstance(expr, AlwaysTrue) else expr & by_date
        if snapshot_id is None and table.current_snapshot() is None:
            return []
        if snapshot_id is not None and table.snapshot_by_id(snapshot_id) is None:
            raise LakeError(f"table {tdef.name} has no snapshot {snapshot_id}")  # PyIceberg would plan none
        scan = table.scan(row_filter=expr, snapshot_id=snapshot_id)
        found = sorted(task.file.file_path for task in scan.plan_files())
        return self.storage.readable(found) if fetch else found

    def _light_meta(self, tdef: TableDef) -> TableMeta | None:
        """Light metadata, unless PyIceberg loaded the table (this process's commits update that one)."""
        return None if tdef.name in self._tables else self.light.meta(tdef.name)

    def _whole_snapshot(self, tdef: TableDef, snapshot_id: int | None) -> list[str]:
        """The data file locations of a whole snapshot (None: the current one), planned once: kept in
        memory and, since a snapshot never changes, in the warehouse's plan cache (lake/metadata.py)."""
        meta = self._light_meta(tdef)
        ref = meta.ref(snapshot_id) if meta is not None else None
        ref = ref or snapshot_ref(self.table(tdef), snapshot_id)
        snap = ref.snapshot_id
        if snap is None:
            return []
        found = self._planned.get((tdef.name, snap)) or self.plans.get(tdef.name, ref)
        if found is None:
            tasks = list(self.table(tdef).scan(snapshot_id=snap).plan_files())
            found = sorted(task.file.file_path for task in tasks)
            if not any(task.delete_files for task in tasks):  # its rows are exactly its files' rows
                self.plans.put(tdef.name, ref, found)
        if len(self._planned) >= 64:  # a long-lived process plans many runs: keep the latest
            self._planned.pop(next(iter(self._planned)))
        self._planned[(tdef.name, snap)] = found
        return found

    def snapshots(self, tdef: TableDef) -> list[SnapshotInfo]:
        """Snapshots oldest first, each with the `costlake.*` properties of its commit."""
        meta = self._light_meta(tdef)
        if meta is not None:
            listed = list(meta.snapshots)
        else:
            listed = [
                (
                    snap.snapshot_id,
                    snap.timestamp_ms,
                    snap.summary.additional_properties if snap.summary else {},
                )
                for snap in self.table(tdef).snapshots()
            ]
        return [
            SnapshotInfo(
                snap_id,
                timestamp_ms,
                {k[len(PROP_PREFIX) :]: v for k, v in props.items() if k.startswith(PROP_PREFIX)},
            )
            for snap_id, timestamp_ms, props in listed
        ]

    def last_properties(self, tdef: TableDef) -> dict[str, str]:
        """The costlake properties of the newest commit that recorded any."""
        for snap in reversed(self.snapshots(tdef)):
            if snap.properties:
                return snap.properties
        return {}

    # -- writing ----------------------------------------------------------------------------------
    def replace_partitions(
        self,
        tdef: TableDef,
        dates: Sequence[dt.date],
        files: Sequence[str],
        properties: dict[str, str],
    ) -> int:
        """Atomically replace the `dates` partitions of `tdef` with `files`; return the snapshot id."""
        assert tdef.partition_by is not None
        wanted = {d.isoformat() for d in dates}
        check_partition_files(tdef, files, wanted)
        table = self.table(tdef)
        props = {PROP_PREFIX + k: v for k, v in properties.items()}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "delete matched no records" on first publish
                with table.transaction() as tx:
                    if wanted:
                        tx.delete(is_in(tdef.partition_by, sorted(wanted)), snapshot_properties=props)
                    if files or not wanted:  # days only emptied need no append of nothing
                        self._add_files(tx, tdef, files, props)
                    tag_commit(tx)
                    ensure_held(self.root)  # a writer whose lease was taken commits nothing more
        except ValueError as exc:  # schema mismatch and friends: nothing was committed
            raise LakeError(f"{tdef.name}: refused to commit {len(files)} file(s): {exc}") from exc
        return self._committed(table, tdef, days=len(wanted), files=len(files))

    def replace_partition_rows(
        self, tdef: TableDef, dates: Sequence[dt.date], rows: pa.Table, properties: dict[str, str]
    ) -> int:
        """Atomically replace the `dates` partitions of a small table with `rows` (which must all fall
        on those dates); with no dates, a marker commit that only records `properties`."""
        typed = rows_on_days(tdef, dates, rows)
        if not dates:
            return self.append_rows(tdef, typed, properties)
        if not typed.num_rows:
            return self.replace_partitions(tdef, dates, [], properties)
        for left in self.staging_root(tdef).glob("rows=*") if self.remote else ():
            shutil.rmtree(left, ignore_errors=True)  # staging only (uploads went to the cache): ours to clear
        folder = self.new_data_dir(tdef, f"rows={uuid.uuid4()}")
        return self.replace_partitions(tdef, dates, write_partition_files(tdef, typed, folder), properties)

    def append_files(self, tdef: TableDef, files: Sequence[str], properties: dict[str, str]) -> int:
        """Add already-written Parquet files to `tdef` in one commit (no files: a marker commit)."""
        table = self.table(tdef)
        props = {PROP_PREFIX + k: v for k, v in properties.items()}
        try:
            with table.transaction() as tx:
                self._add_files(tx, tdef, files, props)
                tag_commit(tx)
                ensure_held(self.root)
        except ValueError as exc:
            raise LakeError(f"{tdef.name}: refused to commit {len(files)} file(s): {exc}") from exc
        return self._committed(table, tdef, files=len(files))

    def _add_files(self, tx: Transaction, tdef: TableDef, files: Sequence[str], props: Any) -> None:
        """`files` published and appended in `tx` (`add_files` without reading them back)."""
        from costlake.lake.data_files import append_data_files, data_files

        table = self.table(tdef)  # the files are uploaded (S3) once their footers are read
        publish = lambda: self.storage.publish(files, tdef.name, table.location())  # noqa: E731
        append_data_files(tx, data_files(table.metadata, files, publish), props)

    def append_rows(self, tdef: TableDef, rows: pa.Table, properties: dict[str, str]) -> int:
        table = self.table(tdef)
        props = {PROP_PREFIX + k: v for k, v in properties.items()}
        with table.transaction() as tx:
            tx.append(rows.cast(tdef.arrow_schema()), snapshot_properties=props)
            tag_commit(tx)
            ensure_held(self.root)
        return self._committed(table, tdef, rows=rows.num_rows)

    def overwrite_rows(self, tdef: TableDef, rows: pa.Table, properties: dict[str, str]) -> int:
        """Replace the whole content of a small unpartitioned table (the dimensions)."""
        table = self.table(tdef)
        props = {PROP_PREFIX + k: v for k, v in properties.items()}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with table.transaction() as tx:
                tx.overwrite(rows.cast(tdef.arrow_schema()), snapshot_properties=props)
                tag_commit(tx)
                ensure_held(self.root)
        return self._committed(table, tdef, rows=rows.num_rows)

    def _committed(self, table: Table, tdef: TableDef, **fields: int) -> int:
        """The snapshot a commit made, logged with what it holds. Its file list goes to the plan
        cache at once (but the raw and normalized events', which only the pipeline reads), so the
        next reading command finds it there without opening the catalog."""
        snapshot_id = _current_snapshot_id(table)
        log.info("committed %s snapshot %s", tdef.name, snapshot_id, extra={"table": tdef.name, **fields})
        if tdef.name not in UNCACHED_PLANS:
            self._whole_snapshot(tdef, snapshot_id)
        return snapshot_id

    def read_rows(
        self,
        tdef: TableDef,
        snapshot_id: int | None = None,
        row_filter: str | BooleanExpression | None = None,
    ) -> pa.Table:
        """A whole (small) table as Arrow, in table column order; `row_filter` keeps only its rows
        (and the data files that may hold them)."""
        if row_filter is None and not self.remote:
            return read_files(self.data_files(tdef, snapshot_id=snapshot_id), tdef)
        from pyiceberg.expressions import AlwaysTrue

        table = self.table(tdef)
        if snapshot_id is None and table.current_snapshot() is None:
            return tdef.arrow_schema().empty_table()
        scan = table.scan(snapshot_id=snapshot_id, row_filter=row_filter or AlwaysTrue())
        return scan.to_arrow().cast(tdef.arrow_schema())


def _current_snapshot_id(table: Table) -> int:
    snap = table.current_snapshot()
    assert snap is not None
    return snap.snapshot_id
