"""Machine identifiers (event, account and billing account ids, and a tenants file's ids): which text is
one. The SQL macro `id_reason` (sql_text.py) applies the rule to billing files; `id_problem` to files
read in Python.
"""

from __future__ import annotations

import re

# These characters only, not starting with a character a spreadsheet reads as a formula, at most
# MAX_ID_CHARS long.
ID_CHARS = "A-Za-z0-9_.:/@+=-"
MAX_ID_CHARS = 128
ID_RULE = "letters, digits and _ . : / @ + = -, not starting with = + - @"

_ID = re.compile(f"[{ID_CHARS}]+")


def id_problem(value: str) -> str | None:
    """Why `value` is not a machine identifier (None when it is): the rule of the SQL macro `id_reason`,
    for files read in Python (a tenants file). The value is not quoted: the caller names where it is.

    >>> id_problem("123456789012"), id_problem("tenant-a"), id_problem("=cmd") == id_problem("a b")
    (None, None, True)
    >>> id_problem("x" * 129)
    '129 characters long, over the 128 of an identifier'
    """
    if not _ID.fullmatch(value) or value.startswith(("=", "+", "-", "@")):
        return f"not an identifier ({ID_RULE})"
    if len(value) > MAX_ID_CHARS:
        return f"{len(value)} characters long, over the {MAX_ID_CHARS} of an identifier"
    return None
