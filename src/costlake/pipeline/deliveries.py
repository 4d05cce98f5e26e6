"""Deliveries in parts: the files of one billing export ingested as one delivery.

A large FOCUS or CUR export comes as several files, and a billing period's latest delivery replaces
the period whole (pipeline/stage1_normalize.py). Ingested one by one, the second part would replace
the first. `ingest --parts` makes each file a batch of its own (its own rows, numbers, quarantine and
checksum) and gives every one the same `delivery_group`: the delivery key of the group's first batch.
Stage 1 then counts every part of the latest group.

- `--parts F...` is always a new delivery of exactly these files, even where a file's bytes were
  ingested before (an export may repeat a part unchanged, and a header-only part is the same file in
  every export): such a file is read again as a part of the new delivery. Only when the same files
  already form one whole delivery that no later one has replaced is there nothing to do (the files
  of a replaced delivery come again as a new one: the way back to an earlier export). Every part is
  read and checked before the first is committed, so a part that cannot be read leaves the lake as
  it was; a command stopped during its commits leaves a delivery short of its last parts, which no
  run counts (each part records how many its command declared: `lake.batches.incomplete_deliveries`)
  and which the same command, run again, replaces with a whole one.
- `--part-of B F...` adds files to the delivery batch B belongs to (B may have been ingested alone:
  it is then the group's first part). A file already in that delivery is skipped. The command warns
  when a later delivery has replaced B's for a period the new parts deliver: they will not count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from costlake.duck import connect, sql_string, table_scan
from costlake.errors import InputError
from costlake.lake.batches import Batch, incomplete_deliveries
from costlake.lake.warehouse import Warehouse
from costlake.pipeline.stage1_normalize import DELIVERY_KEY
from costlake.tables import RAW

PERIOD_FORMATS = ("focus", "cur")  # formats whose deliveries restate whole billing periods


@dataclass
class Delivery:
    """The delivery the files of one `ingest` join: `group` None until its first new part is staged
    (that batch's batch_seq then names it). `members`: the checksums of its batches, by batch."""

    group: int | None = None
    first_batch: str = ""  # batch_id of the group's first part, for messages
    existing: bool = False  # the group was there before this command (`--part-of`, a whole delivery)
    # sha256 of each file in the delivery -> (batch_id, source_format) of its latest batch there
    members: dict[str, tuple[str, str]] = field(default_factory=dict)

    def join(self, seq: int, batch_id: str, sha: str, source_format: str) -> int:
        """The group a new batch (`seq`, the file `sha`) belongs to, founding it if need be."""
        if self.group is None:
            self.group, self.first_batch = seq, batch_id
        self.members[sha] = (batch_id, source_format)
        return self.group


def delivery_keys(batches: Sequence[Batch]) -> dict[str, int]:
    """The key stage 1 gives the delivery each batch belongs to, by batch_id: its group, else the
    batch_seq of the reading its re-reads go back to (`ingest --reparse` keeps a file's delivery).
    One pass in batch_seq order: a re-read replaces an earlier batch, whose key is known by then."""
    keys: dict[str, int] = {}
    for b in sorted(batches, key=lambda b: b.batch_seq):
        keys[b.batch_id] = (
            b.delivery_group if b.delivery_group is not None else keys.get(b.replaces, b.batch_seq)
        )
    return keys


def first_of(key: int, batches: Sequence[Batch]) -> Batch:
    """The batch whose batch_seq is a delivery key."""
    return next(b for b in batches if b.batch_seq == key)


def delivery_for(
    files: Sequence[tuple[Path, str, str]], batches: Sequence[Batch], part_of: str | None
) -> Delivery:
    """The delivery the `files` ((path, sha256, format) each) are parts of: that of batch `part_of`,
    else a new one, unless they already are one whole delivery. Refused in one line, before anything
    is written, when they cannot be parts of one delivery."""
    target = _batch(part_of, batches) if part_of is not None else None
    expected = target.source_format if target is not None else files[0][2]
    for path, _, source_format in files:
        if source_format not in PERIOD_FORMATS:
            raise InputError(
                f"{path}: reads as {source_format}; parts are for FOCUS and CUR exports, whose deliveries "
                "restate whole billing periods (ingest files of events without --parts / --part-of / "
                "--manifest)"
            )
        if source_format != expected:
            raise InputError(
                f"{path}: reads as {source_format}, but the other parts of this delivery are {expected}: "
                "the parts of one delivery are of one format; nothing ingested"
            )
    keys = delivery_keys(batches)
    groups: dict[int, list[Batch]] = {}
    for b in batches:
        groups.setdefault(keys[b.batch_id], []).append(b)
    if target is not None:
        key = keys[target.batch_id]
        return Delivery(key, first_of(key, batches).batch_id, True, _members(groups[key]))
    shas = {sha for _, sha, _ in files}
    for key, members in sorted(groups.items(), reverse=True):  # the latest such delivery
        if {b.sha256 for b in members} == shas:
            return Delivery(key, first_of(key, batches).batch_id, True, _members(members))
    return Delivery()


def _members(batches: Sequence[Batch]) -> dict[str, tuple[str, str]]:
    return {b.sha256: (b.batch_id, b.source_format) for b in batches}


def _batch(batch_id: str, batches: Sequence[Batch]) -> Batch:
    found = [b for b in batches if b.batch_id == batch_id]
    if not found:
        raise InputError(f"--part-of {batch_id}: no batch has this id (ingest prints each file's batch id)")
    return found[0]


def later_deliveries(
    wh: Warehouse,
    delivery: Delivery,
    source_format: str,
    periods: set[tuple[str, str]],
    short: Sequence[int] = (),
) -> dict[tuple[str, str], int]:
    """For each of `periods` ((billing account, first day)) of `source_format` that a delivery later
    than `delivery` delivers, the first such delivery's key: parts added to an older delivery never
    count there. A delivery short of its parts (`short`: their batch_seq) replaces nothing. One scan
    of raw for every part of the command."""
    files = wh.data_files(RAW)
    if not periods or not files or delivery.group is None:
        return {}
    wanted = " OR ".join(
        f"(billing_account_id = {sql_string(a)} AND CAST(billing_period_start AS VARCHAR) = {sql_string(p)})"
        for a, p in sorted(periods)
    )
    sql = f"""SELECT billing_account_id, CAST(billing_period_start AS VARCHAR), min({DELIVERY_KEY})
              FROM (SELECT * FROM ({table_scan(files, RAW.arrow_schema())}) AS a{_counted(short)}) AS r
              WHERE source_format = {sql_string(source_format)} AND {DELIVERY_KEY} > {delivery.group}
                AND ({wanted})
              GROUP BY ALL"""
    con = connect(wh.settings)
    try:
        rows = con.execute(sql).fetchall()
    finally:
        con.close()
    return {(str(a), str(p)): int(key) for a, p, key in rows}


def superseded(wh: Warehouse, group: int, short: Sequence[int] = ()) -> bool:
    """Whether a later delivery has replaced delivery `group` for a billing period it delivers (of
    the same format and billing account): then its files, ingested again as parts, are a new
    delivery, not nothing to do. A delivery short of its parts (`short`: their batch_seq) replaces
    nothing. One scan of raw."""
    files = wh.data_files(RAW)
    if not files:
        return False
    scan = f"SELECT * FROM ({table_scan(files, RAW.arrow_schema())}) AS r{_counted(short)}"
    sql = f"""WITH raw AS ({scan}),
              mine AS (SELECT DISTINCT source_format, billing_account_id, billing_period_start
                       FROM raw WHERE {DELIVERY_KEY} = {int(group)})
              SELECT count(*) FROM raw
              JOIN mine USING (source_format, billing_account_id, billing_period_start)
              WHERE {DELIVERY_KEY} > {int(group)}"""
    con = connect(wh.settings)
    try:
        return bool(con.execute(sql).fetchall()[0][0])
    finally:
        con.close()


def _counted(short: Sequence[int]) -> str:
    """A WHERE clause leaving out the batches of deliveries short of their parts ("" for none)."""
    return f" WHERE batch_seq NOT IN ({', '.join(str(int(s)) for s in short)})" if short else ""


def in_short_delivery(
    group: int | None, batch_id: str, batches: Sequence[Batch], short: Sequence[int]
) -> bool:
    """Whether the batch `batch_id` (in delivery `group`, when known) is in a delivery short of the
    parts its command declared (`short`: their batch_seq, `incomplete_deliveries`): its rows never
    count."""
    if group is None:
        group = next((b.delivery_group for b in batches if b.batch_id == batch_id), None)
    return group is not None and any(b.delivery_group == group and b.batch_seq in short for b in batches)


def comes_again(wh: Warehouse, delivery: Delivery, batches: Sequence[Batch], short: Sequence[int]) -> bool:
    """Whether files that already form `delivery` are a new delivery all the same: it is short of
    the parts its command declared (`short`, as for `in_short_delivery`: it never counts), or a
    later delivery has replaced it."""
    group = delivery.group
    if group is None or not delivery.existing:
        return False
    return in_short_delivery(group, "", batches, short) or superseded(wh, group, short)


def file_readings(sha: str, batches: list[Batch], reparse: bool) -> list[Batch]:
    """The batches of the file `sha`; to read it again, those of its latest delivery only (a file
    repeated in two deliveries is re-read where it counts: the latest one not short of its parts,
    unless all are)."""
    readings = [b for b in batches if b.sha256 == sha]
    if reparse and readings:
        keys = delivery_keys(batches)
        short = set(incomplete_deliveries(batches))
        counted = [b for b in readings if b.batch_seq not in short] or readings
        latest = max(keys[b.batch_id] for b in counted)
        readings = [b for b in readings if keys[b.batch_id] == latest]
    return readings
