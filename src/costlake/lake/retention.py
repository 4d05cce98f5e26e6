"""The mechanics of `costlake maintain`: expire snapshots, then remove the files nothing refers to.

Which snapshots a table keeps is the caller's decision (ops/maintain.py); here a table drops the
others in one transaction (their `costlake-*` tags first, so Iceberg's expiry may remove them), and
then files that no remaining snapshot, manifest or metadata version refers to, and that are older
than a safety window, are deleted: data files of expired snapshots and of crashed runs, manifests,
manifest lists, metadata versions that fell out of the metadata log, plan-cache entries of expired
snapshots, and for a remote warehouse the local cache copies of files no longer referenced. Tags and
branches that costlake did not make are left alone, and so are their snapshots.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from costlake.lake.faults import crash_point
from costlake.lake.lock import ensure_held
from costlake.lake.storage import to_local
from costlake.lake.tags import TAG_PREFIX, costlake_tags
from costlake.tables import TABLE_PROPERTIES, TableDef

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from costlake.lake.batches import Batch
    from costlake.lake.warehouse import Warehouse

VERSIONS_KEPT = "write.metadata.previous-versions-max"  # Iceberg's table property (default 100)
METADATA_VERSIONS = 10  # what maintain sets it to where no one has set it
RESTORE = "costlake.previous-versions-max"  # the user's setting while `_trim_metadata_log` holds it at 1
KEEP_MARK = ".costlake-committed"  # in a run's data folder: the run committed (see `mark_committed`)


@dataclass
class Removed:
    """What a clean-up removed (or, on a dry run, would remove)."""

    files: int = 0
    bytes: int = 0
    paths: list[str] = field(default_factory=list)

    def add(self, path: str, size: int) -> None:
        self.files += 1
        self.bytes += size
        self.paths.append(path)


@dataclass
class Expired:
    table: str
    snapshots: list[int]
    tags: list[str]
    run_ids: set[str]  # the runs whose commits these snapshots were
    remaining: set[int]  # the snapshots the table keeps


def expire(
    wh: Warehouse, tdef: TableDef, keep: set[int], *, dry_run: bool, properties: dict[str, str] | None = None
) -> Expired:
    """Drop every snapshot of `tdef` but `keep`, the current one and those other refs hold, and the
    metadata versions from before (`_trim_metadata_log`). A table without
    `write.metadata.previous-versions-max` gets 10, so that its metadata log stays short, and one
    without the manifest-merge properties gets `TABLE_PROPERTIES`."""
    from pyiceberg.table.update.snapshot import ExpireSnapshots, ManageSnapshots

    table = wh.table(tdef)
    current = table.current_snapshot()
    held = {ref.snapshot_id for name, ref in table.metadata.refs.items() if not name.startswith(TAG_PREFIX)}
    kept = keep | held | ({current.snapshot_id} if current else set())
    gone = [s for s in table.snapshots() if s.snapshot_id not in kept]
    ids = [s.snapshot_id for s in gone]
    tags = sorted(name for name, sid in costlake_tags(table).items() if sid in set(ids))
    runs = {(s.summary.additional_properties if s.summary else {}).get("costlake.run_id", "") for s in gone}
    defaults = {VERSIONS_KEPT: str(METADATA_VERSIONS), **TABLE_PROPERTIES}
    settings = {k: v for k, v in defaults.items() if k not in table.properties} | (properties or {})
    # a short metadata log and merged manifests keep few metadata files; `properties` go in this commit
    if (ids or settings) and not dry_run:
        # Marked before the snapshots that name these runs go: `run` then keeps their folders.
        mark_committed(wh, tdef, runs - {""}, dry_run=False)
        with table.transaction() as tx:
            if settings:
                tx.set_properties(settings)
            manage = ManageSnapshots(tx)
            for name in tags:
                manage.remove_tag(name)
            manage._commit_if_ref_updates_exist()
            if ids:
                ExpireSnapshots(tx).by_ids(ids).commit()
            ensure_held(wh.root)  # a writer whose lease was taken commits nothing more
    if not dry_run and (ids or RESTORE in table.properties):  # the latter: a trim a kill cut short
        _trim_metadata_log(wh, table)
    remaining = {s.snapshot_id for s in table.snapshots()} - set(ids)
    return Expired(tdef.name, ids, tags, runs - {""}, remaining)


def _trim_metadata_log(wh: Warehouse, table: Table) -> None:
    """Leave in the metadata log only versions written after an expiry: the earlier ones name
    manifest lists the expiry removed, so they cannot be read back, and each is as large as the
    whole pre-expiry history. Iceberg trims the log to the table's `previous-versions-max` at each
    commit; one commit with 1 keeps only the expiry's version, the next restores the setting. The
    first also records the setting under `RESTORE`, so that the next maintain finishes a trim that a
    kill cut between the two."""
    props = table.properties
    wanted = props.get(RESTORE) or props.get(VERSIONS_KEPT, str(METADATA_VERSIONS))
    with table.transaction() as tx:
        tx.set_properties({VERSIONS_KEPT: "1", RESTORE: wanted})
        ensure_held(wh.root)
    crash_point("maintain:trim_metadata_log")
    with table.transaction() as tx:
        tx.set_properties({VERSIONS_KEPT: wanted})
        tx.remove_properties(RESTORE)
        ensure_held(wh.root)


def referenced(table: Table, snapshot_ids: set[int] | None = None) -> set[str]:
    """Every file the table's metadata and the snapshots `snapshot_ids` (default: all it has) refer
    to, as locations: data files, manifests, manifest lists, metadata versions in the log."""
    snaps = [s for s in table.snapshots() if snapshot_ids is None or s.snapshot_id in snapshot_ids]
    files = {s.manifest_list for s in snaps if s.manifest_list}
    manifests = {m.manifest_path: m for s in snaps for m in s.manifests(table.io)}
    files |= set(manifests)
    for manifest in manifests.values():
        files |= {
            e.data_file.file_path for e in manifest.fetch_manifest_entry(table.io, discard_deleted=True)
        }
    files |= {entry.metadata_file for entry in table.metadata.metadata_log}
    files.add(table.metadata_location)
    return files


def remove_orphans(
    wh: Warehouse,
    tdef: TableDef,
    remaining: set[int],
    older_than: dt.datetime,
    *,
    dry_run: bool,
    removed: Removed,
    trimmed: bool = False,
) -> None:
    """Delete the files under a table's folder (its `data/` and `metadata/`) that neither its
    metadata nor the snapshots `remaining` refer to, when older than `older_than`. `trimmed`: the
    table expired snapshots, so a dry run counts the metadata versions the real run's trim of the
    metadata log leaves unreferenced (`_trim_metadata_log`)."""
    table = wh.table(tdef)
    known = referenced(table, remaining)
    if dry_run and trimmed:
        known -= {entry.metadata_file for entry in table.metadata.metadata_log} | {table.metadata_location}
    if wh.remote:
        _remove_s3_orphans(wh, table, known, older_than, dry_run, removed)
        return
    known = {os.path.realpath(to_local(f)) for f in known}
    limit = older_than.timestamp()
    for path, size, mtime in _walk(Path(to_local(table.location()))):
        if path.name == KEEP_MARK or os.path.realpath(path) in known or mtime >= limit:
            continue
        removed.add(str(path), size)
        if not dry_run:
            path.unlink(missing_ok=True)


def _remove_s3_orphans(
    wh: Warehouse, table: Table, known: set[str], older_than: dt.datetime, dry_run: bool, removed: Removed
) -> None:
    """The same for an S3 warehouse: the objects under the table's prefix, listed with boto3."""
    from urllib.parse import urlparse

    from costlake.lake.connect import s3_client

    where = urlparse(table.location().rstrip("/"))
    client = s3_client(wh.settings)
    for sub in ("data/", "metadata/"):
        prefix = f"{where.path.lstrip('/')}/{sub}"
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=where.netloc, Prefix=prefix):
            for obj in page.get("Contents", []):
                uri = f"{where.scheme}://{where.netloc}/{obj['Key']}"
                if uri in known or obj["LastModified"] >= older_than or obj["Key"].endswith(KEEP_MARK):
                    continue
                removed.add(uri, int(obj["Size"]))
                if not dry_run:
                    client.delete_object(Bucket=where.netloc, Key=obj["Key"])


def _walk(root: Path) -> Iterator[tuple[Path, int, float]]:
    for sub in ("data", "metadata"):
        for folder, _, names in os.walk(root / sub):
            for name in names:
                path = Path(folder) / name
                try:
                    info = path.lstat()
                except OSError:
                    continue
                yield path, info.st_size, info.st_mtime


def mark_committed(wh: Warehouse, tdef: TableDef, run_ids: set[str], *, dry_run: bool) -> None:
    """Mark the data folders of runs whose snapshots are expired as committed: `run` removes a run's
    folder when no snapshot names the run (a crash before its commit), which after expiry would
    also be true of a run whose files later snapshots still use."""
    if dry_run:
        return
    root = wh.staging_root(tdef)
    for run_id in run_ids:
        folder = root / f"run_id={run_id}"
        if folder.is_dir():
            (folder / KEEP_MARK).touch()


def trim_plans(wh: Warehouse, tdef: TableDef, *, dry_run: bool, removed: Removed) -> None:
    """Plan-cache entries of snapshots other than the table's current one. Each entry lists every
    file of its snapshot, so keeping those of all retained snapshots would grow with history times
    retention; an older snapshot read again (`--as-of`) is planned by PyIceberg and cached anew."""
    current = wh.table(tdef).current_snapshot()
    alive = {str(current.snapshot_id)} if current else set()
    folder = wh.plans.root / tdef.name
    if not folder.is_dir():
        return
    for entry in folder.glob("*.json"):
        if entry.stem.rpartition("-")[2] not in alive:
            removed.add(str(entry), entry.stat().st_size)
            if not dry_run:
                entry.unlink(missing_ok=True)


def trim_cache(wh: Warehouse, files: set[str], *, dry_run: bool, removed: Removed) -> None:
    """A remote warehouse's cached copies of files that no table refers to any more."""
    if not wh.remote:
        return
    wanted = {wh.storage.cache_path(uri) for uri in files}
    for cached in (wh.root / "cache").glob("*/*"):
        if cached.is_file() and cached not in wanted:
            removed.add(str(cached), cached.stat().st_size)
            if not dry_run:
                cached.unlink(missing_ok=True)


TAGGED_PROPERTY = "costlake.bookkeeping-tags"  # on publish_log: the records' snapshots are tagged


def settle_bookkeeping(wh: Warehouse) -> list[Batch]:
    """What every writer does first, under its lock: register the batches a stopped ingestion (or a
    warehouse from before the registry table) left in raw snapshots only (lake/batches.py), and in a
    warehouse written before commits were tagged, tag the snapshots of its run records once.
    Returns every ingested batch, so that the writer need not read the registry again."""
    from costlake.lake.batches import register_pending

    batches = register_pending(wh)
    _tag_records(wh)
    return batches


def _tag_records(wh: Warehouse) -> int:
    """Tag every run manifest's snapshot and every snapshot a manifest names, once (a table
    property on publish_log says it is done)."""
    from pyiceberg.table.update.snapshot import ManageSnapshots

    from costlake.lake.manifest import manifests
    from costlake.lake.tags import tag_name
    from costlake.tables import PUBLISH_LOG, TABLES

    # Loaded past the warehouse's table cache: a command that only checks this keeps reading the
    # publish log fresh afterwards (another process may commit to it meanwhile).
    if wh.catalog.load_table(PUBLISH_LOG.identifier).properties.get(TAGGED_PROPERTY):
        return 0
    wanted: dict[str, set[int]] = {name: set() for name in TABLES}
    for m in manifests(wh):
        wanted[PUBLISH_LOG.name].add(m.log_snapshot_id)
        for name, snapshot in m.snapshots.items():
            if snapshot is not None and name in wanted:
                wanted[name].add(snapshot)
    made = 0
    for name, ids in wanted.items():
        table = wh.table(TABLES[name])
        refs, meta = table.metadata.refs, table.metadata
        missing = sorted(i for i in ids if tag_name(i) not in refs and meta.snapshot_by_id(i) is not None)
        if missing:
            with table.transaction() as tx:
                manage = ManageSnapshots(tx)
                for snapshot_id in missing:
                    manage.create_tag(snapshot_id, tag_name(snapshot_id))
                manage._commit_if_ref_updates_exist()
                ensure_held(wh.root)
            made += len(missing)
    wh.refresh()
    with wh.table(PUBLISH_LOG).transaction() as tx:
        tx.set_properties({TAGGED_PROPERTY: "1"})
        ensure_held(wh.root)
    wh.refresh()
    return made


def compact(wh: Warehouse, tdef: TableDef, *, dry_run: bool) -> int:
    """Rewrite an unpartitioned table whose current snapshot has more than one data file (the
    publish log gains one per run) as one file, in one commit with the same guarantees as any
    other: same rows, a new tagged snapshot, the older snapshots untouched (retained runs still
    read them). A dimension keeps its last commit's properties (the batches it has folded in);
    the publish log's compaction carries none, so it is never taken for a run's manifest.
    Returns the files merged (0: nothing to do)."""
    if tdef.partition_by is not None:
        return 0
    files = wh.data_files(tdef, fetch=False)  # counted, not downloaded
    if len(files) <= 1:
        return 0
    if not dry_run:
        from costlake.tables import PUBLISH_LOG

        props = {} if tdef.name == PUBLISH_LOG.name else wh.last_properties(tdef)
        wh.overwrite_rows(tdef, wh.read_rows(tdef), props)
    return len(files)
