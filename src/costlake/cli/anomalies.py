"""`costlake anomalies` and `costlake plot`: detect, list and chart cost anomalies."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from costlake.cli.context import check_choice, out, print_result, say, state
from costlake.cli.progress import progress_bars
from costlake.errors import InputError

if TYPE_CHECKING:
    import pyarrow as pa

app = typer.Typer()


@app.command()
def anomalies(
    method: Annotated[
        str | None,
        typer.Option(help="baseline or day_over_day (setting anomaly_method; default baseline)."),
    ] = None,
    account: Annotated[str | None, typer.Option(help="Only list this account's anomalies.")] = None,
    limit: Annotated[
        int, typer.Option(min=0, max=1_000_000, help="List at most this many, largest impact first.")
    ] = 20,
    fmt: Annotated[str, typer.Option("--format", help="table, csv or json.")] = "table",
    full: Annotated[
        bool,
        typer.Option(
            "--full",
            help="Analyse every series from its start. By default only the series whose data changed "
            "since the run the stored anomalies reflect are analysed again (a changed threshold or "
            "method analyses everything by itself).",
        ),
    ] = False,
) -> None:
    """Detect cost anomalies in the published data and list the largest.

    Only the series whose data changed since the last detection are analysed again (`--full`: all),
    and only the days whose anomalies changed are committed to `cost_anomalies`. Names that read like
    text are listed as labels, e.g. `service 3f2a9c (name withheld)` (`costlake query` shows what is
    stored)."""
    from costlake.anomalies.detect import Params
    from costlake.anomalies.job import update_anomalies
    from costlake.catalog.views import run_query

    check_choice("--format", fmt, ("table", "csv", "json"))
    if method is not None:
        check_choice("--method", method, ("baseline", "day_over_day"))
        state.overrides["anomaly_method"] = method
    wh = state.warehouse()
    with progress_bars():
        report = update_anomalies(wh, Params.from_settings(wh.settings), full=full)
    if fmt == "table":
        out.print(report.summary(), markup=False)
    where = "" if account is None else "WHERE account_id = " + "'" + account.replace("'", "''") + "'"
    listing = run_query(
        wh,
        f"""SELECT usage_date, account_id, service_name, kind,
                   CAST(actual_usd AS DECIMAL(38,2)) AS actual_usd,
                   CAST(expected_usd AS DECIMAL(38,2)) AS expected_usd,
                   CAST(impact_usd AS DECIMAL(38,2)) AS impact_usd,
                   CAST(impact_pct AS DECIMAL(38,1)) AS impact_pct,
                   duration_days, top_dimension, top_value,
                   CAST(top_contribution_usd AS DECIMAL(38,2)) AS top_contribution_usd
            FROM cost_anomalies {where}
            ORDER BY abs(impact_usd) DESC, usage_date, account_id, service_name LIMIT {int(limit)}""",
    )
    print_result(_shown(listing), fmt)


def _shown(listing: pa.Table) -> pa.Table:
    """The listing with its names through the name policy (`costlake.text.names`)."""
    from costlake.text.names import shown_rows

    columns = {"account_id": "account_id", "service_name": "service_name", "top_value": "top_dimension"}
    rows = shown_rows(listing.to_pylist(), columns)
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=listing.schema)


@app.command()
def plot(
    account: Annotated[str, typer.Option(help="Account id to chart.")],
    service: Annotated[str | None, typer.Option(help="One service (as published, e.g. amazonec2).")] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--out", help="PNG path (default cost_<account>[_<service>].png here); the HTML goes beside it."
        ),
    ] = None,
) -> None:
    """Chart an account's daily cost (or one service's) with the expected band and the anomalies."""
    from costlake.anomalies.detect import Params
    from costlake.anomalies.plot import chart_for, write_chart
    from costlake.anomalies.series import load_series

    if output is not None and output.suffix.lower() != ".png":
        raise InputError(f"--out {output}: the chart is a PNG, name it *.png (the HTML goes beside it)")
    wh = state.warehouse()
    chart = chart_for(load_series(wh, account, service), account, service, Params.from_settings(wh.settings))
    try:
        png, page = write_chart(chart, output or default_chart_path(account, service))
    except OSError as exc:
        raise InputError(f"cannot write the chart: {exc}") from None
    say(f"wrote {png} and {page} ({len(chart.days)} days, {len(chart.anomalies)} anomalies)")


def default_chart_path(account: str, service: str | None) -> Path:
    """`cost_<account>[_<service>].png` in the current folder, each name as letters, digits, `.`, `-`
    and `_` only, at most 80 characters (the others become `_`): a service name as billed may hold a
    `/`, a line break or a megabyte, and must not choose where the chart goes.

    >>> default_chart_path("1234", "../../etc/x$y$")
    PosixPath('cost_1234_.._.._etc_x_y_.png')
    """
    safe = [re.sub(r"[^A-Za-z0-9._-]", "_", part)[:80] for part in (account, service) if part]
    return Path("cost_" + "_".join(safe) + ".png")
