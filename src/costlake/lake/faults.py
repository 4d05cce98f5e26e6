"""Crash injection for tests: `COSTLAKE_CRASH_AT=<point>` kills the process at that point.

The publish path calls `crash_point(name)` between its steps. With the variable unset this is a
dictionary lookup; with it set to the step's name the process dies on the spot with exit code 86,
without cleanup, as a power cut or `kill -9` would leave it.
"""

from __future__ import annotations

import os

ENV = "COSTLAKE_CRASH_AT"
EXIT_CODE = 86


def crash_point(name: str) -> None:
    if os.environ.get(ENV) == name:
        os._exit(EXIT_CODE)
