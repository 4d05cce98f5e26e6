"""`costlake run`: take the batches ingested since the last run through the three stages.

Each stage commits its affected `usage_date` partitions to its table in one Iceberg transaction. The
commit records, in the snapshot's properties, the run id, a change counter and the days it changed.
A downstream stage rebuilds the days of every upstream commit it has not yet incorporated, so a run
that stopped half-way is finished by the next one.
"""

from __future__ import annotations

import datetime as dt
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from costlake.engines import Engine, create_engine
from costlake.lake.batches import registered_batches
from costlake.lake.filters import greater_than
from costlake.lake.fingerprint import EMPTY_HASH, PartitionFingerprint, fingerprint_files
from costlake.lake.lock import warehouse_lock
from costlake.lake.schemas import (
    ACCOUNT_SERVICE_DAY,
    DAILY_ACCOUNT,
    DIM_ACCOUNT,
    DIM_PRICING_MODEL,
    DIM_REGION,
    DIM_SERVICE,
    NORMALIZED,
    PUBLISH_LOG,
    RAW,
    TableDef,
)
from costlake.lake.warehouse import Warehouse
from costlake.pipeline import dimensions, stage1_normalize, stage2_account_service_day, stage3_account_day

Step = Callable[[str], None]


@dataclass
class StageResult:
    table: str
    dates: list[dt.date]
    rows: int
    files: int
    snapshot_id: int | None


@dataclass
class RunReport:
    run_id: str
    batches: list[str] = field(default_factory=list)
    stages: list[StageResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def changed(self) -> bool:
        return any(s.dates for s in self.stages)


STEPS = (
    "stage 1: normalize + dedupe",
    "dimensions",
    "stage 2: account-service-day",
    "stage 3: account-day",
    "publish log",
)


def new_run_id(now: dt.datetime) -> str:
    return now.strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def run_pipeline(wh: Warehouse, step: Step | None = None) -> RunReport:
    """Run the three stages for everything not yet published. Returns what was done."""
    started = time.monotonic()
    say: Step = step or (lambda _: None)
    wh.ensure_tables()
    with warehouse_lock(wh.root), tempfile.TemporaryDirectory(prefix="costlake-run-") as tmp:
        wh.refresh()
        now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        report = RunReport(new_run_id(now))
        with create_engine(wh.settings, Path(tmp)) as engine:
            run = _Run(wh, engine, report, now)
            say(STEPS[0])
            run.stage1()
            say(STEPS[1])
            run.dimensions()
            say(STEPS[2])
            run.downstream(
                NORMALIZED, ACCOUNT_SERVICE_DAY, stage2_account_service_day.account_service_day_sql
            )
            say(STEPS[3])
            run.downstream(ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, run.account_day_sql)
            say(STEPS[4])
            run.publish_log()
        report.seconds = time.monotonic() - started
        return report


class _Run:
    """The state of one run: the engine session and what each stage committed."""

    def __init__(self, wh: Warehouse, engine: Engine, report: RunReport, now: dt.datetime) -> None:
        self.wh, self.engine, self.report, self.now = wh, engine, report, now
        self.batch_ids: dict[dt.date, str] = {}
        self.published: list[tuple[TableDef, list[dt.date], dict[dt.date, PartitionFingerprint], int]] = []

    def _register(self, name: str, tdef: TableDef, **kwargs: object) -> None:
        self.engine.register_files(name, self.wh.data_files(tdef, **kwargs), tdef.arrow_schema())  # type: ignore[arg-type]

    def _commit(self, tdef: TableDef, dates: list[dt.date], sql: str, props: dict[str, str]) -> None:
        files = self.engine.write_partitions(
            sql, self.wh.new_data_dir(tdef, f"run_id={self.report.run_id}"), "usage_date"
        )
        snapshot = self.wh.replace_partitions(tdef, dates, files, props | {"dates": _dates_text(dates)})
        fps = fingerprint_files(tdef, files)
        rows = sum(fp.row_count for fp in fps.values())
        if tdef is NORMALIZED:
            self.batch_ids = {d: fp.batch_ids for d, fp in fps.items()}
        self.report.stages.append(StageResult(tdef.name, dates, rows, len(files), snapshot))
        self.published.append((tdef, dates, fps, snapshot))

    def stage1(self) -> None:
        props = self.wh.last_properties(NORMALIZED)
        seen_seq = int(props.get("batch_seq", 0))
        change = int(props.get("change", 0))
        batches = [b for b in registered_batches(self.wh) if b.batch_seq > seen_seq]
        if not batches:
            self.report.stages.append(StageResult(NORMALIZED.name, [], 0, 0, None))
            return
        self.report.batches = [b.batch_id for b in batches]
        self._register("raw_new", RAW, row_filter=greater_than("batch_seq", seen_seq))
        self._register("s1_current", NORMALIZED)
        self.engine.materialize("s1_winners", stage1_normalize.winners_sql("raw_new", "s1_current"))
        days = self.engine.fetch(stage1_normalize.affected_dates_sql("s1_winners", "s1_current"))
        dates = [d for d in days.column("usage_date").to_pylist() if d is not None]
        self._register("s1_partitions", NORMALIZED, dates=dates)
        props = {
            "run_id": self.report.run_id,
            "batch_seq": str(max(b.batch_seq for b in batches)),
            "change": str(change + 1),
        }
        self._commit(NORMALIZED, dates, stage1_normalize.output_sql("s1_winners", "s1_partitions"), props)

    def downstream(self, upstream: TableDef, tdef: TableDef, build: Callable[[str], str]) -> None:
        """Rebuild the days that upstream commits changed since this table last incorporated them."""
        done = int(self.wh.last_properties(tdef).get("upstream_change", 0))
        pending: set[dt.date] = set()
        latest = done
        for snap in self.wh.snapshots(upstream):
            change = int(snap.properties.get("change", 0))
            if change > done:
                latest = max(latest, change)
                pending |= {
                    dt.date.fromisoformat(d) for d in snap.properties.get("dates", "").split(",") if d
                }
        if not pending:  # nothing to rebuild; the empty upstream commits need no answer
            self.report.stages.append(StageResult(tdef.name, [], 0, 0, None))
            return
        dates = sorted(pending)
        name = f"{tdef.name}_input"
        self._register(name, upstream, dates=dates)
        props = {"run_id": self.report.run_id, "change": str(latest), "upstream_change": str(latest)}
        self._commit(tdef, dates, build(name), props)

    def account_day_sql(self, service_days: str) -> str:
        accounts = self.wh.read_rows(DIM_ACCOUNT).select(["account_id", "last_ingestion_ts"])
        self.engine.register_arrow("account_ingestion", accounts)
        return stage3_account_day.account_day_sql(
            service_days,
            "account_ingestion",
            lag_hours=self.wh.settings.completeness_lag_hours,
            run_id=self.report.run_id,
            published_at=self.now,
        )

    def dimensions(self) -> None:
        """Fold the raw batches each dimension has not seen yet into it; each keeps its own watermark,
        so a run that stopped between two dimensions is finished by the next one."""
        batches = registered_batches(self.wh)
        for tdef, sql in (
            (DIM_ACCOUNT, dimensions.dim_account_sql),
            (DIM_SERVICE, dimensions.dim_service_sql),
            (DIM_REGION, lambda new, cur: dimensions.dim_seen_sql("region", new, cur)),
            (DIM_PRICING_MODEL, lambda new, cur: dimensions.dim_seen_sql("pricing_model", new, cur)),
        ):
            seen_seq = int(self.wh.last_properties(tdef).get("batch_seq", 0))
            unseen = [b.batch_seq for b in batches if b.batch_seq > seen_seq]
            if not unseen:
                continue
            self._register("raw_for_dim", RAW, row_filter=greater_than("batch_seq", seen_seq))
            self.engine.register_arrow("dim_current", self.wh.read_rows(tdef))
            rows = self.engine.fetch(sql("raw_for_dim", "dim_current"))
            props = {"run_id": self.report.run_id, "batch_seq": str(max(unseen))}
            self.wh.overwrite_rows(tdef, rows, props)

    def publish_log(self) -> None:
        if not any(dates for _, dates, _, _ in self.published):
            return
        rows: list[dict[str, object]] = []
        for tdef, dates, fps, snapshot in self.published:
            for day in dates:
                fp = fps.get(day)
                rows.append(
                    {
                        "run_id": self.report.run_id,
                        "table_name": tdef.name,
                        "usage_date": day,
                        "snapshot_id": snapshot,
                        "row_count": fp.row_count if fp else 0,
                        "content_hash": fp.content_hash if fp else EMPTY_HASH,
                        "input_batch_ids": self.batch_ids.get(day, ""),
                        "gate_status": "passed",
                        "gate_results": "{}",
                        "published_at": self.now,
                    }
                )
        table = pa.Table.from_pylist(rows, schema=PUBLISH_LOG.arrow_schema())
        self.wh.append_rows(PUBLISH_LOG, table, {"run_id": self.report.run_id})


def _dates_text(dates: list[dt.date]) -> str:
    return ",".join(d.isoformat() for d in sorted(dates))
