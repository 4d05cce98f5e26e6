"""`python -m costlake` and the `costlake` console script.

The signal handlers go in before the heavy imports (typer, PyArrow, PyIceberg, DuckDB take a second
or two): an interrupt that early has nothing to clean up, so it prints its one line (a JSON one
with `--log-format json` or COSTLAKE_LOG_FORMAT=json; a costlake.toml is not read yet) and exits at
once; `costlake.cli.main` then installs the handlers that unwind a running command.

NumPy is told not to ask for transparent huge pages (NUMPY_MADVISE_HUGEPAGE=0, read when NumPy is
imported) unless the environment says otherwise. Detection's screens make many short-lived arrays
of a few MB; on a Linux kernel whose transparent hugepage policy is `madvise`, NumPy's request makes
the first touch of each fresh allocation fault in (and possibly compact memory for) 2 MB pages. In
a `run` on 10M events that tripled the totals screen's time (0.83 s against 0.28 s).
"""

from __future__ import annotations

import os
import signal
import sys


def _early_exit(signum: int, _frame: object) -> None:
    code = 128 + signum
    if _json_logs(sys.argv[1:]):  # the shape of `costlake.cli`'s error lines, without importing it
        line = (
            f'{{"level": "error", "logger": "costlake.cli", "message": "interrupted", "exit_code": {code}}}'
        )
    else:
        line = "interrupted"
    sys.stderr.write(line + "\n")
    sys.stderr.flush()
    os._exit(code)


def _json_logs(args: list[str]) -> bool:
    """Whether the command line (`--log-format json` or `=json`, the last one winning) or else
    COSTLAKE_LOG_FORMAT asks for JSON lines."""
    chosen = os.environ.get("COSTLAKE_LOG_FORMAT", "text")
    for i, arg in enumerate(args):
        if arg == "--log-format" and i + 1 < len(args):
            chosen = args[i + 1]
        elif arg.startswith("--log-format="):
            chosen = arg.partition("=")[2]
    return chosen == "json"


def main() -> None:
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _early_exit)
    from costlake.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
