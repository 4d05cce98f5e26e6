"""A warehouse whose catalog.db is damaged (a disk fault, a file copied over it) is refused in one
line naming the file, by the jobs and by the service, and nothing is changed."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
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
    done = cli(damaged, *command)  # the default log level: an alert `run` could not send stays quiet
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3, done.stderr
    assert lines == [lines[-1]] and lines[0].startswith(
        f"error: {damaged / 'catalog.db'}: {what} cannot be opened"
    )
    assert "file is not a database" in lines[0] and "internal error" not in lines[0]
    assert hashlib.sha256((damaged / "catalog.db").read_bytes()).hexdigest() == before


def test_a_catalog_uri_that_cannot_be_opened_is_named_by_its_setting_never_its_value(tmp_path: Path) -> None:
    bad = tmp_path / "elsewhere.db"
    bad.write_bytes(bytes(range(256)) * 16)
    env = {**os.environ, "COSTLAKE_CATALOG_URI": f"sqlite:///{bad}?secret=hunter2"}
    command = [sys.executable, "-m", "costlake", "--warehouse", str(tmp_path / "wh"), "--log-level", "error"]
    done = subprocess.run([*command, "run"], capture_output=True, text=True, env=env, timeout=120)
    lines = [x for x in done.stderr.strip().splitlines() if x.startswith("error: ")]
    assert done.returncode == 3 and len(lines) == 1, done.stderr
    assert lines[0].startswith("error: COSTLAKE_CATALOG_URI: the Iceberg catalog cannot be opened (")
    assert "hunter2" not in done.stderr + done.stdout and str(bad) not in lines[0]


def test_a_busy_catalog_is_one_line_saying_so_not_a_damaged_one(tmp_path: Path) -> None:
    """A catalog another process holds in a write transaction was told as damaged, to be restored
    from a backup (exit 3)."""
    import sqlite3

    made = generate(tmp_path / "bills", events=200, days=2, batches=1)
    assert cli(tmp_path / "wh", "ingest", str(made.files[0])).returncode == 0
    catalog = tmp_path / "wh" / "catalog.db"
    holder = sqlite3.connect(catalog, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:  # a short SQLite wait keeps the test short; the default waits longer, then says the same
        env = {**os.environ, "COSTLAKE_CATALOG_URI": f"sqlite:///{catalog}?timeout=0.2"}
        command = [sys.executable, "-m", "costlake", "--warehouse", str(tmp_path / "wh"), "run"]
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    finally:
        holder.close()
    assert done.returncode == 1 and done.stderr.strip() == (
        "error: COSTLAKE_CATALOG_URI: the Iceberg catalog is busy (another process holds it: database is "
        "locked); nothing was changed, run the command again"
    ), done.stderr
    assert cli(tmp_path / "wh", "run").returncode == 0


def _lake(root: Path) -> Path:
    made = generate(root / "bills", events=500, days=3, batches=1)
    assert cli(root / "wh", "ingest", str(made.files[0])).returncode == 0
    assert cli(root / "wh", "run").returncode == 0
    return root / "wh"


def test_a_truncated_manifest_is_an_error_not_an_interrupt(tmp_path: Path) -> None:
    """PyIceberg's Avro reader raises EOFError on a manifest cut short, which click took for Ctrl-D at
    a prompt: the command said `interrupted` after an empty line and exited 130, as if stopped."""
    wh = _lake(tmp_path)
    manifest = sorted((wh / "costlake" / "daily_account_cost" / "metadata").glob("snap-*.avro"))[0]
    with manifest.open("r+b") as handle:
        handle.truncate(100)
    shutil.rmtree(wh / ".plans")  # the plan cache would answer without reading it
    done = cli(wh, "query", "SELECT count(*) FROM daily_account_cost")
    assert done.returncode == 3, done.stderr
    assert done.stderr.splitlines() == [done.stderr.strip()]
    assert done.stderr.startswith("error: a file being read is shorter than its contents say (")
    assert "may be truncated or damaged" in done.stderr and "interrupted" not in done.stderr


def test_a_damaged_metadata_file_is_refused_naming_its_table(tmp_path: Path) -> None:
    """Every command, one on another table too, said `internal error (ValidationError: 1 validation
    error for TableMetadataWrapper)`, naming no table."""
    wh = _lake(tmp_path)
    current = sorted((wh / "costlake" / "daily_account_cost" / "metadata").glob("*.metadata.json"))[-1]
    current.write_text(current.read_text()[:500])
    for command in (("query", "SELECT count(*) FROM raw_billing_events"), ("validate",)):
        done = cli(wh, *command)
        assert done.returncode == 3, done.stderr
        assert done.stderr.splitlines() == [done.stderr.strip()]
        assert done.stderr.startswith(
            "error: table costlake.daily_account_cost: its metadata cannot be read ("
        )


def test_a_missing_data_file_is_named_not_an_internal_error(tmp_path: Path) -> None:
    """A data file deleted by hand made `validate` and `anomalies` say `internal error (IOException:
    …)` and ask for a traceback, where nothing in costlake failed."""
    wh = _lake(tmp_path)
    gone = sorted((wh / "costlake" / "daily_account_cost" / "data").rglob("*.parquet"))[0]
    gone.unlink()
    for command in (("validate",), ("anomalies", "--full")):
        done = cli(wh, *command)
        assert done.returncode == 3, done.stderr
        line = done.stderr.strip()
        assert (
            line.startswith("error: a file of the warehouse cannot be read (IO Error: ") and str(gone) in line
        )
        assert "internal error" not in line and len(done.stderr.splitlines()) == 1
