"""The console script's start-up: what it sets before the heavy imports."""

from __future__ import annotations

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
