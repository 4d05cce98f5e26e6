"""The `costlake` command line. Thin: each command calls the package and prints the result.

Exit codes: 0 success; 1 usage or input error (one line, no traceback); 2 a quality gate held back at
least one partition; 3 any other costlake failure.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import pyarrow as pa
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

try:  # typer >= 0.24 carries its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from costlake.errors import CostlakeError, InputError
from costlake.lake.warehouse import Warehouse
from costlake.settings import Settings, load_settings

app = typer.Typer(
    help="costlake: finance-grade cloud-cost lake on Apache Iceberg.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tenants_app = typer.Typer(help="Account ownership: which tenant owns which account.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")

out = Console()
if not out.is_terminal:  # piped: wide tables, no wrapping mid-value
    out = Console(width=200)
err = Console(stderr=True)


class _State:
    overrides: dict[str, Any] = {}

    def settings(self) -> Settings:
        try:
            return load_settings(**self.overrides)
        except Exception as exc:  # pydantic's ValidationError: show it as a config error
            raise InputError(f"invalid settings: {exc}") from None

    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings())


state = _State()


@app.callback()
def _global(
    warehouse: Annotated[
        str | None,
        typer.Option(
            "--warehouse", "-w", help="Warehouse folder (env COSTLAKE_WAREHOUSE; default ./warehouse)."
        ),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="Compute engine: duckdb (env COSTLAKE_ENGINE; default duckdb)."),
    ] = None,
) -> None:
    state.overrides = {"warehouse": warehouse, "engine": engine}


@app.command()
def ingest(
    files: Annotated[list[Path], typer.Argument(help="Billing files to ingest, each as one batch.")],
    fmt: Annotated[str, typer.Option("--format", help="auto (detect from the header) or native.")] = "auto",
) -> None:
    """Land billing files in the raw zone as immutable batches; bad rows go to quarantine."""
    from costlake.pipeline.ingest import ingest_files

    results = ingest_files(state.warehouse(), files, fmt)
    for r in results:
        if r.skipped:
            out.print(f"{r.path}: already ingested as batch {r.batch_id}; nothing to do")
            continue
        out.print(
            f"{r.path}: batch {r.batch_id} ({r.source_format}): "
            f"{r.accepted:,} accepted, {r.quarantined:,} quarantined"
        )
        for reason, count in r.reasons:
            out.print(f"  quarantined {count:,} × {reason}")


@app.command()
def run() -> None:
    """Take newly ingested batches through the three stages and publish the affected days."""
    from costlake.pipeline.run import STEPS, run_pipeline

    wh = state.warehouse()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as progress:
        task = progress.add_task("starting", total=len(STEPS))

        def step(name: str) -> None:
            progress.update(task, description=name, completed=STEPS.index(name))

        report = run_pipeline(wh, step)
    _print_run(report)


def _print_run(report: Any) -> None:
    if not report.changed:
        out.print(f"run {report.run_id}: nothing new to publish ({report.seconds:.1f} s)")
        return
    out.print(f"run {report.run_id}: {len(report.batches)} new batch(es) in {report.seconds:.1f} s")
    table = Table("table", "partitions", "rows written", "files", "snapshot")
    for s in report.stages:
        span = f"{len(s.dates)} ({s.dates[0]} … {s.dates[-1]})" if s.dates else "0"
        table.add_row(s.table, span, f"{s.rows:,}", str(s.files), str(s.snapshot_id or "-"))
    out.print(table)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL over the lake's tables, by name (DuckDB dialect).")],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
) -> None:
    """Run SQL over every table (raw_billing_events, daily_account_cost, dim_account, …)."""
    from costlake.query import run_query

    if fmt not in ("table", "csv", "json"):
        raise InputError(f"--format must be table, csv or json, not {fmt!r}")
    result = run_query(state.warehouse(), sql)
    print_result(result, fmt)


def print_result(result: pa.Table, fmt: str, title: str | None = None) -> None:
    rows = result.to_pylist()
    if fmt == "json":
        sys.stdout.write(json.dumps(rows, default=str, indent=2) + "\n")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.column_names)
        writer.writerows([["" if v is None else v for v in row.values()] for row in rows])
        sys.stdout.write(buffer.getvalue())
    else:
        table = Table(*result.column_names, title=title)
        for row in rows:
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        out.print(table)


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Argument(help="Folder for the generated billing files.")],
    events: Annotated[int, typer.Option(help="Number of billing events (before re-deliveries).")] = 20_000,
    days: Annotated[int, typer.Option(help="Number of usage days.")] = 90,
    start: Annotated[str, typer.Option(help="First usage date (YYYY-MM-DD).")] = "2025-01-01",
    tenants: Annotated[int, typer.Option(help="Number of tenants.")] = 3,
    accounts_per_tenant: Annotated[int, typer.Option(help="Accounts per tenant.")] = 4,
    batches: Annotated[int, typer.Option(help="Number of delivery files.")] = 4,
    seed: Annotated[int, typer.Option(help="Random seed: same seed, same files.")] = 7,
) -> None:
    """Write realistic synthetic native billing files plus a tenants.csv."""
    import datetime as dt

    from costlake.generate import generate as make

    try:
        first = dt.date.fromisoformat(start)
    except ValueError:
        raise InputError(f"--start must be a date YYYY-MM-DD, not {start!r}") from None
    try:
        result = make(
            out_dir,
            events=events,
            days=days,
            start=first,
            tenants=tenants,
            accounts_per_tenant=accounts_per_tenant,
            batches=batches,
            seed=seed,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    for path in result.files:
        out.print(f"wrote {path}")
    out.print(f"wrote {result.tenants_file}")
    out.print(
        f"{result.rows:,} rows in {len(result.files)} file(s): "
        f"{result.redeliveries:,} re-deliveries, {result.credits:,} credits"
    )


@tenants_app.command("load")
def tenants_load(
    file: Annotated[Path, typer.Argument(help="CSV with account_id,tenant_id[,account_name].")],
) -> None:
    """Assign accounts to tenants (accounts with no owner belong to tenant 'unassigned')."""
    from costlake.pipeline.tenants import load_tenants

    updated, added = load_tenants(state.warehouse(), file)
    out.print(f"{file}: {updated} account(s) updated, {added} not seen yet added")


@app.command()
def demo(
    data: Annotated[Path, typer.Option(help="Folder for the generated demo files.")] = Path("demo-data"),
    events: Annotated[int, typer.Option(help="Number of billing events.")] = 60_000,
) -> None:
    """Generate 3 months of billing for 3 tenants, ingest, run, and show the result."""
    from costlake.demo import run_demo

    run_demo(state.warehouse(), data, events, out)


def main() -> None:
    """Entry point: map errors to exit codes and one-line messages."""
    try:
        app(standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        err.print("aborted")
        sys.exit(130)
    except click_exceptions.NoArgsIsHelpError:
        sys.exit(0)  # the help was shown: that is what was asked for
    except click_exceptions.ClickException as exc:
        err.print(f"error: {exc.format_message()}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(1)
    except CostlakeError as exc:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    sys.exit(0)
