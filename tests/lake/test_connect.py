"""A warehouse whose catalog.db is damaged (a disk fault, a file copied over it) is refused in one
line naming the file, by the jobs and by the service, and nothing is changed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from costlake.synthetic.generate import generate
from helpers import cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def damaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("damaged")
    made = generate(root / "bills", events=500, days=3, batches=1)
    assert cli(root / "wh", "ingest", str(made.files[0])).returncode == 0
    (root / "wh" / "catalog.db").write_bytes(bytes(range(256)) * 16)  # not SQLite
    return root / "wh"


@pytest.mark.parametrize(
    ("command", "what"),
    [(("run",), "the Iceberg catalog"), (("serve", "--port", "18555"), "the API-key store")],
)
def test_a_damaged_catalog_is_refused_in_one_line_naming_it(
    damaged: Path, command: tuple[str, ...], what: str
) -> None:
    before = hashlib.sha256((damaged / "catalog.db").read_bytes()).hexdigest()
    done = cli(damaged, "--log-level", "error", *command)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3, done.stderr
    assert lines == [lines[-1]] and lines[0].startswith(
        f"error: {damaged / 'catalog.db'}: {what} cannot be opened"
    )
    assert "file is not a database" in lines[0] and "internal error" not in lines[0]
    assert hashlib.sha256((damaged / "catalog.db").read_bytes()).hexdigest() == before
