"""Deliveries in parts: the files of one billing export ingested as one delivery.

A large FOCUS or CUR export comes as several files, and a billing period's latest delivery replaces
the period whole (pipeline/stage1_normalize.py). Ingested one by one, the second part would replace
the first. `ingest --parts` makes each file a batch of its own (its own rows, numbers, quarantine and
checksum) and gives every one the same `delivery_group`: the delivery key of the group's first batch.
Stage 1 then counts every part of the latest group. `ingest --part-of B` adds files to the delivery
batch B belongs to, in a later command (B may have been ingested alone: it then becomes the group's
first part).

An `ingest --parts` stopped half-way leaves the parts it committed: running it again skips them and
adds the rest to the same delivery, because files already ingested tell which delivery they belong to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from costlake.errors import InputError
from costlake.lake.batches import Batch


@dataclass
class Delivery:
    """The delivery the new batches of one `ingest` join: `group` None until its first part is made
    (that batch's batch_seq then names it); every part must be of `source_format` once it is known."""

    group: int | None = None
    source_format: str | None = None
    first_batch: str = ""  # batch_id of the group's first part, for messages

    def join(self, seq: int, batch_id: str, source_format: str) -> int:
        """The group a new batch (`seq`) belongs to, founding it with this batch if need be."""
        if self.group is None:
            self.group, self.first_batch = seq, batch_id
        self.source_format = self.source_format or source_format
        return self.group


def delivery_key(batch: Batch, batches: Sequence[Batch]) -> int:
    """The key stage 1 gives the delivery `batch` belongs to: its group, else the batch_seq of its
    file's first reading (`ingest --reparse` keeps a file's delivery)."""
    if batch.delivery_group is not None:
        return batch.delivery_group
    return next(b.batch_seq for b in batches if b.sha256 == batch.sha256)


def first_of(key: int, batches: Sequence[Batch]) -> Batch:
    """The batch whose batch_seq is a delivery key."""
    return next(b for b in batches if b.batch_seq == key)


def delivery_for(
    files: Sequence[tuple[Path, str, str]], batches: Sequence[Batch], part_of: str | None
) -> Delivery:
    """The delivery the `files` ((path, sha256, format) each) join as parts: that of batch `part_of`,
    or that of those already ingested (a repeated `ingest --parts`), or a new one. Refused in one line,
    before anything is written, when they cannot be parts of one delivery."""
    delivery = Delivery()
    if part_of is not None:
        found = [b for b in batches if b.batch_id == part_of]
        if not found:
            raise InputError(
                f"--part-of {part_of}: no batch has this id (ingest prints each file's batch id)"
            )
        key = delivery_key(found[0], batches)
        delivery = Delivery(key, found[0].source_format, first_of(key, batches).batch_id)
    for path, sha, _ in files:
        readings = [b for b in batches if b.sha256 == sha]
        if not readings:
            continue
        key = delivery_key(readings[-1], batches)
        if delivery.group is None:
            delivery = Delivery(key, readings[-1].source_format, first_of(key, batches).batch_id)
        elif key != delivery.group:
            raise InputError(
                f"{path}: already ingested as batch {readings[-1].batch_id}, which is not part of the "
                f"delivery of batch {delivery.first_batch}; the parts of one delivery are ingested "
                "together (--parts) or added to it (--part-of), never moved from another: nothing ingested"
            )
    for path, _, source_format in files:
        expected = delivery.source_format or files[0][2]
        if source_format != expected:
            raise InputError(
                f"{path}: reads as {source_format}, but the other parts of this delivery are {expected}: "
                "the parts of one delivery are of one format; nothing ingested"
            )
    return delivery
