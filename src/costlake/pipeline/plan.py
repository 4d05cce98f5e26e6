"""Which `usage_date` partitions a run must rebuild, and why.

- `new rows`: days of the rows in batches stage 1 has not seen;
- `superseded rows`: days where the current winners of those events live (a correction can move an
  event to another day or account; both days are rebuilt);
- `retracted events`: days where the current winners of events retracted by a delete row live (a
  delete row has no day of its own: it takes the day of the version it displaces);
- `reparsed batch`: days a re-read delivery (`ingest --reparse`) can change beyond its own rows: where
  the replaced reading's rows win now, and the days of the events it retracted;
- `held back by the gate`: days an earlier run could not publish;
- `catching up`: days an interrupted run committed to some tables but not all, or did not log;
- `completeness`: days not yet complete that the new ingestions make complete (T+1);
- `backfill window`: every day of `costlake backfill --from --to`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field

from costlake.engines import Engine
from costlake.lake.batches import Batch, registered_batches
from costlake.lake.filters import greater_than, is_in
from costlake.lake.manifest import manifests, since_manifest
from costlake.lake.warehouse import SnapshotInfo, Warehouse
from costlake.pipeline import stage1_normalize
from costlake.tables import ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT, NORMALIZED, RAW, TableDef


@dataclass
class Plan:
    watermark: int
    seen_watermark: int
    new_batches: list[str]
    reasons: dict[dt.date, set[str]] = field(default_factory=lambda: defaultdict(set))
    # Days an interrupted run committed to a stage table without finishing (no manifest): they are
    # logged by the run that finishes the job.
    recovered: dict[str, set[dt.date]] = field(default_factory=dict)
    recovered_runs: set[str] = field(default_factory=set)

    @property
    def days(self) -> list[dt.date]:
        return sorted(self.reasons)

    def add(self, days: object, reason: str) -> None:
        for day in days:  # type: ignore[attr-defined]
            if day is not None:
                self.reasons[day].add(reason)


def split_dates(text: str) -> list[dt.date]:
    return [dt.date.fromisoformat(d) for d in text.split(",") if d]


def pending_days(wh: Warehouse, upstream: TableDef, downstream: TableDef) -> list[dt.date]:
    """Days upstream committed in changes that `downstream` has not incorporated."""
    done = int(wh.last_properties(downstream).get("upstream_change", 0))
    days: set[dt.date] = set()
    for snap in wh.snapshots(upstream):
        if int(snap.properties.get("change", 0)) > done:
            days |= set(split_dates(snap.properties.get("dates", "")))
    return sorted(days)


def unfinished_commits(wh: Warehouse) -> dict[TableDef, list[SnapshotInfo]]:
    """Each stage table's commits by runs that no finished run covers (a run that died before its
    manifest). Only commits after the latest manifest's snapshot of the table can be such: every
    run finishes the unfinished ones before its own manifest, and `costlake maintain` may have
    expired the manifests of older runs whose snapshots are still in use."""
    found = manifests(wh)
    latest = found[-1] if found else None
    finished = {run for m in found for run in m.covers}
    out = {}
    for tdef in (NORMALIZED, ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT):
        snaps = since_manifest(wh, tdef, latest)
        out[tdef] = [s for s in snaps if s.properties.get("run_id", "") not in finished | {""}]
    return out


def plan_run(
    wh: Warehouse,
    engine: Engine,
    backfill: tuple[dt.date, dt.date] | None = None,
    batches: list[Batch] | None = None,
) -> Plan:
    """What a run publishes; `batches`: every batch of the lake, if the caller has read them."""
    props = wh.last_properties(NORMALIZED)
    seen = int(props.get("batch_seq", 0))
    batches = registered_batches(wh) if batches is None else batches
    plan = Plan(
        watermark=max((b.batch_seq for b in batches), default=0),
        seen_watermark=seen,
        new_batches=[b.batch_id for b in batches if b.batch_seq > seen],
    )
    if plan.new_batches:
        engine.register_files(
            "raw_new", wh.data_files(RAW, row_filter=greater_than("batch_seq", seen)), RAW.arrow_schema()
        )
        engine.register_files("s1_current", wh.data_files(NORMALIZED), NORMALIZED.arrow_schema())
        for row in engine.fetch(stage1_normalize.touched_days_sql("raw_new", "s1_current")).to_pylist():
            plan.add([row["usage_date"]], row["reason"])
        replaced = [b.replaces for b in batches if b.batch_seq > seen and b.replaces]
        if replaced:
            plan.add(_reparsed_days(wh, engine, replaced), "reparsed batch")
        plan.add(_completed_days(wh, engine), "completeness")
    plan.add(split_dates(props.get("held_back", "")), "held back by the gate")
    plan.add(pending_days(wh, NORMALIZED, ACCOUNT_SERVICE_DAY), "catching up")
    plan.add(pending_days(wh, ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT), "catching up")
    for tdef, unfinished in unfinished_commits(wh).items():
        plan.recovered_runs |= {s.properties["run_id"] for s in unfinished}
        days = {day for snap in unfinished for day in split_dates(snap.properties.get("dates", ""))}
        plan.recovered[tdef.name] = days
        plan.add(days, "catching up")
    if backfill is not None:
        plan.add(_window_days(wh, engine, *backfill), "backfill window")
    return plan


def _window_days(wh: Warehouse, engine: Engine, first: dt.date, last: dt.date) -> list[dt.date]:
    """The days of a backfill window that raw or stage 1 has a row on. Only those can have content
    to rebuild (what is published derives from raw, which keeps every row), and a window of
    centuries planned day by day took minutes before doing nothing."""
    engine.register_files("raw_window", wh.data_files(RAW), RAW.arrow_schema())
    engine.register_files("s1_window", wh.data_files(NORMALIZED), NORMALIZED.arrow_schema())
    rows = engine.fetch(
        f"""SELECT DISTINCT usage_date FROM (
                SELECT usage_date FROM raw_window UNION ALL SELECT usage_date FROM s1_window
            ) AS days
            WHERE usage_date BETWEEN DATE '{first.isoformat()}' AND DATE '{last.isoformat()}'"""
    )
    return sorted(rows.column("usage_date").to_pylist())


def _reparsed_days(wh: Warehouse, engine: Engine, replaced: list[str]) -> list[dt.date]:
    """Days the readings that new re-reads replace can leave (see `stage1_normalize.replaced_days_sql`)."""
    engine.register_files(
        "raw_replaced", wh.data_files(RAW, row_filter=is_in("batch_id", replaced)), RAW.arrow_schema()
    )
    engine.register_files("raw_all", wh.data_files(RAW), RAW.arrow_schema())
    rows = engine.fetch(stage1_normalize.replaced_days_sql("s1_current", "raw_replaced", "raw_all"))
    return list(rows.column("usage_date").to_pylist())


def _completed_days(wh: Warehouse, engine: Engine) -> list[dt.date]:
    """Published days not yet complete that this run's ingestions push past the lag."""
    engine.register_files("s3_current", wh.data_files(DAILY_ACCOUNT), DAILY_ACCOUNT.arrow_schema())
    lag = 24 + wh.settings.completeness_lag_hours
    rows = engine.fetch(
        f"""SELECT DISTINCT d.usage_date FROM s3_current AS d
            JOIN (SELECT account_id, max(ingestion_ts) AS latest FROM raw_new GROUP BY account_id) AS n
              ON n.account_id = d.account_id
            WHERE NOT d.data_complete
              AND n.latest >= CAST(d.usage_date AS TIMESTAMP) + INTERVAL '{lag}' HOUR"""
    )
    return list(rows.column("usage_date").to_pylist())
