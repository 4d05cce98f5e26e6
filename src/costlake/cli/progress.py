"""Progress bars on stderr for long commands: how much is done, the rate and the time left.

Shown only when stderr is a terminal and `--quiet` was not given; the bar disappears when the command
ends, so the terminal keeps only the results. Descriptions may hold a file name from the user (or
from a billing delivery): they are shown as plain text, never as rich markup.
"""

from __future__ import annotations

import contextlib
import unicodedata
from collections.abc import Iterator
from typing import TYPE_CHECKING

from costlake.cli.context import err, state
from costlake.logs import Progress, reporting

if TYPE_CHECKING:
    import rich.progress

_LONGEST = 60  # characters of a description; a 4 KB file name must not fill the screen


class BarProgress(Progress):
    """The current task as one rich progress bar: description, bar, done / total, rate, time left."""

    def __init__(self, bar: rich.progress.Progress) -> None:
        super().__init__()
        self.bar = bar
        self.task: rich.progress.TaskID | None = None

    def start(self, description: str, total: float | None = None, unit: str = "steps") -> None:
        """A new task in place of the last one (its rate and time left start afresh)."""
        if self.task is not None:
            self.bar.remove_task(self.task)
        self.task = self.bar.add_task(plain(description), total=total, unit=unit)
        super().start(description, total, unit)

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """Take the bar off the terminal while the block prints a result on stdout, then put it back."""
        self.bar.stop()
        try:
            yield
        finally:
            self.bar.start()

    def update(
        self, *, completed: float | None = None, total: float | None = None, description: str | None = None
    ) -> None:
        if self.task is None:
            return
        self.bar.update(
            self.task,
            completed=completed,
            total=total,
            description=None if description is None else plain(description),
        )


def plain(text: str) -> str:
    """`text` as one short line of plain text: rich markup escaped, control characters as escapes."""
    from rich.markup import escape

    shown = "".join(
        ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in ("Cc", "Cf", "Cs") else ch
        for ch in text
    )
    return escape(shown if len(shown) <= _LONGEST else shown[: _LONGEST - 1] + "…")


def _columns() -> list[rich.progress.ProgressColumn]:
    from rich.progress import (
        BarColumn,
        SpinnerColumn,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        _DoneColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    ]


def _DoneColumn() -> rich.progress.ProgressColumn:  # noqa: N802 - a column, named like one
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Done(ProgressColumn):
        def render(self, task: rich.progress.Task) -> Text:
            unit = task.fields.get("unit", "")
            done, total = task.completed, task.total
            if total is None and not done:
                return Text("")  # a step whose size is unknown: the spinner says it is working
            if unit == "bytes":
                shown = f"{done / 1e6:,.1f}" + (f"/{total / 1e6:,.1f}" if total else "") + " MB"
            else:
                shown = f"{done:,.0f}" + (f"/{total:,.0f}" if total else "") + f" {unit}"
            return Text(shown, style="progress.download")

    return Done()


def _RateColumn() -> rich.progress.ProgressColumn:  # noqa: N802 - a column, named like one
    from rich.progress import ProgressColumn
    from rich.text import Text

    class Rate(ProgressColumn):
        def render(self, task: rich.progress.Task) -> Text:
            speed, unit = task.finished_speed or task.speed, task.fields.get("unit", "")
            if not speed:
                return Text("", style="progress.data.speed")
            if unit == "bytes":
                return Text(f"{speed / 1e6:,.1f} MB/s", style="progress.data.speed")
            return Text(f"{speed:,.1f} {unit}/s", style="progress.data.speed")

    return Rate()


@contextlib.contextmanager
def progress_bars() -> Iterator[Progress]:
    """Report the progress of the block's work on stderr (nowhere when stderr is not a terminal or
    with --quiet)."""
    if state.quiet or not err.is_terminal:
        yield Progress()
        return
    from rich.progress import Progress as Bars

    # stdout is not redirected: results printed meanwhile must stay on stdout (see `paused`).
    bars = Bars(*_columns(), console=err, transient=True, redirect_stdout=False)
    with bars, reporting(BarProgress(bars)) as shown:
        yield shown
