"""The DuckDB helpers shared by every layer."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from costlake import tables
from costlake.duck import SPILL_PREFIX, _host, _sweep_spills, _types, connect
from costlake.settings import Settings

SCHEMAS = [t.arrow_schema() for t in vars(tables).values() if isinstance(t, tables.TableDef)]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[s.names[0] + f"-{len(s)}" for s in SCHEMAS])
def test_the_type_names_of_every_table_are_duckdbs_own(schema: pa.Schema) -> None:
    """`table_scan` casts NULLs to these names: they must be what DuckDB itself calls the types."""
    con = duckdb.connect()
    assert _types(schema) == tuple(str(t) for t in con.from_arrow(schema.empty_table()).types)


def test_work_beyond_the_memory_limit_spills_outside_the_working_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection's spill goes to a folder of its own in the system's temp folder, which goes with
    the connection: never to DuckDB's default, `.tmp` in the working folder (a user's)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "system-tmp"))
    (tmp_path / "system-tmp").mkdir()
    con = connect(Settings(warehouse="w", duckdb_threads=2, duckdb_memory_limit="48MB"))
    con.execute("CREATE TEMP TABLE hashes AS SELECT md5(i::VARCHAR) AS h FROM range(2000000) t(i)")
    assert con.execute("SELECT count(*), sum(length(h)) FROM hashes").fetchone() == (2_000_000, 64_000_000)
    spilled = list((tmp_path / "system-tmp").glob("costlake-spill-*/*"))
    con.close()
    assert spilled  # 2M hashes (about 100 MB) did not fit in 48MB
    assert not list((tmp_path / "system-tmp").iterdir())  # DuckDB removed its folder on close
    assert not (tmp_path / ".tmp").exists()


def test_a_killed_process_spill_is_removed_by_the_next_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed while it spilled leaves its folder: the next process's first connection
    removes the folders of this machine's processes that no longer run, and leaves those of running
    ones and of other machines (a temp folder shared between containers)."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True)
    dead, alive = int(finished.stdout), os.getppid()
    elsewhere = (
        f"{SPILL_PREFIX}other_host-{dead}-0123"  # another machine's or container's: its pids are not ours
    )
    names = [f"{SPILL_PREFIX}{_host()}-{dead}-0123", f"{SPILL_PREFIX}{_host()}-{alive}-0123", elsewhere]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 1000)
    _sweep_spills.cache_clear()
    connect(Settings(warehouse="w")).close()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[1:])


def test_without_a_writable_temp_folder_queries_still_run_without_spilling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No usable temp folder (a read-only container) must not fail every query: spilling is off,
    and only work beyond the memory limit fails. Nor may the spill go to the working folder, where
    Python's `tempfile` falls back to when nothing else is writable."""

    def nowhere() -> str:
        raise FileNotFoundError("No usable temporary directory found")

    shown = "SELECT current_setting('temp_directory'), count(*) FROM range(10)"
    monkeypatch.setattr(tempfile, "gettempdir", nowhere)
    assert connect(Settings(warehouse="w")).execute(shown).fetchone() == ("", 10)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    for name in ("TMPDIR", "TEMP", "TMP"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    assert connect(Settings(warehouse="w")).execute(shown).fetchone() == ("", 10)
