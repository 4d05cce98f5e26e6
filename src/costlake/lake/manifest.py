"""Run manifests: the snapshot of every table right after a run finished.

The last commit of a run (its publish_log append) carries, in its snapshot properties, the run id,
the raw batch watermark and the snapshot id of every table. Readers use the latest manifest for the
derived tables, so they see one finished run or the one before, never half of a run; `--as-of RUN`
reads every table at that run's manifest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from costlake.errors import InputError
from costlake.lake.warehouse import SnapshotInfo, Warehouse
from costlake.tables import PUBLISH_LOG, TableDef


@dataclass(frozen=True)
class Manifest:
    run_id: str
    batch_seq: int
    snapshots: dict[str, int | None]
    log_snapshot_id: int
    covers: frozenset[str]  # this run and the interrupted runs whose commits it finished
    lag_hours: int | None  # the completeness lag the run published with
    seen_batch_seq: int | None = None  # the batches after it are new to the run (None: not recorded)


def manifests(wh: Warehouse) -> list[Manifest]:
    """Every finished run, oldest first."""
    return [_manifest(snap) for snap in wh.snapshots(PUBLISH_LOG) if "manifest" in snap.properties]


def _manifest(snap: SnapshotInfo) -> Manifest:
    props = snap.properties
    snapshots = json.loads(props["manifest"])
    covers = frozenset({props["run_id"], *props.get("covers", "").split(",")} - {""})
    lag = int(props["completeness_lag_hours"]) if "completeness_lag_hours" in props else None
    seen = int(props["seen_batch_seq"]) if "seen_batch_seq" in props else None
    return Manifest(props["run_id"], int(props["batch_seq"]), snapshots, snap.snapshot_id, covers, lag, seen)


def manifest_for(wh: Warehouse, run_id: str) -> Manifest:
    for found in manifests(wh):
        if found.run_id == run_id:
            return found
    raise unknown_run(wh, run_id)


def unknown_run(wh: Warehouse, run_id: str) -> InputError:
    """The one-line error for a run id without a manifest: past the retention, or unknown."""
    if run_id in past_retention(wh):
        kept = retention_note(wh) or "a retention policy"
        return InputError(f"run {run_id} is past the lake's retention ({kept}): its snapshots are expired")
    known = [m.run_id for m in manifests(wh)][-5:]
    hint = f"; recent runs: {', '.join(known)}" if known else "; no run has finished yet"
    shown = run_id if len(run_id) <= 80 else f"{run_id[:80]}… ({len(run_id):,} characters)"
    return InputError(f"unknown run id {shown!r}{hint}")


RETENTION_PROPERTY = "costlake.retention"  # on publish_log: the policy the last maintain applied


def retention_note(wh: Warehouse) -> str | None:
    """The retention the last `costlake maintain` applied, as a phrase; None if it never ran. Table
    properties are not snapshots: expiry leaves them."""
    return wh.table(PUBLISH_LOG).properties.get(RETENTION_PROPERTY)


def past_retention(wh: Warehouse) -> set[str]:
    """Runs the publish log records whose manifests were expired (by `costlake maintain`)."""
    logged = set(wh.read_rows(PUBLISH_LOG).column("run_id").to_pylist())
    return logged - {m.run_id for m in manifests(wh)}


def since_manifest(wh: Warehouse, tdef: TableDef, manifest: Manifest | None) -> list[SnapshotInfo]:
    """The table's snapshots committed after `manifest` named its snapshot (for the publish log: the
    manifest's own commit); every snapshot when there is no manifest or it names none of them."""
    snaps = wh.snapshots(tdef)
    mark = None if manifest is None else manifest.snapshots.get(tdef.name, manifest.log_snapshot_id)
    ids = [s.snapshot_id for s in snaps]
    return snaps[ids.index(mark) + 1 :] if mark in ids else snaps


def latest_manifest(wh: Warehouse) -> Manifest | None:
    """The latest finished run's manifest: the newest publish-log commit that carries one, read
    without parsing the others."""
    for snap in reversed(wh.snapshots(PUBLISH_LOG)):
        if "manifest" in snap.properties:
            return _manifest(snap)
    return None
