"""Ingestion: one billing file becomes one immutable batch in `raw_billing_events`; the files of
one delivery in parts become a batch each, in one delivery group (pipeline/deliveries.py).

`ingest --reparse` reads a file already ingested again, with the current parser, as a new batch: a new
*reading* of the same delivery. It is parsed as of the delivery's first load (the same default
ingestion_ts, load_date and date window), its rows carry the first reading's batch_seq as
`delivery_seq`, and it replaces the latest earlier reading: stage 1 counts the latest reading of each
delivery only, at the delivery's place in the total order (pipeline/stage1_normalize.py). Raw stays
append-only: the earlier reading's rows remain, no longer counted.

Rejected rows are committed to `quarantine` first, then the accepted rows to the raw table in a commit
that also registers the batch. A crash between the two leaves quarantine rows of an unregistered
batch; the next ingestion removes them before it starts, so they are never seen as published.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import shutil
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from costlake.duck import connect, scratch_folder
from costlake.errors import InputError
from costlake.files import file_sha256
from costlake.lake.batches import Batch, incomplete_deliveries, register
from costlake.lake.faults import crash_point
from costlake.lake.filters import equal_to
from costlake.lake.retention import settle_bookkeeping
from costlake.lake.warehouse import Warehouse
from costlake.logs import current, phase, watching
from costlake.pipeline.deliveries import (
    Delivery,
    comes_again,
    delivery_for,
    file_readings,
    first_of,
    in_short_delivery,
    later_deliveries,
)
from costlake.pipeline.parsed import IngestResult, check_parsed, copy_rows
from costlake.sources.base import BatchContext, RowLimits
from costlake.sources.registry import check_format, source_for
from costlake.tables import QUARANTINE, RAW

log = logging.getLogger(__name__)


def ingest_files(
    wh: Warehouse,
    paths: list[Path],
    fmt: str = "auto",
    *,
    reparse: bool = False,
    parts: bool = False,
    part_of: str | None = None,
    on_result: Callable[[IngestResult], None] | None = None,
    sources: Mapping[Path, str] | None = None,
    on_commit: Callable[[IngestResult], None] | None = None,
) -> list[IngestResult]:
    """Ingest each file in order as its own batch. Files already ingested are skipped; with `reparse`,
    each must have been ingested, and is read again as a batch that replaces its latest reading.
    With `parts`, the files are the parts of one new delivery; with `part_of` (a batch_id), parts
    added to the delivery of that batch (pipeline/deliveries.py). Parts are all read and checked
    before the first is committed.

    Each file is committed on its own: `on_result` hears of each as it is done, so a caller can say
    which files landed before a later one is refused; `on_commit` hears of each as soon as its raw
    commit (the batch itself) has landed, before the registry row. `sources` names where a file came
    from when it is a local copy (an object of an S3 export): that name is the batch's `source_file`."""
    _check_given(paths, reparse=reparse, delivery=parts or part_of is not None)
    check_format(fmt)
    wh.ensure_tables()
    with wh.writer("ingest --reparse" if reparse else "ingest"):
        wh.refresh()
        batches = settle_bookkeeping(wh)  # every batch registered, old records tagged
        _drop_orphan_quarantine(wh, batches)
        _remove_unregistered_raw_files(wh, batches)
        _remove_uncommitted_quarantine_files(wh, batches)
        short = incomplete_deliveries(batches)  # deliveries short of their parts, before this command
        shas = [file_sha256(path) for path in paths]
        delivery = None
        if parts or part_of is not None:
            files = [(p, sha, source_for(p, fmt).format) for p, sha in zip(paths, shas, strict=True)]
            delivery = delivery_for(files, batches, part_of)
            if part_of is None and comes_again(wh, delivery, batches, short):
                delivery = Delivery()  # the files come again, as a new delivery
        results: list[IngestResult] = []
        named = [
            (p, sha, (sources or {}).get(p) or str(p.resolve())) for p, sha in zip(paths, shas, strict=True)
        ]
        for result in _ingested(wh, named, fmt, batches, reparse, delivery, on_commit, short):
            # (the parts of a new delivery are short until its last: only an earlier delivery can be)
            result.short_delivery = (delivery is None or delivery.existing) and in_short_delivery(
                result.delivery_group, result.batch_id, batches, short
            )
            result.restates = [r.path for r in results if _restated(r, result)]
            results.append(result)
            if on_result is not None:
                on_result(result)
            crash_point("ingest:committed")  # a file committed and registered, the next one not yet
        return results


def _check_given(paths: list[Path], *, reparse: bool, delivery: bool) -> None:
    """Refuse, before anything is read, what cannot be ingested as asked."""
    for path in paths:
        if path.is_dir():
            raise InputError(f"{path}: is a directory, not a file")
        if not path.is_file():  # a FIFO or a device is no billing file either
            raise InputError(f"{path}: no such file" if not path.exists() else f"{path}: not a regular file")
    if reparse and delivery:
        raise InputError(
            "--reparse keeps each file in the delivery it was ingested in: drop --parts / --part-of"
        )


def _ingested(
    wh: Warehouse,
    files: list[tuple[Path, str, str]],
    fmt: str,
    batches: list[Batch],
    reparse: bool,
    delivery: Delivery | None,
    on_commit: Callable[[IngestResult], None] | None = None,
    short: Sequence[int] = (),
) -> Iterator[IngestResult]:
    """Each file's result as it is committed: one file after the other, or, for the parts of a
    delivery, every part staged (read, checked and written) before the first is committed, so that
    a part that cannot be read leaves the delivery as it was."""
    staged: list[_Staged | IngestResult] = []
    try:
        for path, sha, source_file in files:
            seq = (
                max((b.batch_seq for b in batches), default=0)
                + 1
                + sum(isinstance(s, _Staged) for s in staged)
            )
            one = _stage(wh, (path, sha, source_file), fmt, batches, seq, reparse, delivery)
            if delivery is None:
                yield one if isinstance(one, IngestResult) else _commit(wh, one, batches, on_commit)
            else:
                staged.append(one)
    except BaseException:  # a part that cannot be read: the parts staged before it are never committed
        for one in staged:
            if isinstance(one, _Staged):
                for written in (*one.raw_files, *one.quarantine_files):
                    shutil.rmtree(Path(written).parent, ignore_errors=True)
        raise
    if delivery is not None and delivery.existing:
        _superseded(wh, delivery, [s.result for s in staged if isinstance(s, _Staged)], batches, short)
    elif delivery is not None:  # a new delivery: it counts once all the parts it declares are in
        parts = [s for s in staged if isinstance(s, _Staged)]
        for one in parts:
            one.batch = dataclasses.replace(one.batch, delivery_parts=len(parts))
    for one in staged:
        yield one if isinstance(one, IngestResult) else _commit(wh, one, batches, on_commit)


def _superseded(
    wh: Warehouse, delivery: Delivery, results: list[IngestResult], batches: list[Batch], short: Sequence[int]
) -> None:
    """Marks the new parts of an earlier delivery with the later one that replaced it for a period they
    deliver (`IngestResult.superseded_by`): their rows of it will not count. A delivery short of its
    parts (`short`) replaces nothing."""
    if not results:
        return
    periods = set().union(*(r.periods for r in results))
    later = later_deliveries(wh, delivery, results[0].source_format, periods, short)  # parts share a format
    for result in results:
        keys = [later[p] for p in result.periods if p in later]
        result.superseded_by = first_of(min(keys), batches).batch_id if keys else ""


@dataclass
class _Staged:
    """A file read and checked, its raw and quarantine files written, nothing committed yet."""

    result: IngestResult
    batch: Batch
    raw_files: list[str]
    quarantine_files: list[str]


def _stage(
    wh: Warehouse,
    file: tuple[Path, str, str],
    fmt: str,
    batches: list[Batch],
    seq: int,
    reparse: bool = False,
    delivery: Delivery | None = None,
) -> _Staged | IngestResult:
    """One file (its path, checksum and source name) read as batch `seq`, a part of `delivery` if
    given; or, when there is nothing to ingest (a file already ingested, already a part of
    `delivery`), the skipped result."""
    path, sha, source_file = file
    readings = file_readings(sha, batches, reparse)
    skipped = _skipped(path, sha, readings, reparse, delivery)
    if skipped is not None:
        return skipped
    source = source_for(path, fmt)
    batch_id = f"b{seq:06d}-{sha[:12]}"
    loaded_at, reading, replaces = _reading(path, source.format, readings, reparse)
    group = readings[-1].delivery_group if reparse else None
    if delivery is not None:
        group = delivery.join(seq, batch_id, sha, source.format)
    ctx = BatchContext(
        batch_id, seq, source_file, loaded_at, wh.settings.currency, _limits(wh), reading, group
    )
    first = delivery.first_batch if delivery is not None else _first_part(group, batches)
    result = IngestResult(
        path, batch_id, source.format, replaces=replaces, delivery_group=group, first_part=first
    )
    with (
        phase(log, "ingest file", file=str(path), format=source.format, batch_id=batch_id) as done,
        scratch_folder("costlake-ingest-") as tmp,
    ):
        con = connect(wh.settings, tmp, ordered=True)
        try:
            size = path.stat().st_size
            current().start(f"reading {path.name}", total=size, unit="bytes")
            with watching(con.query_progress, size):
                source.parse(con, path, ctx)
            current().start(f"storing {path.name} as batch {batch_id}")
            check_parsed(con, wh, path, source.format, result)
            done |= {"accepted": result.accepted, "quarantined": result.quarantined}
            folder = f"batch_id={batch_id}"
            rejected, accepted = (
                [copy_rows(con, name, wh.new_data_dir(tdef, folder), ordered=tdef is QUARANTINE)]
                if count
                else []
                for name, tdef, count in (
                    ("rejected", QUARANTINE, result.quarantined),
                    ("accepted", RAW, result.accepted),
                )
            )
            crash_point("ingest:staged")  # the file's rows written, its working folder still there
        finally:
            con.close()
    batch = Batch(batch_id, seq, sha, ctx.source_file, source.format, loaded_at.isoformat(),
                  result.accepted, result.quarantined, 0, replaces, group)  # fmt: skip
    return _Staged(result, batch, accepted, rejected)


def _skipped(
    path: Path, sha: str, readings: list[Batch], reparse: bool, delivery: Delivery | None
) -> IngestResult | None:
    """The result of a file with nothing to ingest: a part `delivery` already has, or, outside a
    delivery in parts, a file already ingested (unless it is to be read again)."""
    if delivery is not None and sha in delivery.members:
        batch_id, source_format = delivery.members[sha]
        return IngestResult(
            path, batch_id, source_format, skipped=True, delivery_group=delivery.group,
            first_part=delivery.first_batch,
        )  # fmt: skip
    if delivery is None and readings and not reparse:
        return IngestResult(path, readings[-1].batch_id, readings[-1].source_format, skipped=True)
    return None


def _commit(
    wh: Warehouse,
    staged: _Staged,
    batches: list[Batch],
    on_commit: Callable[[IngestResult], None] | None = None,
) -> IngestResult:
    """Quarantine first, then the raw rows in one commit whose properties say which batch it is (that
    commit is the batch: lake/batches.py), then the batch's row in the registry; `batches` gains it."""
    batch = staged.batch
    if staged.quarantine_files:
        props = {"batch_id": batch.batch_id, "batch_seq": str(batch.batch_seq)}
        wh.append_files(QUARANTINE, staged.quarantine_files, props)
        crash_point("after_commit:quarantine")
    props = {
        k: str(v)
        for k, v in batch.__dict__.items()
        if k not in ("snapshot_id", "replaces", "delivery_group", "delivery_parts")
    }
    for name in ("delivery_group", "delivery_parts"):
        if getattr(batch, name) is not None:
            props[name] = str(getattr(batch, name))
    if batch.replaces:
        props |= {"replaces": batch.replaces, "reparsed_at": _now().isoformat()}
    crash_point("before_commit:raw_billing_events")
    snapshot_id = wh.append_files(RAW, staged.raw_files, props)
    if on_commit is not None:
        on_commit(staged.result)
    crash_point("after_commit:raw_billing_events")
    committed = dataclasses.replace(batch, snapshot_id=snapshot_id)
    register(wh, [committed])
    batches.append(committed)
    return staged.result


def _reading(
    path: Path, source_format: str, readings: list[Batch], reparse: bool
) -> tuple[dt.datetime, int | None, str]:
    """(loaded_at, delivery_seq, replaces) of a new batch of the file whose earlier `readings` (batches
    of the same sha256) are given. A first reading is loaded now. A re-read is parsed as of its
    delivery's first load, so that only the parser differs, and replaces the latest reading."""
    if not reparse:
        return _now(), None, ""
    if not readings:
        raise InputError(f"{path}: not ingested yet, so nothing to re-read; ingest it without --reparse")
    latest = first = readings[-1]
    by_id = {b.batch_id: b for b in readings}
    while first.replaces in by_id:  # back to the reading the re-reads replaced, one after the other
        first = by_id[first.replaces]
    if source_format != first.source_format:
        raise InputError(
            f"{path}: reads as {source_format} now but was ingested as {first.source_format}; "
            "--reparse re-reads a file in the format it was delivered in (pass --format)"
        )
    return dt.datetime.fromisoformat(first.loaded_at), first.batch_seq, latest.batch_id


def _restated(earlier: IngestResult, later: IngestResult) -> bool:
    """Whether `later` delivers a billing period `earlier` delivered, as another delivery: the
    earlier one's rows of that period no longer count."""
    other = earlier.delivery_group is None or earlier.delivery_group != later.delivery_group
    same = earlier.source_format == later.source_format and bool(earlier.periods & later.periods)
    return other and same and not later.replaces  # a re-read keeps its delivery's place: it restates nothing


def _first_part(group: int | None, batches: list[Batch]) -> str:
    return "" if group is None else first_of(group, batches).batch_id


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _limits(wh: Warehouse) -> RowLimits:
    settings = wh.settings
    return RowLimits(settings.usage_date_min, settings.usage_date_max_days_ahead, settings.max_field_bytes)


def _drop_orphan_quarantine(wh: Warehouse, batches: list[Batch]) -> None:
    """Remove quarantine rows of batches whose raw commit never happened (a crash mid-ingest)."""
    known = {b.batch_seq for b in batches}
    orphans = set()
    for snap in wh.snapshots(QUARANTINE):
        recorded = snap.properties.get("batch_seq")
        if recorded is not None and int(recorded) not in known:
            orphans.add(int(recorded))
    table = wh.table(QUARANTINE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # already removed: nothing matches
        for seq in sorted(orphans):
            table.delete(equal_to("batch_seq", seq))


def _remove_unregistered_raw_files(wh: Warehouse, batches: list[Batch]) -> None:
    """Raw files of an ingestion that stopped before its commit: never registered, never read. A
    folder the raw table refers to is kept whatever the registry says (the raw files are the
    audit's evidence)."""
    known = {b.batch_id for b in batches}
    stray = [
        f for f in wh.staging_root(RAW).glob("batch_id=*") if f.name.removeprefix("batch_id=") not in known
    ]
    if not stray:
        return
    live = {
        part
        for path in wh.data_files(RAW, fetch=False)
        for part in path.split("/")
        if part.startswith("batch_id=")
    }
    for folder in stray:
        if folder.name not in live:
            shutil.rmtree(folder, ignore_errors=True)


def _remove_uncommitted_quarantine_files(wh: Warehouse, batches: list[Batch]) -> None:
    """Quarantine files staged by an ingestion that stopped before committing them (the parts of a
    delivery are all staged before the first commit): a folder of a batch that is not registered and
    that no quarantine commit ever named. One a commit named stays for the snapshots that read it."""
    known = {b.batch_id for b in batches}
    stray = [
        f
        for f in wh.staging_root(QUARANTINE).glob("batch_id=*")
        if f.name.removeprefix("batch_id=") not in known
    ]
    if not stray:
        return
    committed = {snap.properties.get("batch_id") for snap in wh.snapshots(QUARANTINE)}
    for folder in stray:
        if folder.name.removeprefix("batch_id=") not in committed:
            shutil.rmtree(folder, ignore_errors=True)
