"""The `costlake` command line. Thin: each command calls the package and prints the result.

Exit codes: 0 success; 1 usage or input error (one line, no traceback); 2 a quality gate held back at
least one partition; 3 any other costlake failure.
"""

from __future__ import annotations

import csv
import datetime as dt
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

from costlake.errors import CostlakeError, GateFailure, InputError
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
audit_app = typer.Typer(help="Prove published content against raw.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
catalog_app = typer.Typer(help="Query the lake from other engines.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")

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
        typer.Option(
            "--engine", help="Compute engine: duckdb or spark (env COSTLAKE_ENGINE; default duckdb)."
        ),
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
    """Publish everything ingested since the last run: rebuild the affected days through stages
    1-3, hold back days that fail the quality gate (exit code 2), commit the rest atomically."""
    _run_and_report()


@app.command()
def backfill(
    first: Annotated[str, typer.Option("--from", help="First usage date to rebuild (YYYY-MM-DD).")],
    last: Annotated[str, typer.Option("--to", help="Last usage date to rebuild (YYYY-MM-DD).")],
) -> None:
    """Rebuild a window of days from raw; days whose content does not change are not committed."""
    window = (_date("--from", first), _date("--to", last))
    if window[0] > window[1]:
        raise InputError(f"--from {first} is after --to {last}")
    _run_and_report(window)


def _date(flag: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{flag} must be a date YYYY-MM-DD, not {text!r}") from None


def _run_and_report(window: tuple[dt.date, dt.date] | None = None) -> None:
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

        report = run_pipeline(wh, step, backfill=window)
    print_run(report)
    if report.held_back:
        days = ", ".join(d.isoformat() for d in report.held_back)
        raise GateFailure(f"quality gate held back {len(report.held_back)} day(s): {days}")


def _ranges(days: list[dt.date]) -> str:
    """2025-01-01..2025-01-03, 2025-01-07"""
    spans: list[list[dt.date]] = []
    for day in sorted(days):
        if spans and (day - spans[-1][1]).days == 1:
            spans[-1][1] = day
        else:
            spans.append([day, day])
    return ", ".join(a.isoformat() if a == b else f"{a}..{b}" for a, b in spans)


def print_run(report: Any) -> None:
    if not report.reasons and not report.changed:
        out.print(f"run {report.run_id}: nothing new to publish ({report.seconds:.1f} s)")
        return
    out.print(
        f"run {report.run_id}: {len(report.batches)} new batch(es), {len(report.reasons)} day(s) to rebuild"
    )
    by_reason: dict[str, list[dt.date]] = {}
    for day, reasons in report.reasons.items():
        for reason in reasons:
            by_reason.setdefault(reason, []).append(day)
    for reason, days in sorted(by_reason.items()):
        out.print(f"  {reason}: {_ranges(days)}")
    table = Table("table", "committed days", "unchanged", "held back", "rows written", "snapshot")
    for t in report.tables:
        table.add_row(
            t.table,
            _ranges(t.committed) or "-",
            str(len(t.unchanged)),
            _ranges(t.held_back) or "-",
            f"{t.rows:,}",
            str(t.snapshot_id or "-"),
        )
    out.print(table)
    for f in report.findings:
        out.print(f"  gate {f.severity}: {f.usage_date} {f.check}: {f.detail}", markup=False)
    a = report.anomalies
    if a is not None and not a.skipped:
        out.print(
            f"anomalies: {a.anomalies:,} over {a.series:,} series; {len(a.changed_days)} day(s) changed "
            f"(+{a.added} / -{a.removed})"
        )
    out.print(f"done in {report.seconds:.1f} s")


@app.command()
def validate(
    first: Annotated[str | None, typer.Option("--from", help="First usage date to check.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last usage date to check.")] = None,
) -> None:
    """Run the quality gate over the published tables; exit code 2 if any check fails."""
    from costlake.pipeline.validate import validate as check

    days, findings = check(
        state.warehouse(), _date("--from", first) if first else None, _date("--to", last) if last else None
    )
    errors = [f for f in findings if f.severity == "error"]
    for f in findings:
        out.print(f"{f.severity}: {f.usage_date} {f.check}: {f.detail}", markup=False)
    out.print(f"checked {days} day(s): {len(errors)} error(s), {len(findings) - len(errors)} warning(s)")
    if errors:
        raise GateFailure(f"quality gate failed on {len({f.usage_date for f in errors})} day(s)")


@audit_app.command("verify")
def audit_verify(
    run_id: Annotated[
        str | None, typer.Option("--run", help="Run id to verify (default: every run).")
    ] = None,
) -> None:
    """Replay runs from raw and prove the published content hashes; exit code 2 names what differs."""
    from costlake.pipeline.audit import verify

    report = verify(state.warehouse(), run_id)
    for mismatch in report.mismatches:
        out.print(mismatch.describe(), markup=False)
    out.print(
        f"verified {report.partitions} partition(s) of {len(report.runs)} run(s): "
        f"{len(report.mismatches)} mismatch(es)"
    )
    if report.mismatches:
        raise GateFailure(f"audit failed: {len(report.mismatches)} partition(s) differ from the publish log")


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL over the lake's tables, by name (DuckDB dialect).")],
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="Read every table as it was right after this run id.")
    ] = None,
) -> None:
    """Run SQL over every table (raw_billing_events, daily_account_cost, dim_account, …)."""
    from costlake.query import run_query

    if fmt not in ("table", "csv", "json"):
        raise InputError(f"--format must be table, csv or json, not {fmt!r}")
    result = run_query(state.warehouse(), sql, as_of)
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
    anomalies: Annotated[
        int,
        typer.Option(
            help="Inject this many known anomalies (spike, step up, new service, drop, region shift, in "
            "turn) and write them to anomalies_truth.csv."
        ),
    ] = 0,
) -> None:
    """Write realistic synthetic native billing files plus a tenants.csv."""
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
            anomalies=anomalies,
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    for path in result.files:
        out.print(f"wrote {path}")
    out.print(f"wrote {result.tenants_file}")
    if result.truth_file:
        out.print(f"wrote {result.truth_file} ({result.anomalies} injected anomalies)")
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


@catalog_app.command("ddl")
def catalog_ddl(
    dialect: Annotated[str, typer.Option(help="athena, trino or spark.")] = "athena",
    catalog_name: Annotated[str, typer.Option(help="Iceberg catalog name in Trino or Spark.")] = "iceberg",
) -> None:
    """Print the statements that make the lake's tables queryable from Athena, Trino or Spark."""
    from costlake.catalog.ddl import statements, table_refs

    wh = state.warehouse()
    wh.ensure_tables()
    try:
        lines = statements(
            dialect, table_refs(wh), catalog_name=catalog_name, glue=wh.settings.catalog == "glue"
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    sys.stdout.write("\n\n".join(lines) + "\n")


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


# Commands kept in their own modules register themselves on `app` when imported.
from costlake import cli_anomalies, cli_explain  # noqa: E402,F401
