"""Logging as an interface: JSON lines with phase durations, and no secret in any line."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from costlake.logs import REDACTED, JsonFormatter, RedactingFilter, TextFormatter, phase
from helpers import SEED

PROVIDER_KEY = "sk-proj-Zq8t3LkW9mX2vB7nR4yH6cJ1"
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzz9QEXAMPLE"


def _costlake(warehouse: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "costlake", "--warehouse", str(warehouse), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def test_json_logs_give_one_object_per_line_with_phase_durations(tmp_path: Path) -> None:
    wh = tmp_path / "wh"
    env: dict[str, str] = {}
    lines: list[dict[str, object]] = []
    for args in (("ingest", str(SEED)), ("run",)):
        done = _costlake(wh, "--log-format", "json", "--log-level", "info", *args, env=env)
        assert done.returncode == 0, done.stderr
        lines += [json.loads(line) for line in done.stderr.splitlines()]  # every line is JSON
    assert all({"ts", "level", "logger", "message"} <= line.keys() for line in lines)
    phases = {line["phase"]: line for line in lines if "duration_ms" in line}
    assert {"detect"} <= phases.keys()
    assert all(isinstance(p["duration_ms"], int | float) for p in phases.values())
    committed = {line["table"] for line in lines if str(line["message"]).startswith("committed ")}
    assert {"raw_billing_events", "daily_account_cost", "publish_log"} <= committed
    quiet = _costlake(wh, "run", env=env)  # default level: warnings only, so nothing on stderr
    assert quiet.returncode == 0 and quiet.stderr == ""


def test_no_secret_reaches_any_output_of_a_full_run(tmp_path: Path) -> None:
    """Provider keys and cloud secrets in the environment never appear in logs, output or errors,
    even at debug level and when the provider fails (an OpenAI-compatible server that is not there)."""
    wh = tmp_path / "wh"
    env = {
        "OPENAI_API_KEY": PROVIDER_KEY,
        "ANTHROPIC_API_KEY": PROVIDER_KEY + "-anthropic",
        "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
        "COSTLAKE_LLM_PROVIDER": "openai",
        "COSTLAKE_LLM_BASE_URL": "http://127.0.0.1:9/v1",
        "COSTLAKE_LLM_MAX_ATTEMPTS": "1",
    }
    made = _costlake(wh, "generate", str(tmp_path / "bills"), "--events", "3000", "--days", "50", env=env)
    seen = made.stdout + made.stderr
    for args in (
        ("ingest", *sorted(str(p) for p in (tmp_path / "bills").glob("billing_batch_*.csv"))),
        ("tenants", "load", str(tmp_path / "bills" / "tenants.csv")),
        ("run",),
        ("index",),
        ("explain", "why did costs change?"),
        ("explain", "why did costs change?", "--format", "json"),
    ):
        for fmt in ("json", "text"):
            done = _costlake(wh, "--log-level", "debug", "--log-format", fmt, *args, env=env)
            assert done.returncode == 0, done.stderr[-2000:]
            seen += done.stdout + done.stderr
            if args[0] in ("ingest", "run"):
                break  # these change the warehouse: once is enough
    assert "costlake" in seen and "debug" in seen.lower()
    for secret in (PROVIDER_KEY, AWS_SECRET, PROVIDER_KEY[3:]):
        assert secret not in seen


def test_redaction_covers_messages_arguments_and_extra_fields(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("OPENAI_API_KEY", PROVIDER_KEY)
    record = logging.makeLogRecord(
        {
            "name": "costlake.test",
            "levelno": logging.INFO,
            "levelname": "INFO",
            "msg": "calling %s with header %s",
            "args": (PROVIDER_KEY, "Bearer abcdef0123456789"),
            "endpoint": f"https://x.invalid/?key={PROVIDER_KEY}",
        }
    )
    assert RedactingFilter().filter(record)
    text = JsonFormatter().format(record)
    assert PROVIDER_KEY not in text and "abcdef0123456789" not in text
    assert json.loads(text)["message"] == f"calling {REDACTED} with header {REDACTED}"


def test_a_phase_logs_its_duration_and_added_fields(caplog) -> None:  # type: ignore[no-untyped-def]
    log = logging.getLogger("costlake.test_phase")
    with caplog.at_level(logging.DEBUG, logger="costlake.test_phase"), phase(log, "work", days=3) as done:
        done["rows"] = 7
    end = caplog.records[-1]
    assert end.phase == "work" and end.days == 3 and end.rows == 7 and end.duration_ms >= 0


def test_a_text_log_line_shows_a_files_text_escaped_and_a_huge_message_cut(tmp_path: Path) -> None:
    """A file named with terminal escapes reached `--log-level info`'s lines raw (clear screen, window
    title), and a message quoting a server's error text had no length limit (found by a re-review)."""
    bill = tmp_path / "evil\x1b[2J\x1b]0;pwned\x07.csv"
    bill.write_text(SEED.read_text())
    done = _costlake(tmp_path / "wh", "--log-level", "info", "ingest", str(bill), env={})
    assert done.returncode == 0 and "evil\\x1b[2J\\x1b]0;pwned\\x07.csv" in done.stderr
    assert "\x1b" not in done.stderr and "\x07" not in done.stderr
    record = logging.LogRecord(
        "costlake.x", logging.WARNING, __file__, 1, "%s failed: %s", ("llm", "e" * 9000), None
    )
    line = TextFormatter("%(levelname)s %(message)s").format(record)
    assert (
        line.startswith("WARNING llm failed: eee") and line.endswith(" more characters)") and len(line) < 8100
    )
    assert json.loads(JsonFormatter().format(record))["message"].endswith(" more characters)")
