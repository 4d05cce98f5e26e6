"""Ingestion: one billing file becomes one immutable batch in `raw_billing_events`.

Rejected rows are committed to `quarantine` first, then the accepted rows to the raw table in a commit
that also registers the batch. A crash between the two leaves quarantine rows of an unregistered
batch; the next ingestion removes them before it starts, so they are never seen as published.
"""

from __future__ import annotations

import datetime as dt
import logging
import shutil
import tempfile
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from costlake.duck import connect, sql_string
from costlake.errors import InputError
from costlake.files import file_sha256
from costlake.lake.batches import registered_batches
from costlake.lake.faults import crash_point
from costlake.lake.filters import equal_to
from costlake.lake.warehouse import Warehouse
from costlake.logs import phase
from costlake.sources.base import BatchContext
from costlake.sources.registry import source_for
from costlake.tables import QUARANTINE, RAW

log = logging.getLogger(__name__)


@dataclass
class IngestResult:
    path: Path
    batch_id: str
    source_format: str
    accepted: int = 0
    quarantined: int = 0
    skipped: bool = False
    reasons: list[tuple[str, int]] = field(default_factory=list)


def ingest_files(wh: Warehouse, paths: list[Path], fmt: str = "auto") -> list[IngestResult]:
    """Ingest each file in order as its own batch. Files already ingested are skipped."""
    for path in paths:
        if not path.is_file():
            raise InputError(f"{path}: no such file")
    wh.ensure_tables()
    with wh.writer("ingest"):
        wh.refresh()
        _drop_orphan_quarantine(wh)
        _remove_unregistered_raw_files(wh)
        return [_ingest_one(wh, path, fmt) for path in paths]


def _ingest_one(wh: Warehouse, path: Path, fmt: str) -> IngestResult:
    sha = file_sha256(path)
    batches = registered_batches(wh)
    for batch in batches:
        if batch.sha256 == sha:
            return IngestResult(path, batch.batch_id, batch.source_format, skipped=True)
    source = source_for(path, fmt)
    seq = max((b.batch_seq for b in batches), default=0) + 1
    batch_id = f"b{seq:06d}-{sha[:12]}"
    loaded_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    ctx = BatchContext(batch_id, seq, str(path.resolve()), loaded_at, wh.settings.currency)
    result = IngestResult(path, batch_id, source.format)
    with (
        phase(log, "ingest file", file=str(path), format=source.format, batch_id=batch_id) as done,
        tempfile.TemporaryDirectory(prefix="costlake-ingest-") as tmp,
    ):
        con = connect(wh.settings, Path(tmp), ordered=True)
        try:
            source.parse(con, path, ctx)
            result.accepted = _count(con, "accepted")
            result.quarantined = _count(con, "rejected")
            result.reasons = _top_reasons(con)
            done |= {"accepted": result.accepted, "quarantined": result.quarantined}
            props = {"batch_id": batch_id, "batch_seq": str(seq)}
            if result.quarantined:
                q_dir = wh.new_data_dir(QUARANTINE, f"batch_id={batch_id}")
                q_file = _copy(con, "rejected", q_dir)
                wh.append_files(QUARANTINE, [q_file], props)
                crash_point("after_commit:quarantine")
            raw_files = []
            if result.accepted:
                raw_dir = wh.new_data_dir(RAW, f"batch_id={batch_id}")
                raw_files = [_copy(con, "accepted", raw_dir)]
            props |= {
                "sha256": sha,
                "source_file": ctx.source_file,
                "source_format": source.format,
                "loaded_at": loaded_at.isoformat(),
                "rows_accepted": str(result.accepted),
                "rows_quarantined": str(result.quarantined),
            }
            crash_point("before_commit:raw_billing_events")
            wh.append_files(RAW, raw_files, props)
        finally:
            con.close()
    return result


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])


def _top_reasons(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int]]:
    rows = con.execute(
        # Values are quoted inside reasons; count by the kind of problem, not by the value.
        """SELECT regexp_replace(unnest(string_split(reason, '; ')),
                                  chr(39) || '[^' || chr(39) || ']*' || chr(39), '…', 'g') AS r,
                  count(*) AS n
           FROM rejected GROUP BY r ORDER BY n DESC, r LIMIT 10"""
    ).fetchall()
    return [(str(r), int(n)) for r, n in rows]


def _copy(con: duckdb.DuckDBPyConnection, table: str, out_dir: Path) -> str:
    """One Parquet file of the table; the ingest connection keeps file order, so rows stay in it."""
    # A fresh name per attempt: a repeated ingestion never overwrites a file an old snapshot references.
    target = out_dir / f"part-{uuid.uuid4().hex}.parquet"
    con.execute(
        f"COPY (SELECT * FROM {table}) TO {sql_string(str(target))} (FORMAT parquet, COMPRESSION zstd)"
    )
    return str(target)


def _drop_orphan_quarantine(wh: Warehouse) -> None:
    """Remove quarantine rows of batches whose raw commit never happened (a crash mid-ingest)."""
    known = {b.batch_seq for b in registered_batches(wh)}
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


def _remove_unregistered_raw_files(wh: Warehouse) -> None:
    """Raw files of an ingestion that stopped before its commit: never registered, never read."""
    known = {b.batch_id for b in registered_batches(wh)}
    for folder in wh.staging_root(RAW).glob("batch_id=*"):
        if folder.name.removeprefix("batch_id=") not in known:
            shutil.rmtree(folder, ignore_errors=True)
