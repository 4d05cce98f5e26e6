"""`costlake maintain`: keep the runs an audit may ask about, expire the rest, remove unused files.

Which runs are retained: those that finished within `retain_days` days, and the newest `retain_runs`
runs whatever their age; the latest run always. Each table keeps:
- the snapshots retained runs' manifests name (what `--as-of` and `audit verify` read), and the
  publish-log snapshot that carries each retained manifest;
- the raw snapshots of batches not yet in the `ingest_batches` registry (a stopped ingestion's; they
  are registered first, so an old file is still recognised: the registry is a table, and audit
  replays from the raw table's rows, not from its snapshots);
- its current snapshot, and every snapshot after the latest run's (work a run has not finished);
- for `cost_anomalies`, the newest commit that changed rows (the explanation index compares it).
Everything else is expired, then the files nothing refers to any more are deleted when older than
`orphan_hours` (files of crashed runs included). Raw files are never rewritten: they are the audit's
evidence. The whole of it holds the writer lock; readers are not disturbed (they read retained
snapshots, and a file is deleted only once no remaining snapshot refers to it).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from costlake.errors import InputError
from costlake.lake.batches import Batch, unregistered
from costlake.lake.faults import crash_point
from costlake.lake.home import check_home
from costlake.lake.manifest import RETENTION_PROPERTY, Manifest, manifests, since_manifest
from costlake.lake.retention import (
    Expired,
    Removed,
    compact,
    expire,
    referenced,
    remove_orphans,
    settle_bookkeeping,
    trim_cache,
    trim_plans,
)
from costlake.lake.warehouse import Warehouse
from costlake.logs import phase
from costlake.pipeline.plan import pending_days, unfinished_commits
from costlake.tables import (
    ACCOUNT_SERVICE_DAY,
    COST_ANOMALIES,
    DAILY_ACCOUNT,
    NORMALIZED,
    PUBLISH_LOG,
    RAW,
    TABLES,
)

log = logging.getLogger(__name__)


MAX_DAYS = 36500  # a century: the most a retention in days can say
MAX_RUNS = 10**9
MAX_HOURS = 876000  # a century, in hours


@dataclass(frozen=True)
class Policy:
    retain_days: int
    retain_runs: int
    orphan_hours: float

    def check(self) -> None:
        """One-line errors for values no retention can use (before anything is changed), naming the
        option and the setting: a value may come from either (COSTLAKE_ORPHAN_HOURS, costlake.toml)."""
        if not 0 <= self.retain_days <= MAX_DAYS:
            raise InputError(f"--retain-days (retain_days) must be 0 to {MAX_DAYS}, not {self.retain_days}")
        if not 0 <= self.retain_runs <= MAX_RUNS:
            raise InputError(f"--retain-runs (retain_runs) must be 0 to {MAX_RUNS:,}, not {self.retain_runs}")
        if not 0 <= self.orphan_hours <= MAX_HOURS:  # NaN fails too
            raise InputError(
                f"--orphan-hours (orphan_hours) must be 0 to {MAX_HOURS:,}, not {self.orphan_hours}"
            )

    def describe(self) -> str:
        newest = f" and the newest {self.retain_runs}" if self.retain_runs else ""
        return f"runs of the last {self.retain_days} day(s){newest}"


@dataclass
class MaintainReport:
    policy: Policy
    dry_run: bool
    retained: list[str]  # run ids kept
    expired_runs: list[str]  # run ids whose manifests are expired now
    tables: list[Expired] = field(default_factory=list)
    orphans: Removed = field(default_factory=Removed)
    plans: Removed = field(default_factory=Removed)
    cache: Removed = field(default_factory=Removed)
    compacted: dict[str, int] = field(default_factory=dict)  # table -> data files merged into one

    @property
    def snapshots(self) -> int:
        return sum(len(t.snapshots) for t in self.tables)

    @property
    def freed_bytes(self) -> int:
        return self.orphans.bytes + self.plans.bytes + self.cache.bytes


def maintain(
    wh: Warehouse, policy: Policy, *, dry_run: bool = False, now: dt.datetime | None = None
) -> MaintainReport:
    """Apply `policy` to the warehouse (with `dry_run`, only report what it would remove)."""
    policy.check()
    now = now or dt.datetime.now(dt.UTC)
    wh.ensure_tables()
    with wh.writer("maintain"):
        wh.refresh()
        _refuse_foreign_tables(wh)
        # A dry run registers nothing, so it keeps the raw snapshots of unregistered batches.
        pending = unregistered(wh) if dry_run else []
        if not dry_run:
            settle_bookkeeping(wh)  # every batch registered, old records tagged
        _refuse_unfinished(wh)
        found = manifests(wh)
        kept = retained_runs(wh, found, policy, now)
        report = MaintainReport(
            policy, dry_run, [m.run_id for m in kept], [m.run_id for m in found if m not in kept]
        )
        for tdef in TABLES.values():
            merged = compact(wh, tdef, dry_run=dry_run)
            if merged:
                report.compacted[tdef.name] = merged
        wh.refresh()
        keep = _needed(wh, kept, found[-1] if found else None, pending)
        with phase(log, "expire snapshots", dry_run=dry_run) as done:
            # The publish log first, with the retention it applies: the manifests of expired runs
            # go before their snapshots do, so an interrupted maintenance never leaves a listed run
            # without its snapshots (the next one expires what is left).
            note = {RETENTION_PROPERTY: _note(policy, now)}
            for name in [PUBLISH_LOG.name, *(n for n in TABLES if n != PUBLISH_LOG.name)]:
                tdef = TABLES[name]
                extra = note if name == PUBLISH_LOG.name else {}
                expired = expire(wh, tdef, keep[name], dry_run=dry_run, properties=extra)
                crash_point(f"maintain:after_expire:{name}")
                report.tables.append(expired)
            done["snapshots"] = report.snapshots
        with phase(log, "remove unused files", dry_run=dry_run) as done:
            wh.refresh()
            cutoff = now - dt.timedelta(hours=policy.orphan_hours)
            files: set[str] = set()
            for expired in report.tables:
                tdef = TABLES[expired.table]
                remaining = expired.remaining
                remove_orphans(
                    wh, tdef, remaining, cutoff, dry_run=dry_run, removed=report.orphans,
                    trimmed=bool(expired.snapshots),
                )  # fmt: skip
                trim_plans(wh, tdef, dry_run=dry_run, removed=report.plans)
                if wh.remote:
                    files |= referenced(wh.table(tdef), remaining)
            trim_cache(wh, files, dry_run=dry_run, removed=report.cache)
            done["files"] = report.orphans.files + report.plans.files + report.cache.files
    return report


def retained_runs(wh: Warehouse, found: list[Manifest], policy: Policy, now: dt.datetime) -> list[Manifest]:
    """The runs `policy` keeps, oldest first: finished within the days, or among the newest runs."""
    if not found:
        return []
    finished = {s.snapshot_id: s.timestamp_ms for s in wh.snapshots(PUBLISH_LOG)}
    since = (now - dt.timedelta(days=policy.retain_days)).timestamp() * 1000
    newest = {m.run_id for m in found[-max(policy.retain_runs, 1) :]}
    return [m for m in found if m.run_id in newest or finished.get(m.log_snapshot_id, 0) >= since]


def _needed(
    wh: Warehouse, kept: list[Manifest], latest: Manifest | None, pending: list[Batch]
) -> dict[str, set[int]]:
    keep: dict[str, set[int]] = {name: set() for name in TABLES}
    for m in kept:
        for name, snapshot in m.snapshots.items():
            if snapshot is not None and name in keep:
                keep[name].add(snapshot)
        keep[PUBLISH_LOG.name].add(m.log_snapshot_id)
    keep[RAW.name] |= {b.snapshot_id for b in pending}
    if latest is not None:  # work a run has not finished, and commits since (anomalies, tenants)
        for name, tdef in TABLES.items():
            keep[name] |= {s.snapshot_id for s in since_manifest(wh, tdef, latest)}
    changed = [s for s in wh.snapshots(COST_ANOMALIES) if s.properties.get("changed_days", "1") != "0"]
    if changed:
        keep[COST_ANOMALIES.name].add(changed[-1].snapshot_id)
    return keep


def _refuse_unfinished(wh: Warehouse) -> None:
    """Maintenance waits for a run that died to be finished: its commits are not in any manifest."""
    waiting = any(unfinished_commits(wh).values()) or any(
        pending_days(wh, up, down)
        for up, down in ((NORMALIZED, ACCOUNT_SERVICE_DAY), (ACCOUNT_SERVICE_DAY, DAILY_ACCOUNT))
    )
    if waiting:
        raise InputError(
            "a run was interrupted and is not finished yet: run `costlake run` first, then maintain"
        )


def _note(policy: Policy, now: dt.datetime) -> str:
    """The retention as asking for an expired run names it; kept in publish_log's table properties
    (they survive snapshot expiry)."""
    stamp = now.astimezone(dt.UTC).strftime("%Y-%m-%d")
    return f"{policy.describe()} (costlake maintain on {stamp})"


def _refuse_foreign_tables(wh: Warehouse) -> None:
    """Checked again under the lock, through the catalog (`lake/home.py`): maintaining a copied
    warehouse would delete the original's files."""
    if not wh.remote:
        for tdef in TABLES.values():
            check_home(wh.root, tdef.name, wh.table(tdef).location())
