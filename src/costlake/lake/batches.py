"""The batch registry. A batch is registered by the raw table commit that adds its rows: the commit's
snapshot properties carry the batch's identity, so a batch is either wholly in the lake or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from costlake.lake.warehouse import Warehouse
from costlake.tables import RAW


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


def registered_batches(wh: Warehouse) -> list[Batch]:
    """Every ingested batch, in batch_seq order."""
    out = []
    for snap in wh.snapshots(RAW):
        p = snap.properties
        if "batch_id" not in p:
            continue
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
            )
        )
    return sorted(out, key=lambda b: b.batch_seq)
