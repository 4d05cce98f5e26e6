"""`costlake runs list|show`: the history of finished runs, from the lake's own records."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from costlake.cli.context import check_choice, out, printable, say, state
from costlake.errors import InputError

if TYPE_CHECKING:
    from costlake.ops.runs import Partition, RunSummary

app = typer.Typer(help="The history of finished runs: what each one read, published and held back.")

FORMATS = ("table", "json")


@app.command("list")
def list_runs(
    limit: Annotated[int, typer.Option(help="Show the newest this many runs; 0 shows every run.")] = 20,
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Finished runs, newest first: when, how long, batches, days committed and held back, warnings.

    A run that found nothing to publish commits nothing and is not listed."""
    from costlake.ops.runs import list_runs as history

    check_choice("--format", fmt, FORMATS)
    if limit < 0:
        raise InputError(f"--limit must be 0 (every run) or more, not {limit}")
    runs = history(state.warehouse())[::-1]
    shown = runs[:limit] if limit else runs
    if fmt == "json":
        _json([r.as_dict() for r in shown])
        return
    if not runs:
        out.print("no run has finished yet")
        return
    _runs_table(shown)
    if len(shown) < len(runs):
        out.print(f"{len(shown)} of {len(runs)} runs shown (--limit 0 shows every run)")


@app.command("show")
def show_run(
    run: Annotated[str, typer.Argument(help="A run id, or the start of one that names a single run.")],
    fmt: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """One run, partition by partition: status, rows, content hash, and why a day was held back.

    The JSON output adds the batches each partition's rebuild read and the gate's findings."""
    from costlake.ops.runs import show_run as one

    check_choice("--format", fmt, FORMATS)
    summary, parts = one(state.warehouse(), run)
    if fmt == "json":
        _json(summary.as_dict() | {"partitions": [_partition(p) for p in parts]})
        return
    _runs_table([summary])
    if summary.covers:
        say(f"finished the commits of interrupted run(s): {', '.join(summary.covers)}")
    _partitions_table(parts)


def _runs_table(runs: list[RunSummary]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for name in ("run", "started (UTC)", "duration", "batches", "days", "held back", "warnings"):
        table.add_column(name, justify="right" if name not in ("run", "started (UTC)") else "left")
    for r in runs:
        started = r.started_at.strftime("%Y-%m-%d %H:%M:%S") if r.started_at else "-"
        duration = f"{r.duration_s:.1f} s" if r.duration_s is not None else "-"
        cells = (
            r.run_id,
            started,
            duration,
            len(r.batches),
            r.days_committed,
            r.days_held_back,
            r.gate_warnings,
        )
        table.add_row(*(Text(str(c)) for c in cells))
    out.print(table)


def _partitions_table(parts: list[Partition]) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table()
    for name in ("table", "day", "status", "rows", "content hash", "reason"):
        table.add_column(name, justify="right" if name == "rows" else "left", overflow="fold")
    for p in parts:
        cells = (p.table, p.usage_date.isoformat(), p.status, f"{p.rows:,}", p.content_hash, p.reason)
        table.add_row(*(Text(printable(str(c))) for c in cells))
    out.print(table)


def _partition(p: Partition) -> dict[str, Any]:
    return {
        "table": p.table,
        "usage_date": p.usage_date.isoformat(),
        "status": p.status,
        "rows": p.rows,
        "content_hash": p.content_hash,
        "batches": [b for b in p.batches.split(",") if b],
        "findings": p.findings,
    }


def _json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")
