"""Iceberg tags that keep the lake's own records through snapshot expiry.

A raw batch enters the lake with the commit that adds its rows (so a batch is wholly in the lake
or not at all) and is then recorded in the `ingest_batches` table (lake/batches.py); a run's
manifest is carried by the commit of its publish-log rows. Every commit costlake makes tags the
snapshot it ends on, `costlake-<id>`, in the same transaction. Snapshot expiry by any Iceberg
engine (PyIceberg's `expire_snapshots`, Spark's `expire_snapshots` procedure, Athena's `VACUUM`)
keeps tagged snapshots, so the run manifests, every snapshot a run published and the raw commits
of batches not yet in the registry survive maintenance that costlake does not run. `costlake
maintain` (ops/maintain.py) is the one place that removes these tags: for the snapshots no
retained run needs, never for a raw batch's until its registry row is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyiceberg.table import Table, Transaction

TAG_PREFIX = "costlake-"


def tag_name(snapshot_id: int) -> str:
    return f"{TAG_PREFIX}{snapshot_id}"


def tag_commit(tx: Transaction) -> None:
    """Tag the snapshot the transaction's staged changes end on (call it last in the transaction)."""
    from pyiceberg.table.update.snapshot import ManageSnapshots

    snapshot = tx.table_metadata.current_snapshot()
    if snapshot is None:
        return
    name = tag_name(snapshot.snapshot_id)
    if name in tx.table_metadata.refs:
        return
    manage = ManageSnapshots(tx)
    manage.create_tag(snapshot.snapshot_id, name)
    manage._commit_if_ref_updates_exist()  # stage into this transaction, not a commit of its own


def costlake_tags(table: Table) -> dict[str, int]:
    """The tags costlake made on `table`: name -> snapshot id."""
    return {
        name: ref.snapshot_id
        for name, ref in table.metadata.refs.items()
        if name.startswith(TAG_PREFIX) and ref.snapshot_ref_type == "tag"
    }
