"""Commands over the lake itself: ingest, run, backfill, validate, audit, query, catalog DDL."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from costlake.cli.context import check_choice, out, parse_date, print_result, state, warn
from costlake.cli.progress import progress_bars
from costlake.errors import GateFailure, InputError

if TYPE_CHECKING:
    from costlake.pipeline.ingest import IngestResult

app = typer.Typer()
audit_app = typer.Typer(help="Prove published content against raw.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
catalog_app = typer.Typer(help="Query the lake from other engines.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")


_PartOf = Annotated[
    str | None,
    typer.Option(
        "--part-of",
        metavar="BATCH_ID",
        help="Add the files as more parts of the delivery that batch BATCH_ID belongs to (a part "
        "that arrived later than the others).",
    ),
]

_Manifest = Annotated[
    str | None,
    typer.Option(
        "--manifest",
        metavar="PATH|S3_URI",
        help="Ingest the data files an AWS export manifest lists, as the parts of one delivery: "
        "a CUR's <report>-Manifest.json (reportKeys) or a Data Exports manifest (dataFiles), either in "
        "a local copy of the export that keeps its layout (aws s3 sync) or at its s3:// URI (the "
        "files are downloaded to a scratch folder; needs costlake[aws]). Instead of FILES.",
    ),
]


@app.command()
def ingest(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Billing files to ingest, each as one batch.", show_default=False),
    ] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="auto (detect from the CSV header or Parquet schema), native, focus or cur.",
        ),
    ] = "auto",
    reparse: Annotated[
        bool,
        typer.Option(
            "--reparse",
            help="Read files that were already ingested again with the current parser (after a parser "
            "fix): each becomes a new batch that replaces the file's earlier reading from the next run "
            "on, whatever that reading's ingestion times; the earlier raw rows stay, no longer counted.",
        ),
    ] = False,
    parts: Annotated[
        bool,
        typer.Option(
            "--parts",
            help="The files are the parts of one delivery (a FOCUS or CUR export written as several "
            "files): each becomes a batch, and a billing period's latest delivery counts all of them "
            "instead of the last file alone. Always a new delivery of exactly these files (a part "
            "ingested before is read again), unless they already are the latest delivery of their "
            "periods; every part is checked "
            "before the first is committed. After an interruption, run the same command again.",
        ),
    ] = False,
    part_of: _PartOf = None,
    manifest: _Manifest = None,
) -> None:
    """Land billing files in the raw zone as immutable batches; bad rows go to quarantine."""
    from costlake.cli.ingesting import landed_note, print_ingested, to_ingest
    from costlake.pipeline.ingest import ingest_files

    landed: list[IngestResult] = []
    with progress_bars() as progress, to_ingest(files or [], manifest, parts, reparse, part_of) as given:
        wh = state.warehouse(create=True)

        def committed(result: IngestResult) -> None:
            landed.append(result)
            state.interrupt_note = landed_note(landed, len(given.files), parts=given.parts, part_of=part_of)

        def show(result: IngestResult) -> None:
            with progress.paused():
                print_ingested(result, given.sources)

        ingest_files(
            wh, given.files, fmt, reparse=reparse, parts=given.parts, part_of=part_of, on_result=show,
            sources=given.sources, on_commit=committed,
        )  # fmt: skip
        if given.warning and landed:
            warn(given.warning)


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
    window = (parse_date("--from", first), parse_date("--to", last))
    if window[0] > window[1]:
        raise InputError(f"--from {first} is after --to {last}")
    _run_and_report(window)


def _run_and_report(window: tuple[dt.date, dt.date] | None = None) -> None:
    from costlake.ops.publish import publish_and_detect
    from costlake.ops.report import print_run

    wh = state.warehouse()
    with progress_bars() as progress:
        report = publish_and_detect(wh, progress.start, backfill=window)
    print_run(report, out)
    if report.held_back:
        days = ", ".join(d.isoformat() for d in report.held_back)
        raise GateFailure(f"quality gate held back {len(report.held_back)} day(s): {days}")


@app.command()
def validate(
    first: Annotated[str | None, typer.Option("--from", help="First usage date to check.")] = None,
    last: Annotated[str | None, typer.Option("--to", help="Last usage date to check.")] = None,
) -> None:
    """Run the quality gate over the published tables; exit code 2 if any check fails."""
    from costlake.pipeline.validate import validate as check

    window = (parse_date("--from", first) if first else None, parse_date("--to", last) if last else None)
    if window[0] and window[1] and window[0] > window[1]:  # it checked no day and passed
        raise InputError(f"--from {first} is after --to {last}")
    days, findings = check(state.warehouse(), *window)
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
    past = f"; {report.past_retention} run(s) past retention" if report.past_retention else ""
    out.print(
        f"verified {report.partitions} partition(s) of {len(report.runs)} run(s): "
        f"{len(report.mismatches)} mismatch(es){past}"
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
    tenant: Annotated[
        str | None,
        typer.Option(
            "--tenant",
            help="Show only this tenant's accounts (their rows, and the dimension keys they use); "
            "tables without an account are empty.",
        ),
    ] = None,
) -> None:
    """Run SQL over every table (raw_billing_events, daily_account_cost, dim_account, …)."""
    from costlake.catalog.views import run_query

    check_choice("--format", fmt, ("table", "csv", "json"))
    result = run_query(state.warehouse(), sql, as_of, tenant=tenant)
    print_result(result, fmt)


@catalog_app.command("ddl")
def catalog_ddl(
    dialect: Annotated[str, typer.Option(help="athena, trino or spark.")] = "athena",
    catalog_name: Annotated[str, typer.Option(help="Iceberg catalog name in Trino or Spark.")] = "iceberg",
) -> None:
    """Print the statements that make the lake's tables queryable from Athena, Trino or Spark."""
    from costlake.catalog.ddl import statements
    from costlake.catalog.refs import table_refs

    wh = state.warehouse()
    wh.ensure_tables()
    try:
        lines = statements(
            dialect, table_refs(wh), catalog_name=catalog_name, glue=wh.settings.catalog == "glue"
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    sys.stdout.write("\n\n".join(lines) + "\n")
