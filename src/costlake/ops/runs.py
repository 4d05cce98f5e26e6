"""Run history for people: what each finished run read, published, held back and warned about.

Everything comes from the run manifests (`lake/manifest.py`), the batch registry and the publish
log, the same records `audit verify` and `--as-of` use. A run that found nothing to publish commits
nothing and leaves no record, so it is not listed. A run's start is its publish-log rows'
`published_at` (the moment the run began); its end is the commit of its manifest, so the duration
covers planning, rebuilding and committing, and not the anomaly detection that follows.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from costlake.errors import InputError
from costlake.lake.batches import Batch, registered_batches
from costlake.lake.manifest import Manifest, manifests, unknown_run
from costlake.lake.warehouse import Warehouse
from costlake.tables import PUBLISH_LOG

PUBLISHED = ("published", "published_with_warnings")


@dataclass(frozen=True)
class Partition:
    """One partition a run published or held back, as its publish-log row records it."""

    table: str
    usage_date: dt.date
    status: str  # published | published_with_warnings | held_back
    rows: int
    content_hash: str
    batches: str  # the batch ids its rebuild read
    findings: list[dict[str, str]]  # the gate's findings on that day (check, severity, detail)

    @property
    def reason(self) -> str:
        """Why it was held back or warned about: the gate's findings, one after the other."""
        return "; ".join(f"{f['severity']} {f['check']}: {f['detail']}" for f in self.findings)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    started_at: dt.datetime | None  # UTC; None for a manifest with no publish-log row
    finished_at: dt.datetime  # UTC: the commit of the run's manifest
    batches: list[str]  # batch ids new to this run (registered after the run before it)
    watermark: int  # the last batch_seq the run read
    days_committed: int  # distinct usage days published in any table
    days_held_back: int
    gate_warnings: int  # distinct warnings of the gate (a day's warning counts once, not per table)
    covers: list[str]  # interrupted runs whose commits this run finished
    snapshots: dict[str, int | None] = field(default_factory=dict)

    @property
    def duration_s(self) -> float | None:
        if self.started_at is None:
            return None
        return max(0.0, round((self.finished_at - self.started_at).total_seconds(), 3))

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_s": self.duration_s,
            "batches": self.batches,
            "watermark": self.watermark,
            "days_committed": self.days_committed,
            "days_held_back": self.days_held_back,
            "gate_warnings": self.gate_warnings,
            "covers": self.covers,
            "snapshots": self.snapshots,
        }


def list_runs(wh: Warehouse) -> list[RunSummary]:
    """Every finished run, oldest first."""
    return _history(wh)[0]


def _history(wh: Warehouse) -> tuple[list[RunSummary], dict[str, list[dict[str, Any]]]]:
    """Every finished run, and the publish log's rows by run (read once)."""
    wh.ensure_tables()
    found = manifests(wh)
    log = _log_by_run(wh)
    batches = registered_batches(wh)
    ended = {s.snapshot_id: s.timestamp_ms for s in wh.snapshots(PUBLISH_LOG)}
    out, previous = [], _expired_watermark(log, found, batches)
    for manifest in found:
        seen = manifest.seen_batch_seq if manifest.seen_batch_seq is not None else previous
        out.append(_summary(manifest, log.get(manifest.run_id, []), batches, seen, ended))
        previous = max(previous, manifest.batch_seq)
    return out, log


def show_run(wh: Warehouse, run: str) -> tuple[RunSummary, list[Partition]]:
    """One run (its id, or a prefix that names one run) and every partition it published or held
    back, by table and day."""
    runs, log = _history(wh)
    chosen = _choose(wh, runs, run)
    rows = log.get(chosen.run_id, [])
    parts = [
        Partition(
            r["table_name"],
            r["usage_date"],
            r["gate_status"],
            int(r["row_count"]),
            r["content_hash"],
            r["input_batch_ids"] or "",
            _findings(r["gate_results"]),
        )
        for r in rows
    ]
    parts.sort(key=lambda p: (p.table, p.usage_date))
    return chosen, parts


def _expired_watermark(
    log: dict[str, list[dict[str, Any]]], found: list[Manifest], batches: list[Batch]
) -> int:
    """The last batch the runs past retention read (their manifests are expired, their publish-log
    rows are not), so that the oldest retained run lists only the batches new to it. Only for runs
    from before manifests recorded `seen_batch_seq` (a batch no row names, all of it quarantined,
    is then counted with the next run)."""
    seq = {b.batch_id: b.batch_seq for b in batches}
    listed = {m.run_id for m in found}
    read = {
        seq.get(batch, 0)
        for run, rows in log.items()
        if run not in listed
        for row in rows
        for batch in (row["input_batch_ids"] or "").split(",")
    }
    return max(read, default=0)


def _choose(wh: Warehouse, runs: list[RunSummary], run: str) -> RunSummary:
    exact = [r for r in runs if r.run_id == run]
    if exact:
        return exact[0]
    matches = [r for r in runs if run and r.run_id.startswith(run)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise InputError(f"{run!r} names {len(matches)} runs; give more of the run id")
    raise unknown_run(wh, run)


def _log_by_run(wh: Warehouse) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for row in wh.read_rows(PUBLISH_LOG).to_pylist():
        out.setdefault(row["run_id"], []).append(row)
    return out


def _summary(
    manifest: Manifest,
    rows: list[dict[str, Any]],
    batches: list[Batch],
    previous: int,
    ended: dict[int, int],
) -> RunSummary:
    published = {r["usage_date"] for r in rows if r["gate_status"] in PUBLISHED}
    held = {r["usage_date"] for r in rows if r["gate_status"] == "held_back"}
    warnings = {
        (r["usage_date"], f["check"], f["detail"])
        for r in rows
        for f in _findings(r["gate_results"])
        if f.get("severity") == "warning"
    }
    starts = [r["published_at"] for r in rows if r["published_at"] is not None]
    finished = dt.datetime.fromtimestamp(ended.get(manifest.log_snapshot_id, 0) / 1000, dt.UTC)
    return RunSummary(
        run_id=manifest.run_id,
        started_at=min(starts).replace(tzinfo=dt.UTC) if starts else None,
        finished_at=finished.replace(microsecond=finished.microsecond // 1000 * 1000),
        batches=[b.batch_id for b in batches if previous < b.batch_seq <= manifest.batch_seq],
        watermark=manifest.batch_seq,
        days_committed=len(published),
        days_held_back=len(held),
        gate_warnings=len(warnings),
        covers=sorted(manifest.covers - {manifest.run_id}),
        snapshots=dict(manifest.snapshots),
    )


def _findings(text: str | None) -> list[dict[str, str]]:
    """The gate's findings as the publish log stores them (a JSON list); anything else is shown as
    one finding that says so, never an error: the log is history, read as it is."""
    try:
        found = json.loads(text or "[]")
    except ValueError:
        return [{"check": "publish_log", "severity": "unknown", "detail": "unreadable gate results"}]
    if not isinstance(found, list):
        return []
    return [
        {k: str(f.get(k, "")) for k in ("check", "severity", "detail")} for f in found if isinstance(f, dict)
    ]


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")
