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
    from costlake.logs import exit_interrupted, json_logs_asked  # imported after the handlers go in

    exit_interrupted(128 + signum, json_logs_asked(sys.argv[1:]))


def main() -> None:
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _early_exit)
    os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")
    from costlake.cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    main()
