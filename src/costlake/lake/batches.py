"""The batch registry: the `ingest_batches` table, one row per ingested batch.

A batch enters the lake with the raw table commit that adds its rows. That commit's snapshot
properties carry the batch's identity, so a batch is wholly in the lake or not at all; its row in
`ingest_batches` is appended right after, in a second commit. A process stopped between the two
leaves a batch whose raw snapshot is newer than the registry's last row: readers take it from the
snapshot (`registered_batches`) and the next writer appends its row (`register_pending`), before
`maintain` may expire any raw snapshot. From then on the registry is data: snapshot expiry by any
tool (Spark's, Athena's `VACUUM`, PyIceberg's) leaves it whole, and reading it costs one small
table, whatever the history. A warehouse from before the table registers every batch its raw
snapshots name, on its first write.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from costlake.errors import LakeError
from costlake.lake.warehouse import Warehouse
from costlake.tables import INGEST_BATCHES, RAW


@dataclass(frozen=True)
class Batch:
    batch_id: str
    batch_seq: int
    sha256: str
    source_file: str
    source_format: str
    loaded_at: str
    rows_accepted: int
    rows_quarantined: int
    snapshot_id: int
    # The batch_id of the reading this batch replaces (`ingest --reparse`); "" for a first reading.
    replaces: str = ""
    # The delivery in parts this batch is a part of (`ingest --parts`, RAW's `delivery_group`); None: none.
    delivery_group: int | None = None
    # How many parts the command that founded the delivery declared (on each of them); None: none.
    # A delivery short of them (a command stopped between its commits) does not count
    # (`incomplete_deliveries`).
    delivery_parts: int | None = None


def registered_batches(wh: Warehouse) -> list[Batch]:
    """Every ingested batch, in batch_seq order: the registry's rows, then any batch whose raw
    commit is newer than the last row."""
    recorded = _recorded(wh)
    return _whole(recorded + _unrecorded(wh, recorded))


def register(wh: Warehouse, batches: list[Batch]) -> None:
    """Append the registry rows of batches whose raw commits are done (under the writer lock)."""
    if batches:
        rows = pa.Table.from_pylist([b.__dict__ for b in batches], schema=INGEST_BATCHES.arrow_schema())
        wh.append_rows(INGEST_BATCHES, rows, {"batch_seq": str(max(b.batch_seq for b in batches))})


def unregistered(wh: Warehouse) -> list[Batch]:
    """The batches a stopped ingestion (or a warehouse from before the registry table) left in raw
    snapshots only."""
    return _unrecorded(wh, _recorded(wh))


def register_pending(wh: Warehouse) -> list[Batch]:
    """Register the `unregistered` batches. Writers call it first, under their lock; it returns
    every batch (as `registered_batches` would), which stays true while they hold the lock but for
    the batches they add themselves."""
    recorded = _recorded(wh)
    pending = _unrecorded(wh, recorded)
    batches = _whole(recorded + pending)
    register(wh, pending)
    return batches


def _whole(batches: list[Batch]) -> list[Batch]:
    """`batches`, which ingest numbers 1, 2, 3, … with no gap: a missing number is a registry row
    removed by someone else, whose batch every writer would then take for a crash's debris and
    whose file for a new one. Refused in one line, before anything is changed."""
    last = batches[-1].batch_seq if batches else 0
    missing = sorted(set(range(1, last + 1)) - {b.batch_seq for b in batches})
    if missing:
        shown = ", ".join(map(str, missing[:5])) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise LakeError(
            f"{INGEST_BATCHES.name} has no row for batch_seq {shown} of 1..{last}: rows were "
            "removed outside costlake; restore them (the table's earlier snapshots hold them) before "
            "any command writes: nothing was changed"
        )
    return batches


def _recorded(wh: Warehouse) -> list[Batch]:
    """The registry's rows in batch_seq order, one per batch (a row written twice, by a writer
    stopped after its append and before it knew, is the same batch; a row with no batch_seq is
    not one of ours)."""
    rows: dict[int, Batch] = {}
    for row in wh.read_rows(INGEST_BATCHES).to_pylist():
        if row["batch_seq"] is not None:
            rows.setdefault(row["batch_seq"], Batch(**row))
    return sorted(rows.values(), key=lambda b: b.batch_seq)


def _unrecorded(wh: Warehouse, recorded: list[Batch]) -> list[Batch]:
    """The batches of raw commits newer than the `recorded` ones: the newest snapshots, read back
    to the first the registry has."""
    after = recorded[-1].batch_seq if recorded else 0
    out = []
    for snap in reversed(wh.snapshots(RAW)):
        p = snap.properties
        if "batch_id" not in p:
            continue  # a commit of another tool
        if int(p["batch_seq"]) <= after:
            break
        out.append(
            Batch(
                batch_id=p["batch_id"],
                batch_seq=int(p["batch_seq"]),
                sha256=p["sha256"],
                source_file=p["source_file"],
                source_format=p["source_format"],
                loaded_at=p["loaded_at"],
                rows_accepted=int(p["rows_accepted"]),
                rows_quarantined=int(p["rows_quarantined"]),
                snapshot_id=snap.snapshot_id,
                replaces=p.get("replaces", ""),
                delivery_group=int(p["delivery_group"]) if p.get("delivery_group") else None,
                delivery_parts=int(p["delivery_parts"]) if p.get("delivery_parts") else None,
            )
        )
    return sorted(out, key=lambda b: b.batch_seq)


def incomplete_deliveries(batches: list[Batch], watermark: int | None = None) -> list[int]:
    """The batch_seq of every part of a delivery that holds fewer of its founding command's parts (up
    to `watermark`) than that command declared: a command stopped between its commits. Such a
    delivery never counts (parts added later with `--part-of`, or read again, are not the declared
    ones), so the delivery before it still does; the same command run again makes a whole one."""
    seen = [b for b in batches if watermark is None or b.batch_seq <= watermark]
    groups: dict[int, list[Batch]] = {}
    for b in seen:
        if b.delivery_group is not None:
            groups.setdefault(b.delivery_group, []).append(b)
    out: list[int] = []
    for members in groups.values():
        declared = max((b.delivery_parts or 0 for b in members), default=0)
        landed = {b.sha256 for b in members if b.delivery_parts is not None}
        if len(landed) < declared:
            out += [b.batch_seq for b in members]
    return sorted(out)
