"""The console the commands and jobs print results on (rich)."""

from __future__ import annotations

from rich.console import Console


def stdout_console() -> Console:
    """A console for standard output; when piped, wide enough that tables do not wrap mid-value."""
    console = Console()
    return console if console.is_terminal else Console(width=200)
