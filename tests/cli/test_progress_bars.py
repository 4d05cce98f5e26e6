"""Progress bars: on stderr when it is a terminal, never with --quiet or without a terminal, never
in stdout's results, and a hostile file name is shown as plain text."""

from __future__ import annotations

import csv
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

from helpers import NATIVE_HEADER

NAME = "[bold red]pwn\x1b[2J.csv"  # rich markup and an escape sequence that would clear the screen


def _bill(path: Path, rows: int = 30_000) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(NATIVE_HEADER)
        for i in range(rows):
            day = f"2025-01-{1 + i % 28:02d}"
            writer.writerow([f"e{i}", day, f"{100000000000 + i % 50}", f"svc{i % 9}", f"{i % 97}.25", day])
    return path


def _on_a_terminal(*args: str, cwd: Path) -> tuple[int, str, str]:
    """Run costlake with stderr on a pseudo-terminal and stdout on a pipe: (exit code, stdout, what
    the terminal received)."""
    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="160", TERM="xterm")
    proc = subprocess.Popen(
        [sys.executable, "-m", "costlake", *args], stdout=subprocess.PIPE, stderr=slave, cwd=cwd, env=env
    )
    os.close(slave)
    seen = b""
    while True:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        elif proc.poll() is not None:
            break
    out = proc.communicate(timeout=120)[0].decode()
    os.close(master)
    return proc.returncode, out, seen.decode(errors="replace")


def test_bars_go_to_the_terminal_and_results_to_stdout(tmp_path: Path) -> None:
    bill = _bill(tmp_path / NAME)
    code, out, terminal = _on_a_terminal("-w", "wh", "ingest", bill.name, cwd=tmp_path)
    assert code == 0, terminal[-2000:]
    assert "batch b000001-" in out and "30,000 accepted" in out and "━" not in out
    assert "ETA" in terminal and "accepted" not in terminal
    assert "[bold red]pwn\\x1b[2J.csv" in terminal  # as typed, markup and escape shown as text
    assert "\x1b[2J" not in terminal
    code, out, terminal = _on_a_terminal("-w", "wh", "run", cwd=tmp_path)
    assert code == 0 and "28 day(s)" in out
    assert "rebuilding 28 day(s)" in terminal and "steps" in terminal and "ETA" in terminal


def test_quiet_or_no_terminal_draws_nothing(tmp_path: Path) -> None:
    bill = _bill(tmp_path / "bill.csv", rows=3_000)
    code, out, terminal = _on_a_terminal("--quiet", "-w", "wh", "ingest", bill.name, cwd=tmp_path)
    assert code == 0 and "3,000 accepted" in out
    assert terminal == ""
    shown = subprocess.run(
        [sys.executable, "-m", "costlake", "-w", "wh", "run"], capture_output=True, text=True, cwd=tmp_path
    )
    assert shown.returncode == 0 and shown.stderr == "" and "28 day(s)" in shown.stdout
