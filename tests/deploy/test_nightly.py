"""deploy/nightly.sh, the image's `costlake-nightly` (compose.yaml's nightly job), run by the shell
with this environment's `costlake` on PATH, as the image runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from costlake.synthetic.generate import generate
from helpers import cli

pytestmark = pytest.mark.slow

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "nightly.sh"


def _env(warehouse: Path) -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)  # the venv's `costlake`
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "COSTLAKE_WAREHOUSE": str(warehouse),
    }


def _nightly(drop: Path, warehouse: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", str(SCRIPT), str(drop)], env=_env(warehouse), capture_output=True, text=True, timeout=300
    )


def test_an_empty_drop_is_nothing_to_do_or_still_runs_and_a_bad_file_stops_no_other(tmp_path: Path) -> None:
    warehouse, drop = tmp_path / "wh", tmp_path / "bills"
    drop.mkdir()
    lost = _nightly(tmp_path / "no-such-drop", warehouse)  # a mistyped or unmounted drop is an error
    assert lost.returncode == 1 and lost.stderr.strip() == (
        f"error: {tmp_path / 'no-such-drop'}: the billing drop is not a folder"
    )
    first = _nightly(drop, warehouse)  # a new deployment before its first bill: no warehouse yet
    assert first.returncode == 0, first.stderr
    assert f"no bills in {drop} and no warehouse at {warehouse} yet: nothing to do" in first.stdout
    assert not warehouse.exists()

    made = generate(tmp_path / "gen", events=2000, days=5, batches=2)
    for bill in made.files:
        (drop / bill.name).write_bytes(bill.read_bytes())
    (drop / "a folder").mkdir()
    (drop / "empty.csv").write_text("")
    night = _nightly(drop, warehouse)
    assert night.returncode == 1, night.stderr  # the scheduler sees the failure
    errors = [x for x in night.stderr.splitlines() if x.startswith("error: ")]
    assert any("a folder: is a directory" in x for x in errors), night.stderr
    assert any("empty.csv: empty file" in x for x in errors), night.stderr
    assert night.stdout.count(" accepted, ") == len(made.files)  # the good files were ingested
    assert "5 day(s) to rebuild" in night.stdout  # and published
    total = cli(warehouse, "query", "SELECT sum(total_cost_usd) FROM daily_account_cost", "--format", "csv")
    assert total.returncode == 0 and total.stdout.strip().splitlines()[1] != "", total.stderr

    (drop / "a folder").rmdir()
    (drop / "empty.csv").unlink()
    again = _nightly(drop, warehouse)
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("already ingested") == len(made.files)

    for bill in drop.iterdir():  # an empty drop on a warehouse that exists still runs
        bill.unlink()
    idle = _nightly(drop, warehouse)
    assert idle.returncode == 0, idle.stderr
    assert "nothing new to publish" in idle.stdout and " chunks in " in idle.stdout


def test_sigterm_reaches_the_command_running_and_the_job_exits_143(tmp_path: Path) -> None:
    warehouse, drop = tmp_path / "wh", tmp_path / "bills"
    drop.mkdir()
    made = generate(tmp_path / "gen", events=600_000, days=30, batches=1)
    bill = drop / made.files[0].name
    bill.write_bytes(made.files[0].read_bytes())
    job = subprocess.Popen(
        ["/bin/sh", str(SCRIPT), str(drop)], env=_env(warehouse), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    _wait_for(job.pid, "ingest")
    time.sleep(1.0)  # inside the ingest (about 3 s for this file)
    job.send_signal(signal.SIGTERM)  # to the shell only, as an engine signals a container's PID 1
    out, err = job.communicate(timeout=120)
    assert job.returncode == 143, (out, err)
    assert err.strip().splitlines()[-1] == "interrupted", err
    assert _session(job.pid) == [], "a costlake process outlived the job"
    again = _nightly(drop, warehouse)  # the next night picks up where this one stopped
    assert again.returncode == 0, again.stderr
    assert str(bill) in again.stdout and "day(s) to rebuild" in again.stdout, again.stdout


def _session(sid: int) -> list[str]:
    found = subprocess.run(["pgrep", "-a", "-s", str(sid)], capture_output=True, text=True)
    return found.stdout.strip().splitlines()


def _wait_for(sid: int, word: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(word in line for line in _session(sid)):
            return
        time.sleep(0.05)
    raise AssertionError(f"no `costlake {word}` started within 60 s")
