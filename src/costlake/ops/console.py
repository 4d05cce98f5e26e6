"""The consoles the commands and jobs print results on (rich).

Text from billing and tenants files passes through them, so neither reads `:name:` as an emoji code
(rich's default: a file named `:warning: bill.csv` would print as `⚠ bill.csv`); markup is off wherever
such text is printed (`cli/context.py`'s `say` and `warn`).
"""

from __future__ import annotations

from rich.console import Console


def stdout_console() -> Console:
    """A console for standard output; when piped, wide enough that tables do not wrap mid-value."""
    console = Console(emoji=False)
    return console if console.is_terminal else Console(width=200, emoji=False)


def stderr_console() -> Console:
    """A console for standard error (warnings, the one line of an error, progress bars)."""
    return Console(stderr=True, emoji=False)
