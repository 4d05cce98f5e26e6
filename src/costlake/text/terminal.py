"""Text for a terminal or a log line: the characters that are not text escaped, so that a value from a
billing or tenants file is shown, never obeyed.

Escaped (as Python writes them: `\\x1b`, `\\u202e`, `\\udcff`, `\\u2028`): control characters (Unicode
category Cc: newlines, the ESC that starts ANSI and OSC sequences, BEL), format characters (Cf: the
bidirectional overrides that reorder what follows them, zero-width joiners), unpaired surrogates (Cs:
the bytes of a file name that are not UTF-8) and the line and paragraph separators (Zl, Zp). Everything
else, letters of every script included, is left as it is.
"""

from __future__ import annotations

import unicodedata

_ESCAPED = frozenset(("Cc", "Cf", "Cs", "Zl", "Zp"))


def escape_controls(text: str, keep: str = "") -> str:
    r"""`text` with every control, format, surrogate and line-separator character escaped, except
    those in `keep` (a table cell keeps its tabs and newlines).

    >>> escape_controls("a" + chr(27) + "[2J" + chr(0x202E) + "b" + chr(10))
    'a\\x1b[2J\\u202eb\\n'
    >>> escape_controls("col\tnext\nrow", keep="\t\n"), escape_controls("naïve 東京")
    ('col\tnext\nrow', 'naïve 東京')
    """
    if text.isprintable():  # no such character (the common case: one scan in C)
        return text
    return "".join(
        ch.encode("unicode_escape").decode("ascii")
        if ch not in keep and unicodedata.category(ch) in _ESCAPED
        else ch
        for ch in text
    )


MAX_LINE_CHARS = 2000  # an error line longer than this is cut (a value quoted in full could be megabytes)


def shortened(text: str, limit: int = 60) -> str:
    """`text`, or its first `limit` characters and `…` when it is longer: a value quoted inside a message.

    >>> shortened("payer_account_id"), shortened("x" * 100, 5)
    ('payer_account_id', 'xxxxx…')
    """
    return text if len(text) <= limit else text[:limit] + "…"


def capped_line(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """One message line of at most about `limit` characters: longer, its start and how much was cut.

    >>> capped_line("error: " + "y" * 50, 20)
    'error: yyyyyyyyyyyyy… (37 more characters)'
    """
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text) - limit:,} more characters)"
