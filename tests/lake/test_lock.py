"""One writer at a time: first use by two commands, a blocked command's message, the lock timeout."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

from costlake.lake.lock import holder, writer_lock
from helpers import SEED, cli


def _start(warehouse: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "costlake", "--warehouse", str(warehouse), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_two_first_commands_on_an_empty_warehouse_both_succeed(tmp_path: Path) -> None:
    """Tables are created under the lock: `ingest` and `run`, or two `ingest`s, started together on
    a warehouse that does not exist yet never race on the catalog. (`run` creates no warehouse: when
    it looks before `ingest` has made one, it is refused in its one line.)"""
    for trial in range(4):
        wh = tmp_path / f"wh{trial}"
        second = ("run",) if trial % 2 else ("ingest", str(SEED))
        procs = [_start(wh, "ingest", str(SEED)), _start(wh, *second)]
        for i, proc in enumerate(procs):
            out, err = proc.communicate(timeout=300)
            early = i == 1 and second == ("run",) and err.strip().endswith("`costlake ingest` creates one")
            assert proc.returncode == 0 or (early and proc.returncode == 1), err
            assert "Traceback" not in err
        rows = cli(wh, "query", "SELECT count(*) AS n FROM ingest_batches", "--format", "csv")
        assert rows.stdout.splitlines()[1] == "1"  # the second ingest of the same file was a no-op


def test_a_blocked_command_says_once_whom_it_waits_for_and_gives_up_at_the_timeout(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    assert cli(wh, "ingest", str(SEED)).returncode == 0
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with writer_lock(wh, "backfill"):
            held.set()
            release.wait(60)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        assert holder(wh).startswith(f"backfill (pid {os.getpid()} on ")
        blocked = cli(wh, "--lock-timeout", "1.5", "run")
    finally:
        release.set()
        thread.join()
    lines = blocked.stderr.splitlines()
    assert blocked.returncode == 1, blocked.stderr
    assert lines[0].startswith(f"waiting for backfill (pid {os.getpid()} on ") and "since" in lines[0]
    assert lines[1].startswith("error: ") and "gave up after 1.5 s waiting for backfill" in lines[1]
    assert len(lines) == 2
    assert cli(wh, "run").returncode == 0  # released: the next one goes through


def test_the_lock_is_reentrant_within_a_process(tmp_path: Path) -> None:
    with writer_lock(tmp_path, "run"), writer_lock(tmp_path, "anomalies"):
        assert holder(tmp_path).startswith("run (pid")


def test_a_backfill_holds_the_lock_as_a_backfill(tmp_path: Path) -> None:
    """A run waiting behind a backfill was told it waited for `run`: the backfill took the lock under
    the name of the run it shares its code with."""
    wh = tmp_path / "wh"
    assert cli(wh, "ingest", str(SEED)).returncode == 0 and cli(wh, "run").returncode == 0
    env = {**os.environ, "COSTLAKE_CRASH_AT": "computed"}  # stopped while it holds the lock
    command = [sys.executable, "-m", "costlake", "--warehouse", str(wh), "backfill"]
    done = subprocess.run([*command, "--from", "2025-01-01", "--to", "2025-01-02"], env=env, timeout=300)
    assert done.returncode == 86
    assert holder(wh).startswith("backfill (pid ")
