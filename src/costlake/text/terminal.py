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
