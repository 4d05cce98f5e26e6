"""The `costlake` command line: one typer sub-app per command group, composed here.

Exit codes: 0 success; 1 usage or input error (one line, no traceback); 2 a quality gate held back at
least one partition; 3 any other costlake failure. Nothing in the package imports the CLI.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

try:  # typer >= 0.24 carries its own copy of click
    from typer._click import exceptions as click_exceptions
except ImportError:  # pragma: no cover - older typer on the real click
    from click import exceptions as click_exceptions  # type: ignore[no-redef]

from costlake.cli import anomalies, explain, lake, synthetic, tenants
from costlake.cli.context import err, state
from costlake.errors import CostlakeError
from costlake.logs import LOG_FORMATS, configure_logging

app = typer.Typer(
    help="costlake: finance-grade cloud-cost lake on Apache Iceberg.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(lake.app)
app.add_typer(tenants.app, name="tenants")
app.add_typer(anomalies.app)
app.add_typer(explain.app)
app.add_typer(synthetic.app)


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
    log_level: Annotated[
        str | None,
        typer.Option(
            "--log-level",
            help="debug, info, warning or error (env COSTLAKE_LOG_LEVEL; default warning); logs go to "
            "stderr.",
        ),
    ] = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            "--log-format",
            help="text or json: one JSON object per line, with each phase's duration "
            "(env COSTLAKE_LOG_FORMAT; default text).",
        ),
    ] = None,
) -> None:
    state.overrides = {"warehouse": warehouse, "engine": engine, "log_level": log_level}
    if log_format is not None:
        state.overrides["log_format"] = log_format
    settings = state.settings()
    configure_logging(settings.log_level, settings.log_format)


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


__all__ = ["LOG_FORMATS", "app", "main"]
