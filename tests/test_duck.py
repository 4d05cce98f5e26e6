"""The DuckDB helpers shared by every layer."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from costlake import duck, tables
from costlake.duck import OWNER, SPILL_PREFIX, _types, connect
from costlake.settings import Settings
from helpers import cli

SCHEMAS = [t.arrow_schema() for t in vars(tables).values() if isinstance(t, tables.TableDef)]


@pytest.mark.parametrize("schema", SCHEMAS, ids=[s.names[0] + f"-{len(s)}" for s in SCHEMAS])
def test_the_type_names_of_every_table_are_duckdbs_own(schema: pa.Schema) -> None:
    """`table_scan` casts NULLs to these names: they must be what DuckDB itself calls the types."""
    con = duckdb.connect()
    assert _types(schema) == tuple(str(t) for t in con.from_arrow(schema.empty_table()).types)


@pytest.fixture
def temp_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A temp folder of the test's own as the only place to spill, and a process that has made no
    spill folder yet (its folder is made on the first connection)."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(duck, "_temp_folders", lambda: [str(folder)])
    monkeypatch.setattr(duck, "_OURS", [])
    monkeypatch.setattr(duck, "_SWEPT", set())
    return folder


def test_work_beyond_the_memory_limit_spills_outside_the_working_folder(
    tmp_path: Path, temp_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection spills into a folder of its own inside the process's spill folder (mode 0700:
    spilled rows are billing data), which goes with the connection: never to DuckDB's default,
    `.tmp` in the working folder (a user's)."""
    monkeypatch.chdir(tmp_path)
    con = connect(Settings(warehouse="w", duckdb_threads=2, duckdb_memory_limit="48MB"))
    con.execute("CREATE TEMP TABLE hashes AS SELECT md5(i::VARCHAR) AS h FROM range(2000000) t(i)")
    assert con.execute("SELECT count(*), sum(length(h)) FROM hashes").fetchone() == (2_000_000, 64_000_000)
    [ours] = temp_folder.glob(f"{SPILL_PREFIX}*")
    spilled = list(ours.glob("*/*"))
    con.close()
    assert spilled  # 2M hashes (about 100 MB) did not fit in 48MB
    assert stat.S_IMODE(ours.stat().st_mode) == 0o700
    assert [p.name for p in ours.iterdir()] == [OWNER]  # DuckDB removed the connection's folder on close
    assert not (tmp_path / ".tmp").exists()


def test_a_killed_process_spill_is_removed_by_the_next_process(temp_folder: Path) -> None:
    """A process killed while it spilled leaves its folder: the next process's first connection
    removes every spill folder whose owner file it can lock (its process is gone), whichever
    process-id namespace or machine made it, and leaves the rest: a running process's (locked), one
    being made (no owner file yet), a symlink, and one whose owner file is a FIFO (which would hang
    the open)."""
    dead, alive, making = (temp_folder / f"{SPILL_PREFIX}{name}" for name in ("dead", "alive", "making"))
    for folder in (dead, alive, making):
        folder.mkdir()
        (folder / "duckdb_temp_storage-0.tmp").write_bytes(b"x" * 1000)
    (dead / OWNER).touch()
    (alive / OWNER).touch()
    outside = temp_folder.parent / "not-a-spill"
    outside.mkdir()
    (outside / "keep").touch()
    (temp_folder / f"{SPILL_PREFIX}link").symlink_to(outside)
    fifo = temp_folder / f"{SPILL_PREFIX}fifo"
    fifo.mkdir()
    os.mkfifo(fifo / OWNER)  # opening it to read would block until a writer came
    with (alive / OWNER).open("rb") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as its running process holds it
        connect(Settings(warehouse="w")).close()
    left = sorted(p.name for p in temp_folder.iterdir())
    kept = {alive.name, making.name, f"{SPILL_PREFIX}link", fifo.name}
    [ours] = [name for name in left if name not in kept]
    assert dead.name not in left and len(left) == 5 and (outside / "keep").exists()
    assert (temp_folder / ours / OWNER).exists()


def test_without_a_writable_temp_folder_queries_still_run_without_spilling(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No usable temp folder (a read-only container) must not fail every query: spilling is off,
    and only work beyond the memory limit fails. The working folder is never a fallback."""
    missing = tmp_path / "missing"
    monkeypatch.setattr(duck, "_temp_folders", lambda: [str(missing)])
    monkeypatch.setattr(duck, "_OURS", [])
    monkeypatch.setattr(duck, "_SWEPT", set())
    monkeypatch.chdir(tmp_path)
    shown = "SELECT current_setting('temp_directory'), count(*) FROM range(10)"
    assert connect(Settings(warehouse="w")).execute(shown).fetchone() == ("", 10)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.delenv("TMPDIR", raising=False)
    assert "" not in duck._temp_folders() and str(tmp_path) not in duck._temp_folders()


def test_a_spill_folder_that_cannot_be_locked_is_not_left_behind(
    temp_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system without locks, or a process out of file descriptors: no spilling, and no
    folder left that no sweep could ever remove (it has no locked owner file)."""

    class NoLocks:
        LOCK_EX, LOCK_NB = fcntl.LOCK_EX, fcntl.LOCK_NB

        @staticmethod
        def flock(*_: object) -> None:
            raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(duck, "fcntl", NoLocks)
    shown = "SELECT current_setting('temp_directory')"
    assert connect(Settings(warehouse="w")).execute(shown).fetchone() == ("",)
    assert list(temp_folder.iterdir()) == []


def test_a_scratch_folder_is_private_and_inside_the_process_folder(temp_folder: Path) -> None:
    """A command's working files (DuckDB's spill, staged files) go where a killed process's are swept
    from: its process's spill folder."""
    with duck.scratch_folder("costlake-run-") as scratch:
        (scratch / "part.parquet").write_bytes(b"rows")
        [ours] = temp_folder.glob(f"{SPILL_PREFIX}*")
        assert scratch.parent == ours and scratch.name.startswith("costlake-run-")
        assert stat.S_IMODE(scratch.stat().st_mode) == 0o700
    assert not scratch.exists() and [p.name for p in ours.iterdir()] == [OWNER]


@pytest.mark.parametrize("command", ["ingest", "run"])
def test_a_command_killed_midway_leaves_nothing_the_next_one_does_not_sweep(
    tmp_path: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`kill -9` (here the fault point's `os._exit`, which skips every clean-up) in the middle of a
    command leaves its working folder, which may hold spilled billing rows; the next command removes
    it. They used to stay in the temp folder for good."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    bill = tmp_path / "bill.csv"
    bill.write_text("event_id,usage_date,account_id,service_name,cost_usd\ne1,2025-01-01,A1,S3,1.50\n")
    root = tmp_path / "wh"
    if command == "run":
        assert cli(root, "ingest", str(bill)).returncode == 0
    monkeypatch.setenv("COSTLAKE_CRASH_AT", "computed" if command == "run" else "ingest:staged")
    killed = cli(root, *([command, str(bill)] if command == "ingest" else [command]))
    assert killed.returncode == 86, killed.stderr
    assert list(temp.glob(f"*/costlake-{command}-*"))  # left behind, inside a spill folder
    monkeypatch.delenv("COSTLAKE_CRASH_AT")
    assert cli(root, "run").returncode == 0
    assert list(temp.rglob("costlake-*")) == []
