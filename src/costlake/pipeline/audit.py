"""`costlake audit verify`: replay a past run from raw and prove its published content.

For each partition a run published, three hashes must be equal: the one the publish log recorded,
the one of the data stored at the run's snapshot, and the one of a fresh rebuild from the raw batches
the run saw (its watermark). A tampered data file breaks the second; a change in raw or in the
stage logic breaks the third.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from costlake.duck import scratch_folder
from costlake.engines import create_engine
from costlake.errors import InputError
from costlake.lake.batches import Batch, registered_batches
from costlake.lake.fingerprint import EMPTY_HASH, fingerprint_files
from costlake.lake.manifest import Manifest, manifest_for, manifests, past_retention
from costlake.lake.warehouse import Warehouse
from costlake.logs import phase
from costlake.pipeline.rebuild import STAGES, rebuild
from costlake.tables import PUBLISH_LOG, TABLES

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mismatch:
    run_id: str
    table: str
    usage_date: dt.date
    logged: str
    stored: str
    replayed: str

    def describe(self) -> str:
        parts = []
        if self.stored != self.logged:
            parts.append(f"stored data hash {self.stored} differs from the logged {self.logged}")
        if self.replayed != self.logged:
            parts.append(f"replay from raw gives {self.replayed}, logged {self.logged}")
        return f"run {self.run_id}, {self.table}, {self.usage_date}: " + "; ".join(parts)


@dataclass
class VerifyReport:
    runs: list[str]
    partitions: int
    mismatches: list[Mismatch]
    past_retention: int = 0  # runs whose snapshots `costlake maintain` expired: not verifiable


def verify(wh: Warehouse, run_id: str | None = None) -> VerifyReport:
    """Verify one run, or every finished run when `run_id` is None."""
    wh.ensure_tables()
    batches = registered_batches(wh)  # refuses a registry with a row removed by someone else
    runs = [manifest_for(wh, run_id)] if run_id is not None else manifests(wh)
    log = wh.read_rows(PUBLISH_LOG).to_pylist()
    report = VerifyReport([m.run_id for m in runs], 0, [])
    if run_id is None:
        report.past_retention = len(past_retention(wh))
    for manifest in runs:
        rows = [r for r in log if r["run_id"] == manifest.run_id and r["gate_status"] != "held_back"]
        if rows:
            try:
                with phase(logger, "audit run", run_id=manifest.run_id, partitions=len(rows)) as done:
                    found = _verify_run(wh, manifest, rows, batches)
                    done["mismatches"] = len(found)
            except Exception:
                if run_id is not None or not _expired_meanwhile(wh, manifest):
                    raise
                report.past_retention += 1  # a `maintain` beside this audit expired it
                report.runs.remove(manifest.run_id)
                continue
            report.partitions += len(rows)
            report.mismatches += found
    return report


def _expired_meanwhile(wh: Warehouse, manifest: Manifest) -> bool:
    """Whether a run whose files could not be read has been expired since the audit listed it."""
    try:
        manifest_for(Warehouse(wh.settings), manifest.run_id)
    except InputError:
        return True
    return False


def _verify_run(
    wh: Warehouse, manifest: Manifest, rows: list[dict[str, object]], batches: list[Batch]
) -> list[Mismatch]:
    logged = [(str(r["table_name"]), _as_date(r["usage_date"]), str(r["content_hash"])) for r in rows]
    days = sorted({day for _, day, _ in logged})
    with scratch_folder("costlake-audit-") as tmp:
        staging = {tdef.name: tmp / tdef.name for tdef, _ in STAGES}
        with create_engine(wh.settings, tmp) as engine:
            replayed = rebuild(
                wh,
                engine,
                days,
                watermark=manifest.batch_seq,
                run_id=manifest.run_id,
                published_at=dt.datetime(1970, 1, 1),
                staging=staging,
                batches=batches,
                lag_hours=manifest.lag_hours,
            ).fingerprints
        stored = {}
        for tdef, _ in STAGES:
            snapshot = manifest.snapshots.get(tdef.name)
            files = wh.data_files(tdef, dates=days, snapshot_id=snapshot) if snapshot else []
            stored[tdef.name] = fingerprint_files(TABLES[tdef.name], files, wh.settings)
    out = []
    for table, day, expected in logged:
        s, p = stored[table].get(day), replayed[table].get(day)
        got_stored = s.content_hash if s else EMPTY_HASH
        got_replayed = p.content_hash if p else EMPTY_HASH
        if got_stored != expected or got_replayed != expected:
            out.append(Mismatch(manifest.run_id, table, day, expected, got_stored, got_replayed))
    return out


def _as_date(value: object) -> dt.date:
    assert isinstance(value, dt.date)
    return value
