"""What the console script decides before its heavy imports: whether error lines are JSON.

Only the standard library here: `costlake.__main__` reads it before typer, PyArrow and DuckDB are
imported, so that an interrupt during those seconds writes its line in the format asked for.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence


def json_logs_asked(args: Sequence[str]) -> bool:
    """Whether the command line (`--log-format json` or `--log-format=json`, the last one before a
    `--` winning) or else COSTLAKE_LOG_FORMAT asks for JSON log lines. A costlake.toml is not read."""
    chosen = os.environ.get("COSTLAKE_LOG_FORMAT", "text")
    cut = list(args).index("--") if "--" in args else len(args)
    for i, arg in enumerate(args[:cut]):
        if arg == "--log-format" and i + 1 < cut:
            chosen = args[i + 1]
        elif arg.startswith("--log-format="):
            chosen = arg.partition("=")[2]
    return chosen == "json"


def error_line(message: str, code: int, as_json: bool) -> str:
    """One error line as the CLI writes it: plain text, or a JSON object."""
    if not as_json:
        return message
    return json.dumps({"level": "error", "logger": "costlake.cli", "message": message, "exit_code": code})
