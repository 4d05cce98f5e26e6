"""SIGINT and SIGTERM sent to real processes: one `interrupted` line, exit 130 / 143, nothing half
published, and the next run converges to what an uninterrupted run publishes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from costlake.lake.faults import SIGNAL_ENV
from helpers import SEED, cli

DAILY = (
    "SELECT account_id, CAST(usage_date AS VARCHAR) AS d, CAST(total_cost_usd AS VARCHAR) AS t, "
    "event_count FROM daily_account_cost ORDER BY d, account_id"
)
SERVICE_DAY = (
    "SELECT account_id, service_name, CAST(usage_date AS VARCHAR) AS d, "
    "CAST(total_cost_usd AS VARCHAR) AS t FROM account_service_day_cost ORDER BY d, account_id, service_name"
)
EXIT = {"INT": 130, "TERM": 143}


def _costlake(warehouse: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "costlake", "--warehouse", str(warehouse), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _finish(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _content(warehouse: Path) -> tuple[str, str]:
    return cli(warehouse, "query", DAILY, "--format", "csv").stdout, cli(
        warehouse, "query", SERVICE_DAY, "--format", "csv"
    ).stdout


@pytest.fixture(scope="module")
def bills(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("bills")
    made = cli(folder / "wh", "generate", str(folder), "--events", "3000", "--days", "30", "--batches", "2")
    assert made.returncode == 0, made.stderr
    return sorted(str(p) for p in folder.glob("billing_batch_*.csv"))


@pytest.fixture(scope="module")
def reference(bills: list[str], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    wh = tmp_path_factory.mktemp("reference") / "wh"
    assert cli(wh, "ingest", *bills).returncode == 0
    assert cli(wh, "run").returncode == 0
    return _content(wh)


@pytest.mark.parametrize(
    ("command", "point", "sig"),
    [
        ("ingest", "before_commit:raw_billing_events", "INT"),
        ("ingest", "before_commit:raw_billing_events", "TERM"),
        ("ingest", "ingest:staged", "TERM"),  # the first file read and checked, nothing committed
        ("run", "computed", "TERM"),
        ("run", "files_written", "INT"),
        ("run", "after_commit:normalized_billing_events", "TERM"),
        ("run", "before_commit:daily_account_cost", "INT"),
        ("run", "after_commit:publish_log", "TERM"),
        ("run", "computed", "TERM+INT"),  # both pending at once: Python runs SIGINT's handler first
        ("ingest", "before_commit:raw_billing_events", "INT+TERM"),
    ],
)
def test_a_signal_at_a_step_exits_cleanly_and_the_rerun_converges(
    tmp_path: Path, bills: list[str], reference: tuple[str, str], command: str, point: str, sig: str
) -> None:
    wh = tmp_path / "wh"
    if command == "run":
        assert cli(wh, "ingest", *bills).returncode == 0
    args = ["ingest", *bills] if command == "ingest" else ["run"]
    code, _, err = _finish(_costlake(wh, *args, env={SIGNAL_ENV: f"{point}:{sig}"}))
    assert err == "interrupted\n", err
    assert code in {EXIT[s] for s in sig.split("+")}  # signals sent together: either one's code
    # Nothing half-published: whatever a reader sees now is a finished run's content (or nothing).
    daily, _ = _content(wh)
    assert daily in (reference[0], "account_id,d,t,event_count\n")
    if command == "ingest":
        assert cli(wh, "ingest", *bills).returncode == 0
    rerun = cli(wh, "run")
    assert rerun.returncode == 0, rerun.stderr
    assert _content(wh) == reference
    audit = cli(wh, "audit", "verify")
    assert audit.returncode == 0 and "0 mismatch(es)" in audit.stdout


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_signal_after_the_command_is_over_keeps_its_exit_code(
    tmp_path: Path, bills: list[str], sig: str
) -> None:
    """Once a command has finished, a signal in its last moments (Python's shutdown would otherwise
    kill the process without a word) changes nothing: the run exits 0, silent on stderr."""
    wh = tmp_path / "wh"
    assert cli(wh, "ingest", *bills).returncode == 0
    code, out, err = _finish(_costlake(wh, "run", env={SIGNAL_ENV: f"exiting:{sig}"}))
    assert (code, err) == (0, ""), err
    assert "done in" in out


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_signal_at_any_moment_of_a_run_gives_one_line_and_a_converging_rerun(
    tmp_path: Path, bills: list[str], reference: tuple[str, str], sig: str
) -> None:
    """Not at a chosen step: after a delay, wherever the run is (imports, DuckDB queries, commits)."""
    wh = tmp_path / "wh"
    assert cli(wh, "ingest", *bills).returncode == 0
    for delay in (0.4, 1.2, 2.0):
        proc = _costlake(wh, "run")
        time.sleep(delay)
        proc.send_signal(getattr(signal, f"SIG{sig}"))
        code, _, err = _finish(proc)
        if code == 0:
            break  # the run finished before the signal: nothing left to interrupt
        assert (code, err) == (EXIT[sig], "interrupted\n"), err
    assert cli(wh, "run").returncode == 0
    assert _content(wh) == reference


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_signal_while_the_last_line_is_written_keeps_the_line_and_its_exit_code(
    tmp_path: Path, sig: str
) -> None:
    """A supervisor's SIGTERM or a second Ctrl-C that lands while a failing command writes its line."""
    missing = tmp_path / "no-such-bill.csv"
    code, _, err = _finish(
        _costlake(tmp_path / "wh", "ingest", str(missing), env={SIGNAL_ENV: f"exit_line:{sig}"})
    )
    assert code == 1, err
    assert err.count("\n") == 1 and err.startswith("error: ") and "no-such-bill.csv" in err, err


def test_only_the_first_signal_stops_a_command_later_ones_are_noted(monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGTERM pending beside a SIGINT (or a second Ctrl-C) must not raise again inside the clean-up
    or the exit the first one started: that second exception escaped as a traceback."""
    from costlake import cli as costlake_cli

    monkeypatch.setattr(costlake_cli, "_received", [])
    before = {s: signal.signal(s, costlake_cli._on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        with pytest.raises(costlake_cli.Interrupted):
            os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)  # handled at once (os.kill checks), and only noted
        assert costlake_cli._received == [signal.SIGINT, signal.SIGTERM]  # (a third would end pytest)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)


def _snippet(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_a_third_signal_ends_a_command_at_once_with_its_line() -> None:
    """For a clean-up that hangs (an object store that does not answer): the third signal ends the
    process with the first one's exit code and the one line."""
    done = _snippet(
        "import os, signal, time\n"
        "from costlake import cli\n"
        "for s in (signal.SIGINT, signal.SIGTERM):\n"
        "    signal.signal(s, cli._on_signal)\n"
        "try:\n"
        "    os.kill(os.getpid(), signal.SIGTERM)\n"
        "except cli.Interrupted:\n"
        "    os.kill(os.getpid(), signal.SIGINT)  # noted\n"
        "    os.kill(os.getpid(), signal.SIGINT)  # the third\n"
        "    time.sleep(30)\n"
    )
    assert (done.returncode, done.stderr) == (143, "interrupted\n")


def test_an_ingest_interrupted_between_its_files_says_how_many_landed_and_how_to_finish(
    tmp_path: Path, bills: list[str], reference: tuple[str, str]
) -> None:
    wh = tmp_path / "wh"
    code, out, err = _finish(_costlake(wh, "ingest", *bills, env={SIGNAL_ENV: "ingest:committed:INT"}))
    assert code == 130 and len(out.splitlines()) == 1, out
    assert err == (
        "interrupted: 1 of 2 files were ingested; run the same command again to ingest the rest (files "
        "already ingested are skipped)\n"
    )
    again = cli(wh, "ingest", *bills)
    assert again.returncode == 0 and "already ingested" in again.stdout.splitlines()[0], again.stdout
    assert cli(wh, "run").returncode == 0
    assert _content(wh) == reference


def test_an_ingest_interrupted_after_its_last_commit_says_everything_landed(
    tmp_path: Path, bills: list[str]
) -> None:
    wh = tmp_path / "wh"
    code, _, err = _finish(_costlake(wh, "ingest", bills[0], env={SIGNAL_ENV: "ingest:committed:TERM"}))
    assert (code, err) == (143, "interrupted: 1 of 1 files were ingested before it; nothing is left to do\n")
    assert "already ingested" in cli(wh, "ingest", bills[0]).stdout


def test_an_ingest_interrupted_at_any_moment_lands_whole_files_only(
    tmp_path: Path, bills: list[str], reference: tuple[str, str]
) -> None:
    """Not at a chosen step: after a delay, wherever the ingest is (reading a file, checking it,
    writing raw). Whatever it stopped in, the files it reports landed are whole and the others absent."""
    wh = tmp_path / "wh"
    lines = {
        "interrupted",
        "interrupted: 1 of 2 files were ingested; run the same command again to ingest the rest (files "
        "already ingested are skipped)",
        "interrupted: 2 of 2 files were ingested before it; nothing is left to do",
    }
    for delay in (0.8, 1.6, 2.4):
        proc = _costlake(wh, "ingest", *bills)
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        code, _, err = _finish(proc)
        if code == 0:
            break
        assert code == 130 and err.rstrip("\n") in lines, err
    again = cli(wh, "ingest", *bills)
    assert again.returncode == 0, again.stderr
    landed = (
        "SELECT count(*) AS n, CAST(sum(rows_accepted + rows_quarantined) AS BIGINT) AS r FROM ingest_batches"
    )
    rows = sum(len(Path(b).read_text().splitlines()) - 1 for b in bills)
    assert json.loads(cli(wh, "query", landed, "--format", "json").stdout) == [{"n": 2, "r": rows}]
    assert cli(wh, "run").returncode == 0
    assert _content(wh) == reference


def test_a_signal_while_duckdb_is_imported_waits_for_the_import(tmp_path: Path) -> None:
    """Commands import DuckDB on first use. A signal raised inside its native initialisation (here
    while it creates its enums, a moment a profile hook finds) aborted the process: "Critical
    nanobind error", a traceback and exit 134. It is raised once the import is over."""
    done = _snippet(
        "import signal, sys\n"
        "from costlake import cli\n"
        "assert 'duckdb' not in sys.modules\n"
        "fired = []\n"
        "def hook(frame, event, arg):\n"
        "    ours = 'duckdb' in sys.modules and not fired\n"
        "    if ours and event == 'call' and frame.f_code.co_name == '_create_':\n"
        "        fired.append(1)\n"
        "        signal.raise_signal(signal.SIGINT)\n"
        "sys.setprofile(hook)\n"
        f"sys.argv = ['costlake', '--warehouse', {str(tmp_path / 'wh')!r}, 'query', 'SELECT 1']\n"
        "cli.main()\n"
    )
    assert (done.returncode, done.stderr) == (130, "interrupted\n")


def test_a_signal_while_a_module_is_loaded_by_import_module_stops_the_command_soon_after(
    tmp_path: Path,
) -> None:
    """`run` loads its engine with importlib.import_module and then runs the pipeline with no import
    statement: a signal held while that module loaded waited for the command's end."""
    (tmp_path / "loaded_mod.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGINT)\nx = 1\n")
    done = _snippet(
        "import builtins, importlib, signal, sys, time\n"
        "from costlake import cli\n"
        f"sys.path.insert(0, {str(tmp_path)!r})\n"
        "for s in (signal.SIGINT, signal.SIGTERM):\n"
        "    signal.signal(s, cli._on_signal)\n"
        "builtins.__import__ = cli._import_then_stop\n"
        "start = time.monotonic()\n"
        "try:\n"
        "    module = importlib.import_module('loaded_mod')\n"
        "    while time.monotonic() - start < 30:\n"
        "        sum(range(1000))  # work with no import statement\n"
        "    print('ran to its end')\n"
        "except cli.Interrupted:\n"
        "    print('stopped', module.x, time.monotonic() - start < 5)\n"
    )
    assert done.stdout == "stopped 1 True\n", done.stdout + done.stderr


def test_an_interrupt_swallowed_on_its_way_still_ends_the_command_as_interrupted() -> None:
    """A signal whose exception a finalizer swallowed (Python only prints "Exception ignored") must
    not let the command end as if nothing had happened."""
    done = _snippet(
        "import signal, sys\n"
        "from costlake import cli\n"
        "sys.argv = ['costlake', '--help']\n"
        "cli._received.append(signal.SIGINT)  # what the swallowed signal left\n"
        "cli.main()\n"
    )
    assert (done.returncode, done.stderr) == (130, "interrupted\n")


def test_an_error_before_the_settings_are_read_follows_the_json_flag() -> None:
    done = cli(Path("unused"), "--log-format", "json", "no-such-command")
    assert done.returncode == 1
    line = json.loads(done.stderr)
    assert line["level"] == "error" and line["exit_code"] == 1 and "no-such-command" in line["message"]


@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_a_long_query_stops_at_once_on_a_signal(tmp_path: Path, sig: str) -> None:
    """Python runs a signal's handler only between its own steps: while DuckDB ran a query, Ctrl-C
    (and SIGTERM) waited for the query to finish, however long it took."""
    wh = tmp_path / "wh"
    assert cli(wh, "ingest", str(SEED)).returncode == 0
    long = "SELECT count(*) FROM range(100000000000) AS t(i) WHERE hash(i) % 7 = 3"  # minutes of work
    proc = _costlake(wh, "query", long)
    time.sleep(3)  # the interpreter started and the query is running
    assert proc.poll() is None
    sent = time.monotonic()
    proc.send_signal(getattr(signal, f"SIG{sig}"))
    code, out, err = _finish(proc)
    assert (code, err) == (EXIT[sig], "interrupted\n") and out == ""
    assert time.monotonic() - sent < 10
