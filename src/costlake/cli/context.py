"""What every command group shares: the global options, the consoles, and how results are printed."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import sys
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from rich.table import Table
from rich.text import Text

from costlake.errors import InputError
from costlake.ops.console import stderr_console, stdout_console
from costlake.text import neutralise_cell
from costlake.text.terminal import escape_controls

if TYPE_CHECKING:  # imported on first use: `--help` and reading commands start without them
    import pyarrow as pa

    from costlake.lake.warehouse import Warehouse
    from costlake.settings import Settings


out = stdout_console()
err = stderr_console()


class State:
    """The global options of this invocation (`--warehouse`, `--engine`, …) as settings overrides."""

    overrides: dict[str, Any] = {}
    debug = False
    quiet = False  # --quiet: no progress bars (they are shown only on a terminal anyway)
    log_json = False  # --log-format json: every line on stderr is a JSON object, errors included
    # What a command interrupted now has done and how to finish it, said after "interrupted" ("" says
    # nothing more): set by a command whose work lands in several commits, as each one lands.
    interrupt_note = ""
    # The command leaves threads it cannot stop (`serve`: those of requests it cancelled): its line
    # written, the process ends without waiting for them.
    exit_at_once = False

    def settings(self) -> Settings:
        from pydantic import ValidationError  # pydantic-settings costs --help a third of its time

        from costlake.settings import load_settings

        try:
            return load_settings(**self.overrides)
        except ValidationError as exc:  # one line: each field and what is wrong with it
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'settings'}: {e['msg']} (got {e.get('input')!r})"
                for e in exc.errors()
            )
            raise InputError(f"invalid settings: {problems}") from None
        except Exception as exc:  # a broken costlake.toml and the like
            raise InputError(f"invalid settings: {str(exc).splitlines()[0] if str(exc) else exc}") from None

    def warehouse(self, *, create: bool = False) -> Warehouse:
        """The warehouse; a command blocked by another writer says once who it waits for. Only a
        command that brings data in may `create` it; the others refuse a folder without one."""
        from costlake.lake.home import check_exists
        from costlake.lake.warehouse import Warehouse

        settings = self.settings()
        if not create:
            check_exists(settings)
        if self.log_json:  # the lock logs its waiting line as a warning, as JSON
            return Warehouse(settings)
        return Warehouse(
            settings,
            on_wait=warn,
        )


state = State()


def parse_date(flag: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"{flag} must be a date YYYY-MM-DD, not {text!r}") from None


def check_choice(flag: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise InputError(f"{flag} must be {', '.join(choices[:-1])} or {choices[-1]}, not {value!r}")


def plain(value: Any) -> Any:
    """A value as printed: exact decimals in plain notation (`0.000000000000`, never `0E-12`).

    >>> from decimal import Decimal
    >>> plain(Decimal("0E-12")), plain(Decimal("1.5E+3")), plain("x"), plain([Decimal("1E-12")])
    ('0.000000000000', '1500', 'x', ['0.000000000001'])
    >>> plain(float("nan")), plain(float("-inf"))
    ('nan', '-inf')
    """
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, float) and not math.isfinite(value):  # JSON has no NaN or Infinity
        return str(value)
    if isinstance(value, list):  # a list or an array of decimals: each in plain notation
        return [plain(v) for v in value]
    if isinstance(value, dict):  # a struct or a map
        return {k: plain(v) for k, v in value.items()}
    return value


def printable(text: str) -> str:
    r"""Text for a terminal: control and format characters (escape sequences that could retitle,
    recolour or rewrite the screen, bidirectional overrides that reorder it) shown as escapes instead
    of sent; tabs and newlines stay (a table cell may hold them).

    >>> printable(chr(27) + "]0;x" + chr(7) + "ok" + chr(0x202E))
    '\\x1b]0;x\\x07ok\\u202e'
    """
    return escape_controls(text, keep="\t\n")


def say(text: str) -> None:
    """One line of text that may hold data (a tenant, a label, a file name) on stdout: never markup,
    never a terminal control sequence, never a second line."""
    out.print(escape_controls(text), markup=False, highlight=False, soft_wrap=True)


def warn(text: str) -> None:
    """One line on stderr (a warning, a note on what a command waits for) that may hold data: never
    markup, never a terminal control sequence, never a second line."""
    err.print(escape_controls(text), markup=False, highlight=False, soft_wrap=True)


def print_secret(secret: str) -> None:
    """A secret (an API key, a signing secret) alone on stdout's last line, as plain bytes, so that
    `| tail -1` takes exactly it; printed once, never logged."""
    out.file.flush()
    sys.stdout.write(secret + "\n")


def print_result(result: pa.Table, fmt: str, title: str | None = None) -> None:
    """A query result as a table on the terminal, CSV or JSON (decimals as exact strings).

    Cell text is data: never read as markup on the terminal, and neutralised in CSV so that a
    spreadsheet does not run a cell like `=HYPERLINK(...)` as a formula. CSV and JSON sent to a file or
    a pipe hold the values as they are; CSV shown on a terminal has its control and format characters
    escaped, as the table has (JSON escapes them itself)."""
    names = result.column_names
    # Rows by position: two columns of one name (a join of two tables) keep both their values.
    rows = list(zip(*(column.to_pylist() for column in result.columns), strict=True))
    if fmt == "json":
        if twice := sorted({n for n in names if names.count(n) > 1}):
            raise InputError(
                f"columns named more than once: {', '.join(printable(n)[:60] for n in twice[:5])}; a JSON "
                "object holds one value per name, so give each its own name (AS)"
            )
        objects = [{n: plain(v) for n, v in zip(names, row, strict=True)} for row in rows]
        sys.stdout.write(json.dumps(objects, default=lambda v: str(plain(v)), indent=2) + "\n")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        shown = printable if sys.stdout.isatty() else str
        writer.writerow([neutralise_cell(shown(name)) for name in names])
        for row in rows:
            writer.writerow([_csv_cell(v, shown) for v in row])
        sys.stdout.write(buffer.getvalue())
    else:
        table = Table(title=title)
        for name in names:
            table.add_column(Text(printable(name)))
        for row in rows:
            table.add_row(*(Text("" if v is None else printable(str(plain(v)))) for v in row))
        out.print(table)


def _csv_cell(value: Any, shown: Callable[[str], str]) -> Any:
    """A CSV cell: empty for NULL, exact decimals in plain notation, text through `shown` and never a
    formula a spreadsheet would run."""
    if value is None:
        return ""
    value = plain(value)
    return neutralise_cell(shown(value) if isinstance(value, str) else value)
