"""`costlake maintain`: expire the snapshots no retained run needs and remove unused files."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from costlake.cli.context import check_choice, out, state

if TYPE_CHECKING:
    from costlake.ops.maintain import MaintainReport

app = typer.Typer()


@app.command()
def maintain(
    retain_days: Annotated[
        int | None,
        typer.Option(
            "--retain-days",
            min=0,
            help="Keep the runs that finished within this many days (setting retain_days; default 400).",
        ),
    ] = None,
    retain_runs: Annotated[
        int | None,
        typer.Option(
            "--retain-runs",
            min=0,
            help="Also keep the newest this many runs (setting retain_runs; default 0).",
        ),
    ] = None,
    orphan_hours: Annotated[
        float | None,
        typer.Option(
            "--orphan-hours",
            min=0,
            help="Delete unreferenced files only when older than this (setting orphan_hours; default 72).",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be removed; change nothing.")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="text or json.")] = "text",
) -> None:
    """Expire the snapshots no retained run needs, then delete the files nothing refers to.

    Retained runs keep `--as-of` and `audit verify`; the batch registry and raw data are never
    removed. Takes the writer lock; readers are not disturbed."""
    from costlake.ops.maintain import Policy
    from costlake.ops.maintain import maintain as run_maintain

    check_choice("--format", fmt, ("text", "json"))
    wh = state.warehouse()
    s = wh.settings
    policy = Policy(
        s.retain_days if retain_days is None else retain_days,
        s.retain_runs if retain_runs is None else retain_runs,
        s.orphan_hours if orphan_hours is None else orphan_hours,
    )
    report = run_maintain(wh, policy, dry_run=dry_run)
    _print(report, fmt, remote=wh.remote)


def _print(report: MaintainReport, fmt: str, *, remote: bool) -> None:
    dry_run, policy = report.dry_run, report.policy
    verb = "would remove" if dry_run else "removed"
    summary = {
        "dry_run": dry_run,
        "retention": policy.describe(),
        "runs_retained": len(report.retained),
        "runs_expired": len(report.expired_runs),
        "snapshots_expired": {t.table: len(t.snapshots) for t in report.tables if t.snapshots},
        "files_compacted": report.compacted,
        "files_removed": report.orphans.files + report.plans.files + report.cache.files,
        "bytes_freed": report.freed_bytes,
    }
    if fmt == "json":
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    out.print(f"retention: {policy.describe()}; {len(report.retained)} run(s) kept", markup=False)
    verb = "would be expired" if dry_run else "expired"
    out.print(f"{len(report.expired_runs)} run(s) {verb} by this maintenance", markup=False)
    for name, merged in report.compacted.items():
        out.print(f"{name}: {'would merge' if dry_run else 'merged'} {merged} files into one", markup=False)
    for t in report.tables:
        if t.snapshots:
            out.print(f"{t.table}: {verb} {len(t.snapshots)} snapshot(s)", markup=False)
    removed = "would be removed" if dry_run else "removed"  # files are deleted, snapshots expired
    for name, part in (("unreferenced files", report.orphans), ("plan-cache entries", report.plans)):
        out.print(f"{name}: {removed} {part.files} ({_size(part.bytes)})", markup=False)
    if remote:
        out.print(
            f"local cache: {removed} {report.cache.files} file(s) ({_size(report.cache.bytes)})", markup=False
        )
    out.print(f"{'would free' if dry_run else 'freed'} {_size(report.freed_bytes)}", markup=False)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"
