"""`costlake run` and `costlake backfill`: plan the days, rebuild them, gate, publish.

Publishing commits, in this order, stage 1, stage 2 and stage 3 (each one Iceberg transaction:
delete the changed days, add their new files), then the dimensions, then the publish log whose
commit carries the run manifest. Only days whose content changed and that passed the gate are
committed; a held-back day keeps its previous version in every stage table and is retried by the
next run. Readers follow the manifest, so they see the previous run or this one, never a mix.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import shutil
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from costlake.duck import scratch_folder
from costlake.engines import Engine, create_engine
from costlake.lake.batches import Batch
from costlake.lake.faults import crash_point
from costlake.lake.filters import greater_than
from costlake.lake.fingerprint import EMPTY_HASH, PartitionFingerprint, fingerprint_files
from costlake.lake.manifest import latest_manifest
from costlake.lake.retention import KEEP_MARK, settle_bookkeeping
from costlake.lake.warehouse import Warehouse
from costlake.logs import phase
from costlake.pipeline import dimensions, stage1_normalize
from costlake.pipeline.gate import Finding
from costlake.pipeline.plan import Plan, plan_run, split_dates
from costlake.pipeline.rebuild import STAGES, Rebuilt, rebuild
from costlake.tables import (
    DAILY_ACCOUNT,
    DIM_ACCOUNT,
    DIM_PRICING_MODEL,
    DIM_REGION,
    DIM_SERVICE,
    PUBLISH_LOG,
    RAW,
    TABLES,
    TableDef,
)

Step = Callable[[str], None]
STEPS = (
    "planning",
    "rebuilding stages 1-3",
    "quality gate and commits",
    "dimensions",
    "publish log",
)

log = logging.getLogger(__name__)


@dataclass
class TableResult:
    table: str
    committed: list[dt.date]
    unchanged: list[dt.date]
    held_back: list[dt.date]
    recovered: list[dt.date]
    rows: int
    files: int
    snapshot_id: int | None


@dataclass
class RunReport:
    run_id: str
    batches: list[str] = field(default_factory=list)
    reasons: dict[dt.date, set[str]] = field(default_factory=dict)
    tables: list[TableResult] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return any(t.committed for t in self.tables)

    @property
    def held_back(self) -> list[dt.date]:
        return sorted({d for t in self.tables for d in t.held_back})


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def run_pipeline(
    wh: Warehouse,
    step: Step | None = None,
    *,
    backfill: tuple[dt.date, dt.date] | None = None,
    stages: Collection[str] | None = None,
) -> RunReport:
    """Publish everything not yet published (and the `backfill` window, if given).

    `stages` limits the commits to some stage tables (the original system's one-job-per-stage flow):
    the next job catches up on what this one committed, and readers see the new days once the job
    that commits stage 3 has written the run manifest."""
    started = time.monotonic()
    say: Step = step or (lambda _: None)
    wh.ensure_tables()
    with wh.writer("backfill" if backfill is not None else "run"), scratch_folder("costlake-run-") as tmp:
        wh.refresh()
        batches = settle_bookkeeping(wh)  # every batch registered, old records tagged
        remove_orphaned_run_files(wh)
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        report = RunReport(new_run_id(now))
        with create_engine(wh.settings, tmp) as engine:
            say(STEPS[0])
            with phase(log, "plan", run_id=report.run_id) as done:
                plan = plan_run(wh, engine, backfill, batches)
                done |= {"days": len(plan.days), "batches": len(plan.new_batches)}
            report.batches, report.reasons = plan.new_batches, dict(plan.reasons)
            if plan.days or plan.new_batches or plan.recovered_runs:
                _publish(wh, engine, plan, report, now, say, stages, batches)
        report.seconds = time.monotonic() - started
        return report


def _publish(
    wh: Warehouse,
    engine: Engine,
    plan: Plan,
    report: RunReport,
    now: dt.datetime,
    say: Step,
    stages: Collection[str] | None,
    batches: list[Batch],
) -> None:
    say(STEPS[1])
    staging = {tdef.name: wh.new_data_dir(tdef, f"run_id={report.run_id}") for tdef, _ in STAGES}
    with phase(log, "rebuild", days=len(plan.days), run_id=report.run_id) as done:
        rebuilt = rebuild(
            wh,
            engine,
            plan.days,
            watermark=plan.watermark,
            run_id=report.run_id,
            published_at=now,
            staging=staging,
            batches=batches,
        )
        done["held_back"] = len(rebuilt.held_back)
    report.findings = rebuilt.findings
    say(STEPS[2])
    upstream_change: str | None = None  # stage 1 has no stage before it
    for tdef, _ in STAGES:
        with phase(log, "gate and commit", table=tdef.name, run_id=report.run_id) as done:
            ours = stages is None or tdef.name in stages  # else another job's table
            result, upstream_change = _gate_and_commit(
                wh, tdef, plan, rebuilt, staging[tdef.name], report.run_id, upstream_change, ours
            )
            done |= {"days": len(result.committed), "held_back": len(result.held_back), "rows": result.rows}
        report.tables.append(result)
    if stages is not None and DAILY_ACCOUNT.name not in stages:
        return  # the job that publishes stage 3 finishes the run
    say(STEPS[3])
    with phase(log, "dimensions", run_id=report.run_id):
        _update_dimensions(wh, engine, report.run_id, plan.watermark)
    say(STEPS[4])
    if any(t.snapshot_id for t in report.tables) or report.held_back or plan.recovered_runs:
        with phase(log, "publish log", run_id=report.run_id) as done:
            done["rows"] = _append_publish_log(wh, report, rebuilt, plan, now)


def _gate_and_commit(
    wh: Warehouse,
    tdef: TableDef,
    plan: Plan,
    rebuilt: Rebuilt,
    staging: Path,
    run_id: str,
    upstream_change: str | None,
    ours: bool,
) -> tuple[TableResult, str]:
    """Commit one stage table's changed days that passed the gate (one transaction), and drop the
    rest of its staged files. Returns its result and the change number the next stage records."""
    failed = rebuilt.held_back
    current = fingerprint_files(tdef, wh.data_files(tdef, dates=plan.days), wh.settings)
    new = rebuilt.fingerprints[tdef.name]
    changed = [d for d in plan.days if _key(new.get(d)) != _key(current.get(d))]
    commit = [d for d in changed if d not in failed]
    held = [d for d in plan.days if d in failed]  # changed or not: it failed and is not published
    last = wh.last_properties(tdef)
    props, must = _commit_properties(plan, run_id, last, commit, failed, upstream_change)
    if not ours:
        commit, must = [], False
    files = [f for d in commit for f in rebuilt.files[tdef.name].get(d, [])]
    snapshot = None
    if commit or must:
        crash_point(f"before_commit:{tdef.name}")
        snapshot = wh.replace_partitions(tdef, commit, files, props)
        crash_point(f"after_commit:{tdef.name}")
    _discard_unpublished(rebuilt, tdef.name, set(commit), staging, snapshot is not None)
    recovered = sorted(
        d for d in plan.recovered.get(tdef.name, set()) if d not in changed and d not in failed
    )
    result = TableResult(
        tdef.name,
        commit,
        [d for d in plan.days if d not in changed],
        held,
        recovered,
        sum(new[d].row_count for d in commit if d in new),
        len(files),
        snapshot,
    )
    return result, props["change"] if snapshot is not None else last.get("change", "0")


def _commit_properties(
    plan: Plan,
    run_id: str,
    last: dict[str, str],
    commit: list[dt.date],
    failed: set[dt.date],
    upstream_change: str | None,
) -> tuple[dict[str, str], bool]:
    """A stage commit's snapshot properties, and whether the table must commit even without a
    changed day: stage 1 when the watermark or its held-back days moved, a later stage when it has
    not yet recorded the change of the stage before it."""
    props = {
        "run_id": run_id,
        "batch_seq": str(plan.watermark),
        "change": str(int(last.get("change", 0)) + 1),
        "dates": ",".join(d.isoformat() for d in commit),
    }
    if upstream_change is None:  # stage 1 also remembers what it could not publish
        props["held_back"] = ",".join(d.isoformat() for d in sorted(failed & set(plan.days)))
        must = props["batch_seq"] != last.get("batch_seq") or props["held_back"] != last.get("held_back", "")
        return props, must
    props["upstream_change"] = upstream_change
    return props, upstream_change != last.get("upstream_change")


def _key(fp: PartitionFingerprint | None) -> tuple[int, str]:
    return (fp.row_count, fp.content_hash) if fp else (0, EMPTY_HASH)


def _discard_unpublished(
    rebuilt: Rebuilt, table: str, committed: set[dt.date], folder: Path, kept: bool
) -> None:
    """Delete the staged files that were not committed (unchanged or held-back days)."""
    if not kept:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for day, paths in rebuilt.files[table].items():
        if day not in committed:
            for path in paths:
                Path(path).unlink(missing_ok=True)
                with contextlib.suppress(OSError):  # the day's folder, once empty
                    Path(path).parent.rmdir()


def _update_dimensions(wh: Warehouse, engine: Engine, run_id: str, watermark: int) -> None:
    """Fold the raw batches each dimension has not seen yet (up to `watermark`, the newest) into it;
    each keeps its own watermark, so a run that stopped between two dimensions is finished by the
    next one."""
    for tdef, sql in (
        (DIM_ACCOUNT, dimensions.dim_account_sql),
        (DIM_SERVICE, dimensions.dim_service_sql),
        (DIM_REGION, lambda new, cur: dimensions.dim_seen_sql("region", new, cur)),
        (DIM_PRICING_MODEL, lambda new, cur: dimensions.dim_seen_sql("pricing_model", new, cur)),
    ):
        seen_seq = int(wh.last_properties(tdef).get("batch_seq", 0))
        if watermark <= seen_seq:
            continue
        engine.register_files(
            "raw_for_dim",
            wh.data_files(RAW, row_filter=greater_than("batch_seq", seen_seq)),
            RAW.arrow_schema(),
        )
        engine.register_arrow("dim_current", wh.read_rows(tdef))
        # Retractions name no account, service, region or day.
        rows = engine.fetch(sql(f"(SELECT * FROM raw_for_dim WHERE {stage1_normalize.LIVE})", "dim_current"))
        crash_point(f"before_commit:{tdef.name}")
        wh.overwrite_rows(tdef, rows, {"run_id": run_id, "batch_seq": str(watermark)})


def _append_publish_log(
    wh: Warehouse, report: RunReport, rebuilt: Rebuilt, plan: Plan, now: dt.datetime
) -> int:
    """Append one row per partition of this run and commit the run manifest; returns the rows."""
    by_day: dict[dt.date, list[dict[str, str]]] = {}
    for f in rebuilt.findings:
        by_day.setdefault(f.usage_date, []).append(  # type: ignore[arg-type]
            {"check": f.check, "severity": f.severity, "detail": f.detail}
        )
    rows: list[dict[str, object]] = []
    for result in report.tables:
        fps = rebuilt.fingerprints[result.table]
        # Recovered days were committed by an interrupted run; their content is proven equal here.
        current = wh.table(TABLES[result.table]).current_snapshot()
        snapshot_id = result.snapshot_id or (current.snapshot_id if current else None)
        statuses = [(d, "published") for d in result.committed + result.recovered]
        for day, status in statuses + [(d, "held_back") for d in result.held_back]:
            fp = fps.get(day)
            findings = by_day.get(day, [])
            if status == "published" and findings:
                status = "published_with_warnings"
            rows.append(
                {
                    "run_id": report.run_id,
                    "table_name": result.table,
                    "usage_date": day,
                    "snapshot_id": snapshot_id if status != "held_back" else None,
                    "row_count": fp.row_count if fp else 0,
                    "content_hash": fp.content_hash if fp else EMPTY_HASH,
                    "input_batch_ids": rebuilt.batch_ids(day),
                    "gate_status": status,
                    "gate_results": json.dumps(findings, sort_keys=True),
                    "published_at": now,
                }
            )
    snapshots = {}
    for name, tdef in TABLES.items():
        if tdef is not PUBLISH_LOG:
            snap = wh.table(tdef).current_snapshot()
            snapshots[name] = snap.snapshot_id if snap else None
    props = {
        "run_id": report.run_id,
        "batch_seq": str(plan.watermark),
        "manifest": json.dumps(snapshots),
        # The batches after the last finished run's watermark are new to this run, including those
        # that a run which died before its manifest had already read (`plan.seen_watermark`).
        "seen_batch_seq": str(last.batch_seq if (last := latest_manifest(wh)) else 0),
        "covers": ",".join(sorted(plan.recovered_runs)),
        "completeness_lag_hours": str(wh.settings.completeness_lag_hours),
    }
    crash_point("before_commit:publish_log")
    wh.append_rows(PUBLISH_LOG, pa.Table.from_pylist(rows, schema=PUBLISH_LOG.arrow_schema()), props)
    crash_point("after_commit:publish_log")
    return len(rows)


def remove_orphaned_run_files(wh: Warehouse) -> None:
    """Delete the folders of runs that never committed to a table (a crash before the commit).
    Files of a committed run that were left uncommitted are never referenced, so never read; a run
    whose snapshots `costlake maintain` expired keeps its folder (lake/retention.py)."""
    for tdef, _ in STAGES:
        runs = {s.properties.get("run_id") for s in wh.snapshots(tdef)}
        root = wh.staging_root(tdef)
        if not root.is_dir():
            continue
        for folder in root.glob("run_id=*"):
            committed = (folder / KEEP_MARK).exists()  # its snapshots expired, its files in use
            if folder.name.removeprefix("run_id=") not in runs and not committed:
                shutil.rmtree(folder, ignore_errors=True)


__all__ = ["RunReport", "STEPS", "TableResult", "run_pipeline", "split_dates"]
