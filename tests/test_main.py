"""The console script's start-up: what it sets before the heavy imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Runs the console script's `main` with --help, then reports whether NumPy asks for huge pages
# (`_set_madvise_hugepage` returns the setting it replaces).
PROBE = """
import sys
from costlake.__main__ import main
sys.argv = ["costlake", "--help"]
try:
    main()
except SystemExit:
    pass
from numpy._core.multiarray import _set_madvise_hugepage
print("hugepage", _set_madvise_hugepage(False))
"""


@pytest.mark.parametrize(("given", "expected"), [(None, "False"), ("1", "True")])
def test_numpy_huge_pages_are_off_unless_the_environment_asks(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "NUMPY_MADVISE_HUGEPAGE"}
    if given is not None:
        env["NUMPY_MADVISE_HUGEPAGE"] = given
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == f"hugepage {expected}"


# A signal before `costlake.cli` has taken over (its imports take a second or two): the early
# handler's one line, in the format the command line or the environment asked for.
EARLY = """
import os, signal, sys
from costlake.__main__ import _early_exit
sys.argv = ["costlake", *sys.argv[1:]]
signal.signal(signal.SIGTERM, _early_exit)
os.kill(os.getpid(), signal.SIGTERM)
"""


@pytest.mark.parametrize(
    ("args", "env", "json_line"),
    [
        ([], {}, False),
        (["--log-format", "json", "ingest", "x.csv"], {}, True),
        (["--log-format=json", "run"], {}, True),
        (["run"], {"COSTLAKE_LOG_FORMAT": "json"}, True),
        (["--log-format", "text", "run"], {"COSTLAKE_LOG_FORMAT": "json"}, False),  # the flag wins
        (["ingest", "--", "--log-format", "json"], {}, False),  # after `--`: a file name
    ],
)
def test_an_interrupt_during_start_up_writes_one_line_in_the_asked_format(
    args: list[str], env: dict[str, str], json_line: bool
) -> None:
    base = {k: v for k, v in os.environ.items() if k != "COSTLAKE_LOG_FORMAT"}
    done = subprocess.run(
        [sys.executable, "-c", EARLY, *args], capture_output=True, text=True, env={**base, **env}, timeout=60
    )
    assert done.returncode == 143
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    if json_line:
        assert json.loads(lines[0]) == {
            "level": "error", "logger": "costlake.cli", "message": "interrupted", "exit_code": 143
        }  # fmt: skip
    else:
        assert lines == ["interrupted"]
