"""`python -m costlake` and the `costlake` console script.

The signal handlers go in before the heavy imports (typer, PyArrow, PyIceberg, DuckDB take a second
or two): an interrupt that early has nothing to clean up, so it prints its one line and exits at
once; `costlake.cli.main` then installs the handlers that unwind a running command.
"""

from __future__ import annotations

import os
import signal
import sys


def _early_exit(signum: int, _frame: object) -> None:
    sys.stderr.write("interrupted\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _early_exit)
    from costlake.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
